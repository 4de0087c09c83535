"""Account events → the versioned JSON events the operator's billing/CRM receives (docs/billing.md).

Every outcome duebot records is a row of the account store's event log (`AccountStore.add_event`). Each row of a
kind named in `KIND_TO_TYPE` becomes one billing event; the policy (`billing.yml`) may derive a second one from it
(停复机: `service_restore_requested`, `service_suspend_recommended`). Kinds are matched by name, so a kind another
part of duebot starts writing (`promise_kept`, `promise_broken`, `dispute_resolved`) flows as soon as it appears.

What leaves duebot is the account id, amounts, dates, counts and short identifiers (case numbers, reasons, channel
names): every value is checked against its shape here, and anything else in an event's detail (what the subscriber
said, numbers, names) is never copied. An event's id is derived from the row and the type, so it is the same every
time the same row is mapped: receivers dedupe by it.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

SCHEMA_VERSION = 1
EVENT_TYPES = ("payment_received", "promise_made", "promise_kept", "promise_broken", "plan_created",
               "dispute_opened", "dispute_resolved", "opt_out", "handoff", "service_restore_requested",
               "service_suspend_recommended")
# account event kind (accounts/store.py add_event) → billing event type
KIND_TO_TYPE = {
    "payment": "payment_received",
    "promise": "promise_made",
    "partial": "promise_made",  # part paid by link now (a `payment` when it arrives), the rest promised
    "promise_kept": "promise_kept",
    "promise_broken": "promise_broken",
    "plan": "plan_created",
    "dispute": "dispute_opened",
    "dispute_resolved": "dispute_resolved",
    "opt_out": "opt_out",
    "handoff": "handoff",
}
DEFAULT_POLICY = Path(__file__).resolve().parent / "billing.yml"
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")  # identifiers and enumerations, never free text
_MAX_SCHEDULE_TEXT = 8192
_MAX_INSTALLMENTS = 60


@dataclass(frozen=True)
class SourceEvent:
    """One row of the account store's event log (`account_events`)."""

    id: int
    kind: str
    account_id: str | None
    detail: Mapping[str, Any]
    at: dt.datetime


@dataclass(frozen=True)
class AccountFacts:
    """What the policy needs to know of the account: no personal value."""

    due_date: dt.date | None
    currency: str | None


@dataclass(frozen=True)
class Policy:
    suspend_after_days_overdue: int = 30
    restore_on: frozenset[str] = frozenset({"payment", "promise_kept"})
    restore_min_amount: Decimal = Decimal("0.01")

    @classmethod
    def load(cls, path: Path | None = None) -> Policy:
        data = yaml.safe_load((path or DEFAULT_POLICY).read_text(encoding="utf-8")) or {}
        where = str(path or DEFAULT_POLICY)
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError(f"{where}: expected a mapping with `version: 1`")
        suspend, restore = data.get("suspend") or {}, data.get("restore") or {}
        days = suspend.get("after_days_overdue", 30)
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 3650:
            raise ValueError(f"{where}: suspend.after_days_overdue: whole days between 0 and 3650")
        on = restore.get("on", ["payment", "promise_kept"])
        if not isinstance(on, list) or any(kind not in ("payment", "promise_kept") for kind in on):
            raise ValueError(f"{where}: restore.on: a list of payment and/or promise_kept")
        minimum = money(restore.get("min_amount", "0.01"))
        if minimum is None:
            raise ValueError(f"{where}: restore.min_amount: an amount such as \"0.01\"")
        return cls(days, frozenset(on), minimum)


@dataclass(frozen=True)
class BillingEvent:
    id: str
    type: str
    occurred_at: str
    account_id: str | None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "version": SCHEMA_VERSION, "occurred_at": self.occurred_at,
                "account_id": self.account_id, "data": self.data}

    def body(self) -> bytes:
        """The exact bytes POSTed and signed."""
        return json.dumps(self.as_dict(), separators=(",", ":"), ensure_ascii=False, sort_keys=True,
                          allow_nan=False).encode()


