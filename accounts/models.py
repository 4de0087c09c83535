"""SQLAlchemy 2 tables. Money is Numeric (never float); times are UTC; phone numbers are E.164.

Money that enters from outside (an import file, a payment confirmation) is read by `parse_amount` alone: plain
decimal notation, finite, positive, at most 2 decimals and at most `MAX_AMOUNT`. The cap is below 100 million in
the account's own currency: above the largest business telecom bill in any currency duebot collects in (KRW and
JPY included), well inside the Numeric(12, 2) columns, and small enough that a phone number or an ID number pasted
into an amount column is refused instead of being collected.

Personal values are sealed at rest (issue 18, duebot/crypto.py): an account's name, phone, ID digits and birth date
(their columns hold envelopes, the attributes of the same names read and write plaintext, and the phone is found
through its blind index `phone_index`), an opt-out's number, and the personal values inside an event's detail and
a dispute's details (the store seals and opens those). Raw SQL reads `<name>_sealed` and opens it with
`open_sealed`; the database can compare none of them.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, ForeignKey, Integer, Numeric, String, Text, event, inspect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, object_session, validates

from duebot import crypto

MAX_AMOUNT = Decimal("99999999.99")
MAX_AMOUNT_TEXT = 32  # characters of an amount as written (thousands separators included)
_PLAIN_DECIMAL = re.compile(r"\+?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_NOT_FINITE = re.compile(r"[+-]?(s?nan|inf|infinity)", re.IGNORECASE)


class AmountError(ValueError):
    """An amount that is not money; the message names the field and says why."""


def parse_amount(text: str, field: str = "amount") -> Decimal:
    """`text` as a money amount, quantized to cents, or AmountError saying why it is not one: NaN and infinities,
    exponent notation (1E+3), a sign other than +, more than 2 decimals, zero, or more than MAX_AMOUNT."""
    text = text.strip()
    shown = text if len(text) <= 40 else text[:40] + "…"
    if not text:
        raise AmountError(f"{field}: missing")
    if len(text) > MAX_AMOUNT_TEXT:
        raise AmountError(f"{field}: {len(text)} characters is not an amount ({shown!r})")
    if _NOT_FINITE.fullmatch(text):
        raise AmountError(f"{field}: {shown!r} is not a finite number")
    if not _PLAIN_DECIMAL.fullmatch(text):
        if text.startswith("-"):
            raise AmountError(f"{field}: must be positive ({shown!r})")
        try:
            Decimal(text)
        except InvalidOperation:
            raise AmountError(f"{field}: not a number ({shown!r})") from None
        raise AmountError(f"{field}: write plain decimal digits, e.g. 1234.50, not {shown!r}")
    value = Decimal(text)
    if value <= 0:
        raise AmountError(f"{field}: must be positive ({shown!r})")
    if value > MAX_AMOUNT:
        raise AmountError(f"{field}: {shown} is above the cap of {MAX_AMOUNT} (a shifted column? a misplaced number?)")
    cents = value.quantize(Decimal("0.01"))
    if cents != value:
        raise AmountError(f"{field}: at most 2 decimals ({shown!r})")
    return cents


def _stored_amount(key: str, value: object, *, positive: bool) -> object:
    """The last line of defence for money columns, whatever the caller: no NaN, infinity or absurd value."""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        ok = number.is_finite() and (number > 0 if positive else number >= 0) and number <= MAX_AMOUNT
    except InvalidOperation:
        ok = False
    if not ok:
        low = "0 <" if positive else "0 <="
        raise AmountError(f"{key}: {value!r} is not an amount this column holds ({low} amount <= {MAX_AMOUNT})")
    return value


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


# --- personal values, sealed at rest (issue 18) --------------------------------------------------------------


class _Unsealed:
    """A plaintext value set on a row and not yet sealed (the flush seals it). Never a str: should it ever reach
    the database unsealed, binding it fails instead of writing the plaintext."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


class Sealed:
    """The plaintext view of a sealed column `<name>_sealed`: reading opens the envelope (once per stored value),
    writing keeps the value until the row is flushed, when `seal_account` seals it."""

    def __init__(self, *, date: bool = False) -> None:
        self.date = date
        self.name = self.column = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.column = name, f"{name}_sealed"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        stored = getattr(obj, self.column)
        if stored is None:
            return None
        if isinstance(stored, _Unsealed):
            return stored.value
        opened = obj.__dict__.setdefault("_opened", {})
        hit = opened.get(self.name)
        if hit is not None and hit[0] == stored:
            return hit[1]
        text = keyring_of(obj).open_text(stored, seal_context(self.name, obj.id))
        value = dt.date.fromisoformat(text) if self.date else text
        opened[self.name] = (stored, value)
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        if value is not None:
            if self.date and isinstance(value, str):
                value = dt.date.fromisoformat(value)
            wanted = dt.date if self.date else str
            if not isinstance(value, wanted) or (self.date and isinstance(value, dt.datetime)):
                raise TypeError(f"{self.name}: expected {wanted.__name__}, got {type(value).__name__}")
        setattr(obj, self.column, None if value is None else _Unsealed(value))


