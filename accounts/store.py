"""The account store: one class, SQLite under $DUEBOT_DATA_DIR by default, PostgreSQL by DUEBOT_DB_URL."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from duebot.accounts.models import (
    Account,
    Attempt,
    Dispute,
    Event,
    InstallmentPlan,
    OptOut,
    Payment,
    Promise,
    utcnow,
)
from duebot.config import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def default_url(settings: Settings | None = None) -> str:
    if url := os.environ.get("DUEBOT_DB_URL"):
        return url
    settings = settings or Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{settings.data_dir / 'duebot.sqlite3'}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API types
    # WAL lets the action server, the web service and campaign workers read while one writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def migrate(engine: Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class AccountStore:
    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        self.engine = create_engine(self.url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # --- accounts ------------------------------------------------------------------------------------
    def upsert_account(self, account: Account) -> bool:
        """Insert or update by id; return True when the row is new (so re-imports are idempotent)."""
        with self.session() as s:
            existing = s.get(Account, account.id)
            s.merge(account)
            return existing is None

    def get_account(self, account_id: str) -> Account | None:
        with self.session() as s:
            return s.get(Account, account_id)

    def accounts_by_phone(self, phone: str) -> list[Account]:
        with self.session() as s:
            return list(s.scalars(select(Account).where(Account.phone == phone)))

    def set_status(self, account_id: str, status: str) -> None:
        with self.session() as s:
            account = s.get(Account, account_id)
            if account is not None:
                account.status = status

    def mark_wrong_number(self, account_id: str) -> None:
        with self.session() as s:
            account = s.get(Account, account_id)
            if account is not None:
                account.wrong_number = True

    # --- consent --------------------------------------------------------------------------------------
    def set_opt_out(self, phone: str, opted_out: bool, channel: str, source: str) -> None:
        with self.session() as s:
            s.merge(OptOut(phone=phone, opted_out=opted_out, channel=channel, source=source, at=utcnow()))

    def is_opted_out(self, phone: str) -> bool:
        with self.session() as s:
            row = s.get(OptOut, phone)
            return bool(row and row.opted_out)

    # --- outcomes ---------------------------------------------------------------------------------------
    def add_promise(self, account_id: str, amount: Decimal, due: dt.date, conversation_id: str | None,
                    kind: str = "full", needs_review: bool = False) -> Promise:
        with self.session() as s:
            promise = Promise(account_id=account_id, amount=amount, due_date=due, kind=kind,
                              conversation_id=conversation_id, needs_review=needs_review)
            s.add(promise)
            return promise

    def add_plan(self, account_id: str, schedule: list[dict[str, str]], conversation_id: str | None,
                 needs_review: bool = False) -> InstallmentPlan:
        with self.session() as s:
            plan = InstallmentPlan(account_id=account_id, schedule=schedule, conversation_id=conversation_id,
                                   needs_review=needs_review)
            s.add(plan)
            return plan

    def open_dispute(self, account_id: str, reason: str, details: str, conversation_id: str | None) -> Dispute:
        """Open a case and hold collection on the account until it is resolved."""
        with self.session() as s:
            dispute = Dispute(case_number=f"D-{secrets.token_hex(4).upper()}", account_id=account_id,
                              reason=reason, details=details, conversation_id=conversation_id)
            s.add(dispute)
            account = s.get(Account, account_id)
            if account is not None:
                account.status = "disputed"
            return dispute

    def resolve_dispute(self, case_number: str) -> None:
        with self.session() as s:
            dispute = s.get(Dispute, case_number)
            if dispute is None:
                raise KeyError(case_number)
            dispute.status = "resolved"
            dispute.resolved_at = utcnow()
            account = s.get(Account, dispute.account_id)
            if account is not None and account.status == "disputed":
                account.status = "open"

    def has_open_dispute(self, account_id: str) -> bool:
        with self.session() as s:
            return s.scalar(select(Dispute.case_number).where(
                Dispute.account_id == account_id, Dispute.status == "open").limit(1)) is not None

    def record_payment(self, account_id: str, amount: Decimal, reference: str) -> bool:
        """Apply a confirmed payment once per reference; close collection when nothing is left owed."""
        with self.session() as s:
            if s.get(Payment, reference) is not None:
                return False
            s.add(Payment(reference=reference, account_id=account_id, amount=amount))
            account = s.get(Account, account_id)
            if account is None:
                raise KeyError(account_id)
            account.amount_due = max(Decimal("0.00"), account.amount_due - amount)
            if account.amount_due == 0:
                account.status = "paid"
            return True

    def add_event(self, kind: str, account_id: str | None, conversation_id: str | None,
                  detail: dict | None = None) -> None:
        with self.session() as s:
            s.add(Event(kind=kind, account_id=account_id, conversation_id=conversation_id, detail=detail or {}))

    def events(self, account_id: str) -> list[Event]:
        with self.session() as s:
            return list(s.scalars(select(Event).where(Event.account_id == account_id).order_by(Event.id)))

    def promises(self, account_id: str) -> list[Promise]:
        with self.session() as s:
            return list(s.scalars(select(Promise).where(Promise.account_id == account_id).order_by(Promise.id)))

    def plans(self, account_id: str) -> list[InstallmentPlan]:
        with self.session() as s:
            return list(s.scalars(select(InstallmentPlan).where(InstallmentPlan.account_id == account_id)))

    def disputes(self, account_id: str) -> list[Dispute]:
        with self.session() as s:
            return list(s.scalars(select(Dispute).where(Dispute.account_id == account_id)))

    # --- what the compliance gate needs to know -------------------------------------------------------
    def gate_subscriber(self, account_id: str) -> dict:
        """The `subscriber` object of a gate request, from the store's current state (opt-out, dispute)."""
        account = self.get_account(account_id)
        if account is None:
            raise KeyError(account_id)
        subscriber = {
            "id": account.id,
            "line_type": account.line_type,
            "consent": {"ai_voice": account.consent_ai_voice, "sms": account.consent_sms},
            "opted_out": self.is_opted_out(account.phone),
            "dispute_open": self.has_open_dispute(account.id),
        }
        if account.timezone:
            subscriber["timezone"] = account.timezone
        return subscriber

    # --- bulk import (issue 9) -------------------------------------------------------------------------
    def upsert_accounts(self, accounts: list[Account]) -> int:
        """Insert or update many accounts in one transaction; returns how many were new. A repeated id within
        the batch counts once as new, then as an update (as one-by-one upserts would)."""
        if not accounts:
            return 0
        columns = [c.name for c in Account.__table__.columns if c.name not in ("created_at", "updated_at")]
        now = utcnow()
        rows: dict[str, dict] = {}
        for account in accounts:
            rows[account.id] = {name: getattr(account, name) for name in columns} | {"updated_at": now}
        with self.session() as s:
            existing = set(s.scalars(select(Account.id).where(Account.id.in_(list(rows)))))
            if self.engine.dialect.name in ("sqlite", "postgresql"):
                dialect = __import__(f"sqlalchemy.dialects.{self.engine.dialect.name}", fromlist=["insert"])
                stmt = dialect.insert(Account)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[Account.id],
                    set_={name: stmt.excluded[name] for name in [*columns, "updated_at"] if name != "id"})
                s.execute(stmt, [r | {"created_at": now} for r in rows.values()])
            else:  # any other database: the portable, slower path
                for r in rows.values():
                    s.merge(Account(**r))
        return len({a.id for a in accounts} - existing)

    def segment_history(self, account_ids: list[str]) -> dict[str, tuple[int, int]]:
        """(broken promises, disputes ever opened) per known account, for segment rules on re-import."""
        out: dict[str, tuple[int, int]] = {}
        if not account_ids:
            return out
        with self.session() as s:
            broken = dict(s.execute(select(Promise.account_id, func.count()).where(
                Promise.account_id.in_(account_ids), Promise.status == "broken").group_by(Promise.account_id)).all())
            disputes = dict(s.execute(select(Dispute.account_id, func.count()).where(
                Dispute.account_id.in_(account_ids)).group_by(Dispute.account_id)).all())
        for account_id in set(broken) | set(disputes):
            out[account_id] = (int(broken.get(account_id, 0)), int(disputes.get(account_id, 0)))
        return out

    # --- contact history for the gate (campaign attempts) ----------------------------------------------
    def contact_history(self, account_id: str) -> list[dict]:
        """Past outbound contacts of an account as gate `history` entries. Attempts started but with an unknown
        outcome count as contacts (outcome null: the gate's stricter reading)."""
        from duebot.policies.timeutil import format_instant

        with self.session() as s:
            rows = s.execute(select(Attempt.started_at, Attempt.channel, Attempt.purpose, Attempt.account_id,
                                    Attempt.outcome, Attempt.reservation_id).where(
                Attempt.account_id == account_id, Attempt.state.in_(("started", "done", "unknown")),
                Attempt.channel.in_(("sms", "voice")))).all()
        history = []
        for at, channel, purpose, debt_id, outcome, reservation_id in rows:
            entry = {"at": format_instant(at), "channel": channel, "purpose": purpose, "debt_id": debt_id,
                     "outcome": outcome}
            if reservation_id:
                entry["reservation_id"] = reservation_id
            history.append(entry)
        return history
