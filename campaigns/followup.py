"""Promise and plan follow-through (issue 20): a reminder before each promised date and installment, a check at
the date + grace (kept or broken), and a broken promise's re-entry into the account's campaign.

Each promise and each plan part becomes an `Obligation` row (accounts/models.py), created here on the first round
after it was made. One round (`FollowThrough.tick`), run by the leader of a short Redis lease like the campaign
scheduler, does in order:

1. schedule: open promises and plans without obligations get them (the row's key is its idempotency key);
2. checks: an open obligation past its deadline is settled by the payments made between it and the deadline
   (accounts/store.py `settle_obligations`: earliest due first, partial payments summed): kept, or broken, and
   then its re-entry is marked pending, all in one transaction;
3. reminders: each claimed (a compare-and-set pending → sending) before the text goes through the SmsSender as
   purpose `reminder`; the gate decides (quiet hours, caps): a refusal with `next_allowed_at` is retried then, one
   without is final. A claim left `sending` by a crash is resolved from the account's `sms_sent` events: sent, or
   `unknown`, never texted twice;
4. re-entry: the campaign row goes back to active at the named step (`pending → enqueuing`, one transaction), then
   one Lua script sets a marker and adds the job to the campaign stream only if the marker was not set (so a crash
   and a re-run add it exactly once), then `done`;
5. evidence: each transition's outcome records (`promise_kept`, `promise_broken`, `reminder_due`,
   `campaign_reentry`) are written with it and submitted to the evidence inbox afterwards (a crash in between
   submits them again).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import redis
from sqlalchemy import select, update

from duebot.accounts.models import (
    EVENT_CONTEXT,
    Account,
    Attempt,
    Campaign,
    CampaignAccount,
    Event,
    InstallmentPlan,
    Obligation,
    Promise,
    seal_values,
)
from duebot.accounts.store import AccountStore
from duebot.campaigns import planner
from duebot.campaigns.control import PREFIX, RUNNING, STREAM
from duebot.campaigns.repo import CONTACTED, attempt_key
from duebot.campaigns.strategy import StrategyError, load_strategy
from duebot.channels.language_texts import LanguageTexts
from duebot.policies.timeutil import parse_instant

if TYPE_CHECKING:
    from duebot.channels.sms.sender import SmsSender
    from duebot.evidence.inbox import EvidenceInbox

logger = logging.getLogger(__name__)
TEXTS = LanguageTexts(Path(__file__).resolve().parent.parent / "payments" / "texts.yml", ("promise_reminder",))
LEADER = "duebot:followup:leader"
MARKER = "duebot:followup:reentry:"
NO_CARRIER = "NO_SMS_CARRIER"
# KEYS: marker, stream. ARGV: campaign, account, step. The job is added only by whoever sets the marker.
_ENQUEUE_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', 2592000) then
  redis.call('XADD', KEYS[2], '*', 'campaign_id', ARGV[1], 'account_id', ARGV[2], 'step', ARGV[3])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class FollowUpPolicy:
    """The conversation strategy's `follow_up` (policies/strategies/default.yml)."""

    remind_days_before: int = 2
    remind_hour: int = 10
    grace_days: int = 1
    on_broken_promise: str | None = "human_queue"

    @classmethod
    def from_strategy(cls, doc: dict[str, Any] | None) -> FollowUpPolicy:
        spec = (doc or {}).get("follow_up") or {}
        unknown = set(spec) - {"remind_days_before", "remind_hour", "grace_days", "on_broken_promise"}
        if unknown:
            raise ValueError(f"follow_up: unknown key(s) {sorted(unknown)}")
        policy = cls(**spec)
        if not (0 <= policy.remind_days_before <= 60 and 0 <= policy.remind_hour <= 23
                and 0 <= policy.grace_days <= 60):
            raise ValueError("follow_up: remind_days_before 0-60, remind_hour 0-23, grace_days 0-60")
        return policy

    @classmethod
    def load(cls) -> FollowUpPolicy:
        from duebot.actions.strategy import load_strategy as conversation_strategy

        return cls.from_strategy(conversation_strategy())


def _zone(account: Account) -> ZoneInfo | dt.timezone:
    return planner.account_zone(account.timezone, account.phone_zones) or dt.UTC


def _local(day: dt.date, hour: int, zone: ZoneInfo | dt.timezone) -> float:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=zone).timestamp()


def _stamp(at: dt.datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).timestamp()


def callback_number(pack_name: str, language: str) -> str:
    from duebot.policies.packs import PackError, load_pack

    for name in (pack_name, "cn"):
        try:
            profile = load_pack(name).profile
        except PackError:
            continue
        if profile is not None:
            return profile.text("callback_number", language)
    return ""


