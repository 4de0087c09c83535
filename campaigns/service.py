"""Campaign operations shared by the CLI and the HTTP API: import, launch, pause, resume, cancel, status."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from duebot.accounts.importer import ImportReport, RowError, check_region, import_file, import_region, shown
from duebot.accounts.store import AccountStore
from duebot.campaigns import planner
from duebot.campaigns.control import CANCELLED, PAUSED, RUNNING, Control
from duebot.campaigns.repo import CampaignRepo
from duebot.campaigns.scheduler import Scheduler
from duebot.campaigns.strategy import Strategy, StrategyError, load_strategy

MAX_NAME = 200  # the campaigns.name column


class CampaignError(ValueError):
    pass


def _strategy(name_or_path: str) -> Strategy:
    """The strategy, or a CampaignError saying why not: a name or path that is no strategy is the caller's error,
    whatever the file turns out to be (missing, a folder, not YAML, not UTF-8, not a strategy)."""
    try:
        return load_strategy(name_or_path)
    except StrategyError as exc:
        raise CampaignError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - anything a file can be that is not a strategy
        raise CampaignError(f"strategy {shown(name_or_path)}: not a strategy file ({type(exc).__name__}: "
                            f"{shown(str(exc), 120)})") from exc


def _campaign_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 or 127 <= ord(c) < 160 or 0xD800 <= ord(c) < 0xE000
                                                for c in name):
        raise CampaignError(f"name: 1 to {MAX_NAME} characters of text, no control characters ({shown(name)})")
    return name


@dataclass
class Imported:
    campaign_id: str
    created: bool
    added: int
    report: ImportReport


class Campaigns:
    def __init__(self, store: AccountStore, client: redis.Redis) -> None:
        self.store, self.client = store, client
        self.repo = CampaignRepo(store)
        self.control = Control(client)

    def import_file(self, path: Path, strategy: str = "default", name: str | None = None, region: str | None = None,
                    today: dt.date | None = None) -> Imported:
        """Accounts are upserted; the campaign id is a hash of the file and strategy, so importing the same
        file again returns the same campaign and adds nothing. The strategy, name and region are checked before
        anything is imported: a CampaignError for any of them leaves the store as it was."""
        loaded = _strategy(strategy)
        name = _campaign_name(name or path.stem)
        try:
            region = check_region(region or import_region())
        except RowError as exc:
            raise CampaignError(str(exc)) from exc
        digest = hashlib.sha256(path.read_bytes() + loaded.path.encode()).hexdigest()[:12]
        campaign_id = f"C-{digest}"
        report = import_file(path, self.store, today=today, default_region=region)
        created, added = self.repo.create(campaign_id, name, loaded.path, str(path), report.account_ids)
        return Imported(campaign_id, created, added, report)

    def _campaign(self, campaign_id: str) -> Any:
        campaign = self.repo.get(campaign_id)
        if campaign is None:
            raise CampaignError(f"no campaign {campaign_id!r}")
        return campaign

    def launch(self, campaign_id: str) -> int:
        """Plan each account's first step and enqueue what is due now; returns jobs enqueued."""
        campaign = self._campaign(campaign_id)
        if campaign.status in ("running", "completed", "cancelled"):
            raise CampaignError(f"campaign {campaign_id} is {campaign.status}")
        if campaign.status == "draft":
            if not self.repo.account_states(campaign_id):
                # every row of its file was refused: say so, rather than run a campaign of nobody
                raise CampaignError(f"campaign {campaign_id} has no accounts: nothing to launch (see its import's "
                                    "errors)")
            strategy = _strategy(campaign.strategy)
            now = time.time()
            due = []
            with self.store.session() as s:
                from sqlalchemy import select

                from duebot.accounts.models import Account, CampaignAccount
                for account in s.scalars(select(Account).join(CampaignAccount, CampaignAccount.account_id == Account.id)
                                         .where(CampaignAccount.campaign_id == campaign_id)):
                    due.append((account.id, planner.first_due(strategy, account, now)))
            self.repo.plan_initial(campaign_id, due)
        return self._run(campaign_id, launched=campaign.launched_at or time.time())

    def _run(self, campaign_id: str, launched: float) -> int:
        self.control.ensure_group()
        self.repo.unqueue_all(campaign_id)
        self.repo.set_status(campaign_id, "running", launched_at=launched)
        self.control.set_state(campaign_id, RUNNING)
        return Scheduler(self.repo, self.control).tick("launch", force=True)

    def pause(self, campaign_id: str) -> None:
        campaign = self._campaign(campaign_id)
        if campaign.status != "running":
            raise CampaignError(f"campaign {campaign_id} is {campaign.status}, not running")
        self.control.set_state(campaign_id, PAUSED)  # workers read this flag before every contact
        self.repo.set_status(campaign_id, "paused")

    def resume(self, campaign_id: str) -> int:
        campaign = self._campaign(campaign_id)
        if campaign.status != "paused":
            raise CampaignError(f"campaign {campaign_id} is {campaign.status}, not paused")
        return self._run(campaign_id, launched=campaign.launched_at or time.time())

    def cancel(self, campaign_id: str) -> None:
        campaign = self._campaign(campaign_id)
        if campaign.status in ("completed", "cancelled"):
            raise CampaignError(f"campaign {campaign_id} is {campaign.status}")
        self.control.set_state(campaign_id, CANCELLED)
        self.repo.set_status(campaign_id, "cancelled", finished_at=time.time())

    def status(self, campaign_id: str) -> dict[str, Any]:
        campaign = self._campaign(campaign_id)
        strategy = load_strategy(campaign.strategy)
        young, old = strategy.band_cutoffs(dt.date.today())
        totals: dict[tuple[str, str], int] = {}
        for segment, band, n in self.repo.segment_bands(campaign_id, young, old):
            for step in strategy.schedule(segment, band):
                totals[(step.name, step.channel)] = totals.get((step.name, step.channel), 0) + n
        done: dict[tuple[str, str], dict[str, int]] = {}
        for step_name, channel, state, n in self.repo.attempt_counts(campaign_id):
            done.setdefault((step_name, channel), {})[state] = n
        order = {name: i for i, name in enumerate(strategy.steps)}
        steps = [{"step": s, "channel": c, "accounts": n, "attempts": done.get((s, c), {}),
                  "completed": sum(v for k, v in done.get((s, c), {}).items() if k in ("done", "unknown"))}
                 for (s, c), n in sorted(totals.items(), key=lambda kv: order.get(kv[0][0], 99))]
        last = self.client.get(f"duebot:campaign:{{{campaign_id}}}:last_contact")
        return {
            "campaign_id": campaign_id, "name": campaign.name, "status": campaign.status,
            "strategy": campaign.strategy, "accounts": self.repo.account_states(campaign_id), "steps": steps,
            "queue": self.control.backlog(), "workers": sorted(self.control.workers()),
            "voice_calls_in_progress": self.control.slots_in_use(),
            "last_contact_at": float(last) if last else None,
        }