SEALED_FIELDS = ("name", "phone", "id_last4", "birth_date")
DEFAULT_ACCOUNT_PACK = "us"  # the pack column's default


def seal_context(field: str, account_id: str) -> str:
    """The authenticated context of a sealed account value: it opens only in its own row and column."""
    return f"accounts.{field}:{account_id}"


def keyring_of(obj: Any) -> crypto.Keyring:
    """The store's keyring (carried by its sessions and by the rows they loaded), else the deployment's."""
    found = obj.__dict__.get("_keyring")
    if found is None:
        session = object_session(obj)
        found = session.info.get("keyring") if session is not None else None
    return found or crypto.keyring()


@lru_cache(maxsize=64)
def pack_algorithm(pack: str | None) -> str | None:
    """The cipher a pack asks for (`encryption:` in its YAML), None when it names none or is unknown."""
    from duebot.policies.packs import PackError, load_pack

    try:
        return load_pack(pack).encryption if pack else None
    except PackError:
        return None


def open_sealed(field: str, account_id: str, stored: str | None, keyring: crypto.Keyring) -> Any:
    """The plaintext of a sealed account column read with raw SQL (campaign preview, reports): str, or a date for
    birth_date; None stays None."""
    if stored is None:
        return None
    text = keyring.open_text(stored, seal_context(field, account_id))
    return dt.date.fromisoformat(text) if field == "birth_date" else text


# Free text and contact details kept beside an account (an event's detail, a dispute's details): the values under
# the keys the evidence log also treats as personal are sealed, with the deployment's cipher.
EVENT_CONTEXT = "account_events.detail"


def dispute_context(case_number: str) -> str:
    return f"disputes.details:{case_number}"


def seal_values(detail: dict, context: str, keyring: crypto.Keyring) -> dict:
    """`detail` with the text under every personal key (evidence/records.py PERSONAL_FIELDS) sealed."""
    from duebot.evidence.records import PERSONAL_FIELDS

    return {k: keyring.seal_text(v, f"{context}.{k}") if k in PERSONAL_FIELDS and isinstance(v, str) and v else v
            for k, v in detail.items()}


def open_values(detail: dict, context: str, keyring: crypto.Keyring, *, reseal: bool = False) -> dict:
    """`detail` with its sealed values opened (with `reseal`: sealed again where not sealed with the current key)."""
    from duebot.evidence.records import PERSONAL_FIELDS

    out = {}
    for k, v in detail.items():
        if k in PERSONAL_FIELDS and isinstance(v, str) and v:
            if crypto.looks_sealed(v):
                if not reseal:
                    v = keyring.open_text(v, f"{context}.{k}")
                elif not keyring.is_current(crypto.Envelope.parse_text(v)):
                    v = keyring.seal_text(keyring.open_text(v, f"{context}.{k}"), f"{context}.{k}")
            elif reseal:  # written in the clear (a store from before sealing, a raw insert): sealed now
                v = keyring.seal_text(v, f"{context}.{k}")
        out[k] = v
    return out


def account_algorithm(pack: str | None, keyring: crypto.Keyring) -> str:
    return pack_algorithm(pack or DEFAULT_ACCOUNT_PACK) or keyring.default_algorithm


