"""Prometheus metrics for campaigns, read from Redis and the store at scrape time: workers run in other
processes (and machines), so the counters they keep in Redis are the single source of truth. Beside them, a gauge
per headline money KPI (campaigns/money.py) for the current month to date, per branch and in total, with the
targets as `duebot_kpi_target`; recomputed in the background at most once a minute."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from duebot.accounts.store import AccountStore
from duebot.campaigns.service import Campaigns

log = logging.getLogger(__name__)
MONEY_GAUGES = ("amount_due", "amount_recovered")  # besides money.HEADLINE


class MoneyGauges:
    """The headline money KPIs of the month to date (the KPI time zone's month), per branch and for all accounts,
    recomputed when a scrape finds them older than `ttl` seconds (reading the book is not free)."""

    def __init__(self, store: AccountStore, *, evidence: Path | None = None, ttl: float = 60.0,
                 clock: Callable[[], float] = time.time, tz: str | None = None) -> None:
        self.store, self.evidence, self.ttl, self.clock, self.tz = store, evidence, ttl, clock, tz
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._refreshing = False

    def compute(self) -> dict[str, Any]:
        from duebot.campaigns import money

        now = self.clock()
        book = money.load_book(self.store, as_of=now, evidence=self.evidence, tz=self.tz)
        period = money.period_at(now, "month", book.tz)
        members: dict[str, list[str]] = {money.ALL: list(book.accounts)}
        for aid, group in book.group_of("branch").items():
            members.setdefault(group, []).append(aid)
        rows = {group: money.compute(book, ids, period, include_unattributed=group == money.ALL)
                for group, ids in members.items()}
        return {"period": period.label, "rows": rows, "targets": book.targets}

    def current(self) -> dict[str, Any]:
        """The last figures; the first scrape computes them, a later one that finds them stale starts a refresh in
        the background and is served the last ones meanwhile (a scrape never waits on a large book twice)."""
        with self._lock:
            if self._cached is None:
                self._cached = (self.clock(), self.compute())
            elif self.clock() - self._cached[0] >= self.ttl and not self._refreshing:
                self._refreshing = True
                threading.Thread(target=self._refresh, name="kpi-gauges", daemon=True).start()
            return self._cached[1]

    def _refresh(self) -> None:
        try:
            fresh = (self.clock(), self.compute())
            with self._lock:
                self._cached = fresh
        except Exception:  # noqa: BLE001 - keep serving the last figures
            log.exception("money KPI gauges: refresh failed")
        finally:
            self._refreshing = False

    def families(self) -> Iterator[GaugeMetricFamily]:
        from duebot.campaigns.money import HEADLINE

        try:
            state = self.current()
        except Exception:  # noqa: BLE001 - the campaign metrics must still be served
            log.exception("money KPI gauges: not computed")
            return
        targets = state["targets"].kpis
        for key in (*MONEY_GAUGES, *HEADLINE):
            t = targets.get(key)
            family = GaugeMetricFamily(f"duebot_kpi_{key}", (t.label if t else key.replace("_", " ")) +
                                       ", month to date (campaigns/money.py)", labels=["branch", "period"])
            for group, row in sorted(state["rows"].items()):
                if row.get(key) is not None:
                    family.add_metric([group, state["period"]], float(row[key]))
            yield family
        goal = GaugeMetricFamily("duebot_kpi_target", "Seed targets of the money KPIs (campaigns/kpi_targets.yml)",
                                 labels=["kpi"])
        for key, t in targets.items():
            if t.for_period("month") is not None:
                goal.add_metric([key], t.for_period("month"))
        yield goal


class CampaignCollector(Collector):
    def __init__(self, campaigns: Campaigns, money_gauges: MoneyGauges | None = None) -> None:
        self.campaigns = campaigns
        self.money = money_gauges or MoneyGauges(campaigns.store)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        c = self.campaigns
        attempts = CounterMetricFamily("duebot_campaign_attempts", "Contact attempts by outcome",
                                       labels=["campaign", "step", "channel", "outcome"])
        denials = CounterMetricFamily("duebot_campaign_gate_denials", "Contacts the gate refused, by reason",
                                      labels=["campaign", "step", "channel", "reason"])
        accounts = GaugeMetricFamily("duebot_campaign_accounts", "Accounts by campaign state",
                                     labels=["campaign", "status", "state"])
        for campaign in c.repo.all():
            for (step, channel, what), n in c.control.counts(campaign.id).items():
                kind, _, value = what.partition(":")
                if kind == "outcome":
                    attempts.add_metric([campaign.id, step, channel, value], n)
                elif kind == "denied":
                    denials.add_metric([campaign.id, step, channel, value], n)
            for state, n in c.repo.account_states(campaign.id).items():
                accounts.add_metric([campaign.id, campaign.status, state], n)
        backlog = c.control.backlog()
        queue = GaugeMetricFamily("duebot_campaign_queue_jobs", "Jobs in the stream", labels=["kind"])
        queue.add_metric(["waiting"], backlog["waiting"])
        queue.add_metric(["pending"], backlog["pending"])
        yield attempts
        yield denials
        yield accounts
        yield queue
        yield GaugeMetricFamily("duebot_campaign_workers", "Live campaign workers", value=len(c.control.workers()))
        yield GaugeMetricFamily("duebot_campaign_voice_calls", "Voice calls in progress",
                                value=c.control.slots_in_use())
        yield from self.money.families()
