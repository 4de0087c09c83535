"""The work queue (issue 20): what a person must do, made from what the account store already holds.

`sync` runs any number of times (each console queue view runs it): one item per (kind, source) — a store event
(handoff, callback, human review, legal track, legal threat, broken promise), an open dispute, a broken promise row,
an account left in `human_review` without an item; campaigns' `human_queue` steps make their own items
(campaigns/worker.py). Due times come from console/work_queue.yml."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

import yaml

from duebot.accounts.store import AccountStore
from duebot.console.i18n import N_

CONFIG = Path(__file__).resolve().parent / "work_queue.yml"
KINDS = (N_("handoff"), N_("callback"), N_("human_review"), N_("legal_track"), N_("legal_threat"), N_("dispute"),
         N_("promise_broken"), N_("human_queue"))
STATES = (N_("open"), N_("assigned"), N_("closed"))
EVENT_KINDS = ("handoff", "callback", "human_review", "legal_track", "legal_threat", "promise_broken")


@dataclass(frozen=True)
class Rules:
    high_risk_hours: float
    default_hours: float
    high_risk_kinds: frozenset[str]
    high_risk_reasons: frozenset[str]
    broken_promise_threshold: Decimal

    def high_risk(self, kind: str, reason: str | None) -> bool:
        return kind in self.high_risk_kinds or (reason or "") in self.high_risk_reasons

    def due(self, created: dt.datetime, high_risk: bool) -> dt.datetime:
        return aware(created) + dt.timedelta(hours=self.high_risk_hours if high_risk else self.default_hours)


@lru_cache(maxsize=4)
def load_rules(path: Path = CONFIG) -> Rules:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    sla = data.get("sla_hours") or {}
    return Rules(float(sla.get("high_risk", 24)), float(sla.get("default", 72)),
                 frozenset(data.get("high_risk_kinds") or ()), frozenset(data.get("high_risk_reasons") or ()),
                 Decimal(str(data.get("broken_promise_threshold", 0))))


def aware(when: dt.datetime) -> dt.datetime:
    """SQLite gives back naive datetimes: they are UTC."""
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _amount(text: object) -> Decimal | None:
    try:
        value = Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def _callback_due(detail: dict, created: dt.datetime) -> dt.datetime | None:
    """The end of the day the subscriber asked to be called on (UTC), when it names one."""
    try:
        day = dt.date.fromisoformat(str(detail.get("date")))
    except ValueError:
        return None
    return max(aware(created), dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC))


def sync(store: AccountStore, rules: Rules | None = None) -> int:
    """Make the items the store's state calls for and that do not exist yet; returns how many were made."""
    rules = rules or load_rules()
    known = store.work_item_keys()
    made = 0

    def add(kind: str, source: str, created: dt.datetime, *, account_id: str | None, conversation_id: str | None,
            reason: str | None, detail: dict, due: dt.datetime | None = None) -> None:
        nonlocal made
        if f"{kind}|{source}" in known:
            return
        risky = rules.high_risk(kind, reason)
        if store.add_work_item(kind, source, due_at=due or rules.due(created, risky), account_id=account_id,
                               conversation_id=conversation_id, reason=reason, high_risk=risky, detail=detail,
                               created_at=aware(created)):
            made += 1
        known.add(f"{kind}|{source}")

    for event in store.events_of(EVENT_KINDS):
        detail = {k: v for k, v in (event.detail or {}).items() if v not in (None, "", "None")}
        source, reason = f"event:{event.id}", detail.get("reason") or event.kind
        due = None
        if event.kind == "promise_broken":
            amount = _amount(detail.get("amount"))
            if amount is not None and amount < rules.broken_promise_threshold:
                continue
            if detail.get("promise_id"):
                source = f"promise:{detail['promise_id']}"  # the same promise as a broken promise row
            reason = "promise_broken"
        elif event.kind == "callback":
            due = _callback_due(detail, event.at)
            reason = "callback"
        elif event.kind == "legal_threat":
            reason = "legal_threat"
            if "text" in detail:
                detail["last_message"] = detail.pop("text")
        add(event.kind, source, event.at, account_id=event.account_id, conversation_id=event.conversation_id,
            reason=str(reason), detail=detail, due=due)

    for dispute in store.open_disputes():
        add("dispute", f"dispute:{dispute.case_number}", dispute.opened_at, account_id=dispute.account_id,
            conversation_id=dispute.conversation_id, reason=dispute.reason,
            detail={"case_number": dispute.case_number, "details": dispute.details or ""})

    for promise in store.broken_promises():
        if promise.amount >= rules.broken_promise_threshold:
            add("promise_broken", f"promise:{promise.id}", promise.created_at, account_id=promise.account_id,
                conversation_id=promise.conversation_id, reason="promise_broken",
                detail={"amount": str(promise.amount), "due_date": promise.due_date.isoformat(),
                        "promise_id": str(promise.id)})

    # an account paused for review that no item covers (set by hand, or by a producer that records no event)
    covered = {item.account_id for item in store.work_items(kinds=("human_review",))}
    for account_id, updated in store.accounts_in_status("human_review"):
        if account_id not in covered:
            add("human_review", f"status:{account_id}@{aware(updated).isoformat()}", updated,
                account_id=account_id, conversation_id=None, reason="human_review", detail={})
    return made