def money(value: Any) -> Decimal | None:
    """A stored amount as 2-decimal money (zero allowed), or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not number.is_finite() or number < 0 or number > Decimal("99999999.99") or number != number.quantize(
            Decimal("0.01")):
        return None
    return number.quantize(Decimal("0.01"))


def _date(value: Any) -> str | None:
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)[:10]).isoformat() if isinstance(value, str) else None
    except ValueError:
        return None


def _token(value: Any) -> str | None:
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    return {"true": True, "false": False}.get(str(value).lower()) if isinstance(value, str) else None


def _schedule(value: Any) -> list[dict[str, str]] | None:
    """A plan's schedule: a list, or its repr as the bot's `_record` stores it (every detail value is a str)."""
    if isinstance(value, str):
        if len(value) > _MAX_SCHEDULE_TEXT:
            return None
        try:
            value = ast.literal_eval(value)  # literals only, never code; size-capped above
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    if not isinstance(value, list) or not value or len(value) > _MAX_INSTALLMENTS:
        return None
    out = []
    for item in value:
        if not isinstance(item, dict):
            return None
        due, amount = _date(item.get("due_date")), money(item.get("amount"))
        if due is None or amount is None:
            return None
        out.append({"due_date": due, "amount": str(amount)})
    return out


def _utc(at: dt.datetime) -> str:
    at = at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)  # SQLite gives naive UTC
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def _put(data: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        data[name] = str(value) if isinstance(value, Decimal) else value


def _data(type_: str, kind: str, d: Mapping[str, Any], facts: AccountFacts | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if facts is not None and facts.currency and _TOKEN.fullmatch(facts.currency):
        data["currency"] = facts.currency
    if type_ == "payment_received":
        _put(data, "amount", money(d.get("amount")))
        _put(data, "reference", _token(d.get("reference")))
        _put(data, "remaining", money(d.get("remaining")))
    elif type_ == "promise_made":
        if kind == "partial":  # `part` is paid by link, `rest` is what is promised for `date`
            _put(data, "amount", money(d.get("rest")))
            _put(data, "paid_now", money(d.get("part")))
            data["kind"] = "partial_rest"
        else:
            _put(data, "amount", money(d.get("amount")))
            data["kind"] = "full"
        _put(data, "due_date", _date(d.get("date", d.get("due_date"))))
        _put(data, "needs_review", _flag(d.get("needs_review")))
    elif type_ in ("promise_kept", "promise_broken"):  # accounts/store.py `_transition`: a promise or a plan part
        _put(data, "amount", money(d.get("amount")))
        _put(data, "paid", money(d.get("paid")))
        _put(data, "due_date", _date(d.get("due_date", d.get("date"))))
        _put(data, "status", _token(d.get("status")))  # kept | settled (the balance was closed) | broken
        for name in ("promise_id", "plan_id", "part"):
            if name in d and not isinstance(d[name], bool):
                _put(data, name, _token(str(d[name])))
    elif type_ == "plan_created":
        schedule = _schedule(d.get("schedule"))
        if schedule is not None:
            data["schedule"] = schedule
            data["installments"] = len(schedule)
            data["total"] = str(sum((Decimal(item["amount"]) for item in schedule), Decimal("0.00")))
        _put(data, "needs_review", _flag(d.get("needs_review")))
    elif type_ in ("dispute_opened", "dispute_resolved"):
        _put(data, "case_number", _token(d.get("case_number")))
        _put(data, "reason", _token(d.get("reason")))  # an enumeration (fraud, wrong_amount…); never `details`
        _put(data, "resolution", _token(d.get("resolution")))
    elif type_ == "opt_out":
        _put(data, "channel", _token(d.get("channel")))  # never the text that opted out
    elif type_ == "handoff":
        _put(data, "reason", _token(d.get("reason")))  # never `last_message`
        _put(data, "verified", _flag(d.get("verified")))
    return data


def days_overdue(facts: AccountFacts | None, at: dt.datetime) -> int | None:
    if facts is None or facts.due_date is None:
        return None
    return (at.date() - facts.due_date).days


def billing_events(row: SourceEvent, facts: AccountFacts | None, policy: Policy) -> list[BillingEvent]:
    """The billing events of one account event, in the order they are sent (none for a kind billing ignores)."""
    type_ = KIND_TO_TYPE.get(row.kind)
    if type_ is None:
        return []
    detail = row.detail if isinstance(row.detail, Mapping) else {}
    occurred = _utc(row.at)
    data = _data(type_, row.kind, detail, facts)
    out = [BillingEvent(f"duebot-{row.id}-{type_}", type_, occurred, row.account_id, data)]

    # 停复机: duebot asks, billing decides (and answers through POST /billing/accounts/{id})
    if row.kind in policy.restore_on:
        # a payment's amount; what was paid toward a kept promise (a settled one: the whole balance was closed)
        paid = money(detail.get("paid", detail.get("amount")) if row.kind == "promise_kept" else detail.get("amount"))
        settled = row.kind == "promise_kept" and detail.get("status") == "settled"
        if paid is not None and (paid >= policy.restore_min_amount or settled):
            restore: dict[str, Any] = {"amount_paid": str(paid), "trigger": type_}
            _put(restore, "currency", data.get("currency"))
            _put(restore, "remaining", data.get("remaining"))
            out.append(BillingEvent(f"duebot-{row.id}-service_restore_requested", "service_restore_requested",
                                    occurred, row.account_id, restore))
    if row.kind == "promise_broken":
        overdue = days_overdue(facts, row.at)
        if overdue is not None and overdue >= policy.suspend_after_days_overdue:
            suspend: dict[str, Any] = {"days_overdue": overdue,
                                       "threshold_days": policy.suspend_after_days_overdue, "trigger": type_}
            _put(suspend, "promise_amount", data.get("amount"))
            _put(suspend, "currency", data.get("currency"))
            out.append(BillingEvent(f"duebot-{row.id}-service_suspend_recommended", "service_suspend_recommended",
                                    occurred, row.account_id, suspend))
    return out