def seal_account(account: Account, keyring: crypto.Keyring | None = None, *, reseal: bool = False) -> bool:
    """Seal every value set since the last flush, and the phone's blind index; with `reseal`, also every value
    not sealed with the current key and the cipher of the account's pack (rekey, a changed pack). Returns
    whether anything changed."""
    keyring = keyring or keyring_of(account)
    if account.id is None:
        raise ValueError("an account needs its id before its personal values can be sealed")
    algorithm = account_algorithm(account.pack, keyring)
    changed = False
    for name in SEALED_FIELDS:
        column = f"{name}_sealed"
        stored = getattr(account, column)
        if stored is None:
            continue
        if not isinstance(stored, _Unsealed):
            if not reseal or keyring.is_current(crypto.Envelope.parse_text(stored), algorithm):
                continue
            stored = _Unsealed(getattr(account, name))
        value = stored.value
        text = value.isoformat() if isinstance(value, dt.date) else value
        envelope = keyring.seal_text(text, seal_context(name, account.id), algorithm)
        setattr(account, column, envelope)
        account.__dict__.setdefault("_opened", {})[name] = (envelope, value)
        if name == "phone":
            account.phone_index = keyring.index(text)
        changed = True
    if reseal and account.phone_sealed is not None:
        index = keyring.index(account.phone)
        if account.phone_index != index:
            account.phone_index = index
            changed = True
    return changed


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Personal values are sealed (duebot/crypto.py): these columns hold envelopes; `name`, `phone`, `id_last4` and
    # `birth_date` below read and write the plaintext, sealed with the cipher of the account's pack at flush.
    name_sealed: Mapped[str] = mapped_column(Text)
    phone_sealed: Mapped[str] = mapped_column(Text)
    phone_index: Mapped[str] = mapped_column(String(32), index=True)  # blind index: finding an account by number
    id_last4_sealed: Mapped[str | None] = mapped_column(Text)
    birth_date_sealed: Mapped[str | None] = mapped_column(Text)
    name = Sealed()
    phone = Sealed()
    id_last4 = Sealed()
    birth_date = Sealed(date=True)
    amount_due: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    due_date: Mapped[dt.date] = mapped_column(Date)
    segment: Mapped[str] = mapped_column(String(32))
    timezone: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="en")
    pack: Mapped[str] = mapped_column(String(16), default=DEFAULT_ACCOUNT_PACK)
    line_type: Mapped[str] = mapped_column(String(16), default="unknown")
    consent_ai_voice: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_sms: Mapped[bool] = mapped_column(Boolean, default=True)
    # open → paid | disputed | legal | human_review | closed
    status: Mapped[str] = mapped_column(String(20), default="open")
    wrong_number: Mapped[bool] = mapped_column(Boolean, default=False)
    # Zones of the number ("|"-joined, from phonenumbers at import): lets campaign preview skip re-parsing it.
    phone_zones: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    @validates("amount_due")
    def _check_amount_due(self, key: str, value: Decimal) -> Decimal:
        return _stored_amount(key, value, positive=False)  # type: ignore[return-value]


@event.listens_for(Account, "load")
def _loaded(account: Account, context: Any) -> None:
    # Session.merge fires `load` with no query context: the keyring then arrives with the store's own session
    session = getattr(context, "session", None)
    keyring = session.info.get("keyring") if session is not None else None
    if keyring is not None:
        account.__dict__["_keyring"] = keyring


@event.listens_for(Account, "before_insert")
def _before_insert(_mapper: Any, _connection: Any, account: Account) -> None:
    seal_account(account)


@event.listens_for(Account, "before_update")
def _before_update(_mapper: Any, _connection: Any, account: Account) -> None:
    # a new pack may ask for another cipher: its values are sealed again
    seal_account(account, reseal=inspect(account).attrs.pack.history.has_changes())


class OptOut(Base):
    """Current consent state per number: an opt-out holds every channel until the subscriber opts back in. Keyed by
    the number's blind index; the number itself is sealed (so rekey can index it again under a new index key)."""

    __tablename__ = "opt_outs"

    phone_index: Mapped[str] = mapped_column(String(32), primary_key=True)
    phone_sealed: Mapped[str | None] = mapped_column(Text)
    opted_out: Mapped[bool] = mapped_column(Boolean)
    channel: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Promise(Base):
    __tablename__ = "promises"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(128))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    due_date: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16), default="full")  # full | partial_rest
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InstallmentPlan(Base):
    __tablename__ = "installment_plans"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(128))
    schedule: Mapped[list] = mapped_column(JSON)  # [{"due_date": "YYYY-MM-DD", "amount": "12.34"}, …]
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Obligation(Base):
    """A promised payment followed through (issue 20, campaigns/followup.py): a promise, or one part of a plan.
    `key` is its idempotency key (`promise:<id>` or `plan:<id>:<part>`). Times are epoch seconds. Status:
    open → kept (paid by the deadline, partial payments summed) | broken (not) | settled (the balance was closed).
    The reminder: pending → sending (claimed, before the text) → sent | refused | unknown (a crash while
    sending: never repeated). Re-entry after a broken promise: pending → enqueuing → done (`reentry_detail` says
    where, or why not)."""

    __tablename__ = "obligations"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    promise_id: Mapped[int | None] = mapped_column(Integer)
    plan_id: Mapped[int | None] = mapped_column(Integer)
    part: Mapped[int] = mapped_column(Integer, default=0)
    conversation_id: Mapped[str | None] = mapped_column(String(128))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    paid: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0.00"))
    due_date: Mapped[dt.date] = mapped_column(Date)
    made_at: Mapped[float] = mapped_column(Float)  # when the promise or plan was made: payments count from then
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    remind_at: Mapped[float | None] = mapped_column(Float)  # None: no reminder (too late when made)
    remind_state: Mapped[str] = mapped_column(String(16), default="pending")
    remind_tries: Mapped[int] = mapped_column(Integer, default=0)
    remind_claimed_at: Mapped[float | None] = mapped_column(Float)
    remind_detail: Mapped[dict] = mapped_column(JSON, default=dict)
    check_at: Mapped[float] = mapped_column(Float)  # the deadline: end of the due date + grace days, local time
    settled_at: Mapped[float | None] = mapped_column(Float)
    reentry_state: Mapped[str | None] = mapped_column(String(16))
    reentry_detail: Mapped[dict] = mapped_column(JSON, default=dict)
    # Outcome records written with a transition, not yet in the evidence inbox (submitted, then cleared: a crash in
    # between submits them again, never loses them).
    announce: Mapped[list] = mapped_column(JSON, default=list)


