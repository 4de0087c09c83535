"""Campaign state in the account store's database: campaigns, where each account is, and every attempt.

The attempt row is the idempotency record: its primary key is (campaign, account, step), and the transition to
`started` is a single conditional write, so of two workers holding the same job only one can contact."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, text, update
from sqlalchemy.exc import IntegrityError

from duebot.accounts.models import Account, Attempt, Campaign, CampaignAccount, open_sealed
from duebot.accounts.store import AccountStore

CONTACTED = ("started", "done", "unknown")  # states that count as a contact: never repeated
FINAL = ("done", "unknown", "skipped")


def attempt_key(campaign_id: str, account_id: str, step: int) -> str:
    return f"{campaign_id}:{account_id}:{step}"


@dataclass(frozen=True, slots=True)
class Advance:
    """Where the account goes after an attempt: its next step and when, or out of the campaign."""
    step: int
    due_at: float
    state: str = "active"
    reason: str | None = None


class CampaignRepo:
    def __init__(self, store: AccountStore) -> None:
        self.store = store
        self.engine = store.engine

    # ------------------------------------------------------------ campaigns
    def create(self, campaign_id: str, name: str, strategy: str, source: str | None,
               account_ids: Iterable[str]) -> tuple[bool, int]:
        """Create the campaign (if new) and add accounts not yet in it: (campaign created, accounts added)."""
        ids = list(dict.fromkeys(account_ids))
        with self.store.session() as s:
            created = s.get(Campaign, campaign_id) is None
            if created:
                s.add(Campaign(id=campaign_id, name=name, strategy=strategy, source=source, status="draft",
                               created_at=time.time()))
                s.flush()
            present = set(s.scalars(select(CampaignAccount.account_id).where(
                CampaignAccount.campaign_id == campaign_id)))
            new = [i for i in ids if i not in present]
            if new:
                s.execute(CampaignAccount.__table__.insert(), [
                    {"campaign_id": campaign_id, "account_id": i, "step": 0, "due_at": 0.0, "queued": False,
                     "state": "active", "reason": None} for i in new])
        return created, len(new)

    def get(self, campaign_id: str) -> Campaign | None:
        with self.store.session() as s:
            return s.get(Campaign, campaign_id)

    def all(self) -> list[Campaign]:
        with self.store.session() as s:
            return list(s.scalars(select(Campaign).order_by(Campaign.created_at)))

    def set_status(self, campaign_id: str, status: str, **fields: float | None) -> None:
        with self.store.session() as s:
            s.execute(update(Campaign).where(Campaign.id == campaign_id).values(status=status, **fields))

    def running(self) -> list[Campaign]:
        with self.store.session() as s:
            return list(s.scalars(select(Campaign).where(Campaign.status == "running")))

    # ------------------------------------------------------------ scheduling
    def take_due(self, campaign_id: str, now: float, limit: int = 5000) -> list[tuple[str, int]]:
        """Due, unqueued accounts → marked queued in the same transaction; the caller enqueues them. A crash in
        between strands them as queued: `requeue_stranded` repairs that (jobs are idempotent, so it is safe)."""
        with self.store.session() as s:
            rows = s.execute(select(CampaignAccount.account_id, CampaignAccount.step).where(
                CampaignAccount.campaign_id == campaign_id, CampaignAccount.state == "active",
                CampaignAccount.queued.is_(False), CampaignAccount.due_at <= now).limit(limit)).all()
            ids = [r[0] for r in rows]
            for chunk in _chunks(ids, 500):
                s.execute(update(CampaignAccount).where(CampaignAccount.campaign_id == campaign_id,
                                                        CampaignAccount.account_id.in_(chunk)).values(queued=True))
        return [(r[0], int(r[1])) for r in rows]

    def unqueue_all(self, campaign_id: str) -> None:
        """Launch/resume after a crash of the scheduler: every active account may be enqueued again."""
        with self.store.session() as s:
            s.execute(update(CampaignAccount).where(CampaignAccount.campaign_id == campaign_id,
                                                    CampaignAccount.state == "active").values(queued=False))

    def plan_initial(self, campaign_id: str, due: Sequence[tuple[str, float]]) -> None:
        if not due:  # an empty executemany is one execute without parameters: "a value is required for 'due'"
            return
        with self.store.session() as s:
            s.connection().execute(
                text("UPDATE campaign_accounts SET due_at = :due WHERE campaign_id = :c AND account_id = :a"),
                [{"due": d, "c": campaign_id, "a": a} for a, d in due])

    def remaining(self, campaign_id: str) -> int:
        with self.store.session() as s:
            return int(s.scalar(select(func.count()).select_from(CampaignAccount).where(
                CampaignAccount.campaign_id == campaign_id, CampaignAccount.state == "active")) or 0)

    def account_states(self, campaign_id: str) -> dict[str, int]:
        with self.store.session() as s:
            return {state: int(n) for state, n in s.execute(
                select(CampaignAccount.state, func.count()).where(CampaignAccount.campaign_id == campaign_id)
                .group_by(CampaignAccount.state)).all()}

    # ------------------------------------------------------------ attempts
    def attempt(self, key: str) -> Attempt | None:
        with self.store.session() as s:
            return s.get(Attempt, key)

    def claim(self, key: str, *, campaign_id: str, account_id: str, step: int, step_name: str, channel: str,
              purpose: str, worker: str, reservation_id: str | None, now: float) -> bool:
        """Durably mark the attempt started, before any contact. False if another worker got there first (or
        the step was already contacted): then this worker must not contact."""
        values = {"state": "started", "worker": worker, "reservation_id": reservation_id, "started_at": now,
                  "reasons": [], "next_allowed_at": None}
        try:
            with self.store.session() as s:
                current = s.get(Attempt, key)
                if current is None:
                    s.add(Attempt(key=key, campaign_id=campaign_id, account_id=account_id, step=step,
                                  step_name=step_name, channel=channel, purpose=purpose, tries=1,
                                  right_party=False, **values))
                    return True
                # Only a gate-denied attempt may become started; the WHERE makes it a compare-and-set.
                result = s.execute(update(Attempt).where(Attempt.key == key, Attempt.state == "denied")
                                   .values(tries=Attempt.tries + 1, **values))
                return result.rowcount == 1
        except IntegrityError:  # the insert raced another worker's
            return False

    def take_over(self, key: str, dead_worker: str, worker: str) -> bool:
        with self.store.session() as s:
            result = s.execute(update(Attempt).where(Attempt.key == key, Attempt.state == "started",
                                                     Attempt.worker == dead_worker).values(worker=worker))
            return result.rowcount == 1

    def deny(self, key: str, *, campaign_id: str, account_id: str, step: int, step_name: str, channel: str,
             purpose: str, reasons: list[str], next_allowed_at: float | None, advance: Advance) -> None:
        """Record a gate refusal (not a contact: the step stays retriable) and reschedule or block the account."""
        with self.store.session() as s:
            current = s.get(Attempt, key)
            if current is None:
                s.add(Attempt(key=key, campaign_id=campaign_id, account_id=account_id, step=step,
                              step_name=step_name, channel=channel, purpose=purpose, state="denied", tries=1,
                              reasons=reasons, next_allowed_at=next_allowed_at, right_party=False))
            elif current.state == "denied":
                current.tries += 1
                current.reasons = reasons
                current.next_allowed_at = next_allowed_at
            else:
                return  # contacted meanwhile by another worker: its outcome wins
            self._advance(s, campaign_id, account_id, step, advance)

    def finish(self, key: str, *, state: str, fields: dict[str, Any], advance: Advance) -> None:
        """Attempt outcome and the account's next step in one transaction: a crash leaves both or neither."""
        with self.store.session() as s:
            attempt = s.get(Attempt, key)
            if attempt is None:
                return
            if attempt.state not in FINAL:
                attempt.state = state
                attempt.finished_at = fields.pop("finished_at", time.time())
                for name, value in fields.items():
                    setattr(attempt, name, value)
            self._advance(s, attempt.campaign_id, attempt.account_id, attempt.step, advance)

    def record_human(self, key: str, *, campaign_id: str, account_id: str, step: int, step_name: str,
                     now: float, advance: Advance) -> None:
        """A human-queue step contacts nobody itself: recorded as done, handled_by human."""
        with self.store.session() as s:
            if s.get(Attempt, key) is None:
                s.add(Attempt(key=key, campaign_id=campaign_id, account_id=account_id, step=step,
                              step_name=step_name, channel="human", purpose="collection", state="done", tries=1,
                              reasons=[], started_at=now, finished_at=now, outcome="queued",
                              right_party=False, handled_by="human"))
            self._advance(s, campaign_id, account_id, step, advance)

    def _advance(self, s: Any, campaign_id: str, account_id: str, step: int, advance: Advance) -> None:
        # Only from the step this attempt was for: a late duplicate cannot move the account twice.
        s.execute(update(CampaignAccount).where(and_(
            CampaignAccount.campaign_id == campaign_id, CampaignAccount.account_id == account_id,
            CampaignAccount.step == step)).values(step=advance.step, due_at=advance.due_at, state=advance.state,
                                                  reason=advance.reason, queued=False))

    def finish_account(self, campaign_id: str, account_id: str, step: int, state: str, reason: str | None) -> None:
        with self.store.session() as s:
            self._advance(s, campaign_id, account_id, step, Advance(step, time.time(), state, reason))

    def in_flight(self, campaign_id: str) -> int:
        with self.store.session() as s:
            return int(s.scalar(select(func.count()).select_from(Attempt).where(
                Attempt.campaign_id == campaign_id, Attempt.state == "started")) or 0)

    def release_job(self, campaign_id: str, account_id: str) -> None:
        """A job dropped without an attempt (e.g. cancelled): let the scheduler decide again."""
        with self.store.session() as s:
            s.execute(update(CampaignAccount).where(CampaignAccount.campaign_id == campaign_id,
                                                    CampaignAccount.account_id == account_id).values(queued=False))

    def last_started(self, campaign_id: str, account_id: str) -> float | None:
        with self.store.session() as s:
            return s.scalar(select(func.max(Attempt.started_at)).where(
                Attempt.campaign_id == campaign_id, Attempt.account_id == account_id))

    def account(self, account_id: str) -> Account | None:
        return self.store.get_account(account_id)

    # ------------------------------------------------------------ progress
    def attempt_counts(self, campaign_id: str) -> list[tuple[str, str, str, int]]:
        """(step name, channel, state, count)."""
        with self.store.session() as s:
            return [(a, b, c, int(n)) for a, b, c, n in s.execute(
                select(Attempt.step_name, Attempt.channel, Attempt.state, func.count())
                .where(Attempt.campaign_id == campaign_id)
                .group_by(Attempt.step_name, Attempt.channel, Attempt.state)).all()]

    def segment_bands(self, campaign_id: str, young: str | None, old: str | None) -> list[tuple[str, str, int]]:
        """(segment, age band, accounts): the denominators of per-step progress. Birth dates are sealed at rest:
        the database cannot compare them, so each is opened here."""
        sql = text("""
            SELECT a.id, a.segment, a.birth_date_sealed
            FROM campaign_accounts ca JOIN accounts a ON a.id = ca.account_id
            WHERE ca.campaign_id = :c""")
        counts: Counter[tuple[str, str]] = Counter()
        with self.engine.connect() as c:
            for account_id, segment, sealed in c.execute(sql, {"c": campaign_id}):
                born = open_sealed("birth_date", account_id, sealed, self.store.keyring)
                iso = born.isoformat() if born is not None else None
                band = ("default" if iso is None else "young" if young is not None and iso > young
                        else "elderly" if old is not None and iso <= old else "default")
                counts[(segment, band)] += 1
        return [(segment, band, n) for (segment, band), n in counts.items()]


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
