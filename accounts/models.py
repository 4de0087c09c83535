"""SQLAlchemy 2 tables. Money is Numeric (never float); times are UTC; phone numbers are E.164."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(20), index=True)
    id_last4: Mapped[str | None] = mapped_column(String(4))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    amount_due: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    due_date: Mapped[dt.date] = mapped_column(Date)
    segment: Mapped[str] = mapped_column(String(32))
    timezone: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="en")
    pack: Mapped[str] = mapped_column(String(16), default="us")
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


class OptOut(Base):
    """Current consent state per number: an opt-out holds every channel until the subscriber opts back in."""

    __tablename__ = "opt_outs"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
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