class Dispute(Base):
    __tablename__ = "disputes"

    case_number: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(32))
    details: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Payment(Base):
    __tablename__ = "payments"

    reference: Mapped[str] = mapped_column(String(64), primary_key=True)  # idempotency: one row per reference
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    paid_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @validates("amount")
    def _check_amount(self, key: str, value: Decimal) -> Decimal:
        return _stored_amount(key, value, positive=True)  # type: ignore[return-value]


class Event(Base):
    """Handoffs, callbacks, complaints, wrong numbers, escalations: one row each, for agents and KPIs."""

    __tablename__ = "account_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[str | None] = mapped_column(String(64), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- outbound campaigns (issue 9) ---------------------------------------------------------------------
# Campaign times are epoch seconds (Float): the gate works in them, and preview reads millions of rows.

class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    strategy: Mapped[str] = mapped_column(Text)  # path of the strategy YAML (policies/campaigns/*.yml)
    source: Mapped[str | None] = mapped_column(Text)
    # draft → running ⇄ paused → completed | cancelled
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_at: Mapped[float] = mapped_column(Float)
    launched_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)


class CampaignAccount(Base):
    """Where each account is in its schedule: the scheduler enqueues rows that are due and not queued."""

    __tablename__ = "campaign_accounts"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, default=0)  # index of the next step in the account's schedule
    due_at: Mapped[float] = mapped_column(Float, default=0.0)
    queued: Mapped[bool] = mapped_column(Boolean, default=False)
    # active | finished (schedule done) | stopped (settled, opted out…) | blocked (gate: waiting cannot help)
    state: Mapped[str] = mapped_column(String(16), default="active")
    reason: Mapped[str | None] = mapped_column(String(64))


class Attempt(Base):
    """One step of one account in one campaign; `key` is the idempotency key. States: denied (by the gate,
    retriable) → started (durable before the contact) → done | unknown (outcome lost in a crash: counted as
    contacted, never repeated) | skipped (cancelled)."""

    __tablename__ = "campaign_attempts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(32), index=True)
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    step: Mapped[int] = mapped_column(Integer)
    step_name: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    worker: Mapped[str | None] = mapped_column(String(128))
    reservation_id: Mapped[str | None] = mapped_column(String(200))
    tries: Mapped[int] = mapped_column(Integer, default=1)
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    next_allowed_at: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String(16))  # delivered | failed | no_answer | voicemail | answered
    right_party: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[str | None] = mapped_column(String(32))  # promise | plan | payment | dispute | opt_out | …
    handled_by: Mapped[str | None] = mapped_column(String(16))  # bot | human
    duration: Mapped[float | None] = mapped_column(Float)  # seconds of handling (call or conversation)
    conversation_id: Mapped[str | None] = mapped_column(String(128))


# --- the console's work queue (issue 20) -------------------------------------------------------------------

WORK_CONTEXT = "work_items"  # sealing context of a work item's detail and resolution note


class WorkItem(Base):
    """Something a person must do about an account (console/views_work.py): a handoff, a callback, a human review, a
    legal track or threat, an open dispute, a broken promise, a campaign's `human_queue` step. Made from what the
    store already holds, once per (kind, source): `source` names the event (`event:<id>`), the dispute
    (`dispute:<case>`), the promise (`promise:<id>`), the account's status (`status:<account>@<time>`) or the
    campaign attempt (its key). open → assigned → closed; `resolution` says how it was closed. The detail's
    personal values (the last message) and the note are sealed at rest like an event's."""

    __tablename__ = "work_items"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(240), unique=True)  # "<kind>|<source>": one item per (kind, source)
    kind: Mapped[str] = mapped_column(String(24))
    source: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[str | None] = mapped_column(String(64), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(64))
    high_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open | assigned | closed
    assignee: Mapped[str | None] = mapped_column(String(64))
    resolution: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    closed_by: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