class FollowThrough:
    def __init__(self, store: AccountStore, client: redis.Redis,
                 sender: SmsSender | Callable[[], SmsSender | None] | None, *,
                 policy: FollowUpPolicy | None = None, inbox: EvidenceInbox | None = None,
                 clock: Callable[[], float] = time.time, lease: float = 60.0, sending_timeout: float = 300.0,
                 name: str | None = None) -> None:
        self.store, self.client, self._sender, self.inbox, self.clock = store, client, sender, inbox, clock
        self.policy = policy or FollowUpPolicy.load()
        self.lease, self.sending_timeout = lease, sending_timeout
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._enqueue_once = client.register_script(_ENQUEUE_ONCE)

    # ------------------------------------------------------------ the round
    def lead(self) -> bool:
        if self.client.set(LEADER, self.name, nx=True, px=int(self.lease * 1000)):
            return True
        if (self.client.get(LEADER) or b"").decode() == self.name:
            self.client.pexpire(LEADER, int(self.lease * 1000))
            return True
        return False

    def tick(self, force: bool = False) -> dict[str, int]:
        """One round; `force` runs it without the lease (tests, a one-off run). Counts what it did."""
        if not force and not self.lead():
            return {}
        done = {"scheduled": self.schedule(), "checked": self.check(), "reminded": self.remind(),
                "reentered": self.reenter()}
        done["announced"] = self.announce()
        return done

    @property
    def sender(self) -> SmsSender | None:
        if callable(self._sender) and not hasattr(self._sender, "send"):
            self._sender = self._sender()
        return self._sender  # type: ignore[return-value]

    # ------------------------------------------------------------ 1. schedule
    def schedule(self) -> int:
        made = 0
        with self.store.session() as s:
            known_promises = select(Obligation.promise_id).where(Obligation.promise_id.is_not(None))
            known_plans = select(Obligation.plan_id).where(Obligation.plan_id.is_not(None))
            promises = list(s.scalars(select(Promise).where(Promise.status == "open",
                                                            Promise.id.not_in(known_promises))))
            plans = list(s.scalars(select(InstallmentPlan).where(InstallmentPlan.status == "open",
                                                                 InstallmentPlan.id.not_in(known_plans))))
            for promise in promises:
                made += self._add(s, f"promise:{promise.id}", promise.account_id, promise.conversation_id,
                                  Decimal(promise.amount), promise.due_date, _stamp(promise.created_at),
                                  promise_id=promise.id)
            for plan in plans:
                for part, item in enumerate(plan.schedule or []):
                    made += self._add(s, f"plan:{plan.id}:{part}", plan.account_id, plan.conversation_id,
                                      Decimal(str(item["amount"])), dt.date.fromisoformat(item["due_date"]),
                                      _stamp(plan.created_at), plan_id=plan.id, part=part)
        return made

    def _add(self, s: Any, key: str, account_id: str, conversation_id: str | None, amount: Decimal,
             due: dt.date, made_at: float, **source: int) -> int:
        account = s.get(Account, account_id)
        if account is None or s.get(Obligation, key) is not None:
            return 0
        zone, p = _zone(account), self.policy
        remind_at: float | None = _local(due - dt.timedelta(days=p.remind_days_before), p.remind_hour, zone)
        state = "pending"
        if remind_at < made_at + 12 * 3600:  # made too close to its date: the conversation itself was the reminder
            remind_at, state = None, "skipped"
        check_at = _local(due + dt.timedelta(days=p.grace_days + 1), 0, zone)
        s.add(Obligation(key=key, account_id=account_id, conversation_id=conversation_id, amount=amount,
                         paid=Decimal("0.00"), due_date=due, made_at=made_at, status="open", remind_at=remind_at,
                         remind_state=state, remind_tries=0, remind_detail={}, check_at=check_at,
                         reentry_detail={}, announce=[], **source))
        s.flush()
        return 1

    # ------------------------------------------------------------ 2. checks
    def check(self) -> int:
        now = self.clock()
        with self.store.session() as s:
            accounts = list(dict.fromkeys(s.scalars(select(Obligation.account_id).where(
                Obligation.status == "open", Obligation.check_at <= now))))
        changed = 0
        for account_id in accounts:
            with self.store.session() as s:  # one account per transaction: all its transitions or none
                account = s.get(Account, account_id)
                if account is None:
                    continue
                for row in self.store.settle_obligations(s, account, now, deadline_passed=True):
                    changed += 1
                    if row.status == "broken":
                        row.reentry_state = "pending"
        return changed

    # ------------------------------------------------------------ 3. reminders
    def remind(self) -> int:
        now = self.clock()
        self._resolve_stale(now)
        with self.store.session() as s:
            keys = list(s.scalars(select(Obligation.key).where(
                Obligation.status == "open", Obligation.remind_state == "pending", Obligation.remind_at <= now)
                .order_by(Obligation.remind_at)))
        sent = 0
        for key in keys:
            with self.store.session() as s:  # the claim: only one round may text this reminder
                claimed = s.execute(update(Obligation).where(
                    Obligation.key == key, Obligation.remind_state == "pending", Obligation.status == "open")
                    .values(remind_state="sending", remind_claimed_at=now,
                            remind_tries=Obligation.remind_tries + 1)).rowcount == 1
            if claimed:
                sent += self._remind_one(key, now)
        return sent

    def _remind_one(self, key: str, now: float) -> int:
        row = self._row(key)
        account = self.store.get_account(row.account_id)
        if account is None:
            return 0
        sender = self.sender
        if sender is None:
            self._reminded(key, "refused", {"sent": False, "reasons": [NO_CARRIER]}, now)
            logger.warning("follow-up reminder %s NOT texted: no SMS carrier configured", key)
            return 0
        from duebot.channels.sms.texts import text_language

        language = text_language(account.language)
        body = TEXTS.render("promise_reminder", language, brand=sender.settings.brand_for(language),
                            date=row.due_date.isoformat(), callback=callback_number(account.pack, language))
        try:
            result = sender.send(account.id, body, "reminder", conversation_id=f"followup:{key}")
        except Exception:  # noqa: BLE001 - Redis or the network failed: maybe sent; resolved from the events
            logger.exception("follow-up reminder %s: the send failed", key)
            return 0
        if result.sent:
            self._reminded(key, "sent", {"sent": True, "sid": result.sid}, now)
            return 1
        retry_at = None
        decision = (result.detail or {}).get("decision") or {}
        if decision.get("next_allowed_at"):
            retry_at = parse_instant(decision["next_allowed_at"])
        elif result.retry_after is not None:
            retry_at = now + result.retry_after
        detail = {"sent": False, "reasons": list(result.reasons)}
        if retry_at is not None and retry_at < row.check_at:
            self._reminded(key, "pending", detail | {"retry_at": retry_at}, now, remind_at=retry_at)
        else:
            self._reminded(key, "refused", detail, now)
        return 0

    def _reminded(self, key: str, state: str, detail: dict[str, Any], now: float,
                  remind_at: float | None = None) -> None:
        with self.store.session() as s:
            row = s.get(Obligation, key)
            if row is None or row.remind_state != "sending":
                return
            row.remind_state, row.remind_detail = state, detail
            if remind_at is not None:
                row.remind_at = remind_at
            kind = {"sent": "reminder_sent", "pending": "reminder_deferred"}.get(state, "reminder_not_sent")
            event = {"key": key, "due_date": row.due_date.isoformat(), **detail}
            s.add(Event(kind=kind, account_id=row.account_id, conversation_id=f"followup:{key}",
                        detail=seal_values(event, EVENT_CONTEXT, self.store.keyring)))
            if state != "pending":
                row.announce = [*(row.announce or []), {"type": "reminder_due", "account_id": row.account_id,
                                                         "state": state, **event}]

    def _resolve_stale(self, now: float) -> None:
        """A claim whose round died mid-send: sent when the account has its `sms_sent` event, else unknown."""
        with self.store.session() as s:
            stale = list(s.scalars(select(Obligation).where(
                Obligation.remind_state == "sending", Obligation.remind_claimed_at < now - self.sending_timeout)))
        for row in stale:
            texted = [e for e in self.store.events(row.account_id)
                      if e.kind == "sms_sent" and e.conversation_id == f"followup:{row.key}"]
            state = "sent" if texted else "unknown"
            self._reminded(row.key, state, {"sent": bool(texted), "resolved_after_crash": True,
                                            **({"sid": texted[0].detail.get("sid")} if texted else {})}, now)

    # ------------------------------------------------------------ 4. re-entry
    def reenter(self) -> int:
        with self.store.session() as s:
            keys = list(s.scalars(select(Obligation.key).where(Obligation.reentry_state.in_(("pending", "enqueuing")))))
        return sum(self._reenter_one(key) for key in keys)

    def _reenter_one(self, key: str) -> int:
        now = self.clock()
        row = self._row(key)
        if row.reentry_state == "pending":
            where = self._place(row)
            with self.store.session() as s:
                current = s.get(Obligation, key)
                if current is None or current.reentry_state != "pending":
                    return 0
                if "reason" in where:  # nowhere to re-enter: said so, and done
                    self._reentered(s, current, {"enqueued": False, **where})
                    return 0
                campaign = s.get(Campaign, where["campaign_id"])
                running = campaign.status in (RUNNING, "completed")
                if campaign.status == "completed":
                    campaign.status, campaign.finished_at = RUNNING, None
                s.execute(update(CampaignAccount).where(
                    CampaignAccount.campaign_id == where["campaign_id"], CampaignAccount.account_id == row.account_id)
                    .values(step=where["step"], state="active", reason=None, due_at=now, queued=running))
                if not running:  # paused: the campaign's resume enqueues it with the rest
                    self._reentered(s, current, {"enqueued": False, "on_resume": True, **where})
                    return 0
                current.reentry_state, current.reentry_detail = "enqueuing", where
            row = self._row(key)
        where = dict(row.reentry_detail)
        if where.get("reopened"):  # a completed campaign runs again, for this account
            self.client.set(f"{PREFIX}:{{{where['campaign_id']}}}:state", RUNNING)
        added = int(self._enqueue_once(keys=[MARKER + key, STREAM],
                                       args=[where["campaign_id"], row.account_id, str(where["step"])]))
        with self.store.session() as s:
            current = s.get(Obligation, key)
            if current is not None and current.reentry_state == "enqueuing":
                self._reentered(s, current, {"enqueued": True, **where})
        return added

    def _place(self, row: Obligation) -> dict[str, Any]:
        """Where the account re-enters: its latest campaign still going (or completed), at the named step."""
        with self.store.session() as s:
            found = s.execute(select(Campaign, CampaignAccount).join(
                CampaignAccount, CampaignAccount.campaign_id == Campaign.id).where(
                CampaignAccount.account_id == row.account_id,
                Campaign.status.in_((RUNNING, "paused", "completed"))).order_by(Campaign.created_at.desc())).first()
            account = s.get(Account, row.account_id)
        if found is None or account is None:
            return {"reason": "no_campaign"}
        campaign, membership = found
        if membership.state in ("active", "blocked"):  # still being contacted, or held by the gate
            return {"reason": f"campaign_{membership.state}", "campaign_id": campaign.id}
        try:
            strategy = load_strategy(campaign.strategy)
        except StrategyError as exc:
            return {"reason": "strategy_error", "campaign_id": campaign.id, "error": str(exc)[:200]}
        name = strategy.doc.get("on_broken_promise") or self.policy.on_broken_promise
        if not name:
            return {"reason": "no_step_configured", "campaign_id": campaign.id}
        schedule = planner.schedule_for(strategy, account, dt.date.today())
        with self.store.session() as s:
            contacted = set(s.scalars(select(Attempt.step).where(
                Attempt.campaign_id == campaign.id, Attempt.account_id == account.id, Attempt.state.in_(CONTACTED))))
        for index, step in enumerate(schedule):
            if step.name == name and index not in contacted:
                return {"campaign_id": campaign.id, "step": index, "step_name": name,
                        "key": attempt_key(campaign.id, account.id, index),
                        "reopened": campaign.status == "completed"}
        return {"reason": "step_not_available", "campaign_id": campaign.id, "step_name": name}

    def _reentered(self, s: Any, row: Obligation, detail: dict[str, Any]) -> None:
        row.reentry_state, row.reentry_detail = "done", detail
        event = {"key": row.key, **{k: v for k, v in detail.items() if k != "reopened"}}
        s.add(Event(kind="campaign_reentry", account_id=row.account_id, conversation_id=row.conversation_id,
                    detail=seal_values(event, EVENT_CONTEXT, self.store.keyring)))
        row.announce = [*(row.announce or []), {"type": "campaign_reentry", "account_id": row.account_id, **event}]

    # ------------------------------------------------------------ 5. evidence
    def announce(self) -> int:
        with self.store.session() as s:
            rows = [r for r in s.scalars(select(Obligation).where(Obligation.announce.is_not(None))) if r.announce]
        submitted = 0
        for row in rows:
            records = list(row.announce)
            if self.inbox is not None:
                for record in records:
                    self.inbox.submit("outcome", record,
                                      conversation_id=row.conversation_id or f"followup:{row.account_id}")
            with self.store.session() as s:
                current = s.get(Obligation, row.key)
                if current is not None:
                    current.announce = list(current.announce or [])[len(records):]
            submitted += len(records)
        return submitted

    def _row(self, key: str) -> Obligation:
        with self.store.session() as s:
            row = s.get(Obligation, key)
        assert row is not None
        return row
