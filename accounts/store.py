"""The account store: one class, SQLite under $DUEBOT_DATA_DIR by default, PostgreSQL by DUEBOT_DB_URL.

Personal values are sealed at rest (accounts/models.py `Sealed`, duebot/crypto.py) with the store's keyring: its
sessions carry it, so rows read and written through them open and seal with it. Lookups by phone number go through
the blind index (`phone_index`), never through the sealed column.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, delete, event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from duebot import crypto
from duebot.accounts.models import (
    EVENT_CONTEXT,
    Account,
    Attempt,
    Dispute,
    Event,
    InstallmentPlan,
    Obligation,
    OptOut,
    Payment,
    Promise,
    dispute_context,
    open_values,
    seal_account,
    seal_values,
    utcnow,
)
from duebot.settings import Settings, load_settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def default_url(settings: Settings | None = None) -> str:
    settings = settings or load_settings()
    if settings.database.url:
        return settings.database.url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{settings.data_dir / 'duebot.sqlite3'}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API types
    # WAL lets the action server, the web service and campaign workers read while one writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA secure_delete=ON")  # a value overwritten or deleted leaves no copy in a free page
    cursor.close()


SEALING_REVISION = "0006"  # accounts/migrations/versions/0006_encryption_at_rest.py


def migrate(engine: Engine, keyring: crypto.Keyring | None = None) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        config.attributes["keyring"] = keyring  # 0006 seals the rows of a store that predates sealing
        command.upgrade(config, "head")
    if engine.dialect.name == "sqlite" and before is not None and before < SEALING_REVISION:
        # the values just sealed were in the clear: no copy may stay in a free page, or in the WAL's old frames
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM")
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


OPT_OUT_CONTEXT = "opt_outs.phone"


@dataclass
class RekeyReport:
    accounts: int = 0  # rows re-sealed (another key or cipher) or re-indexed
    opt_outs: int = 0
    events: int = 0  # events' and disputes' details re-sealed
    errors: list[str] = field(default_factory=list)  # values that cannot be opened: altered, or their key is gone


class AccountStore:
    def __init__(self, url: str | None = None, keyring: crypto.Keyring | None = None) -> None:
        self.url = url or default_url()
        self.keyring = keyring or crypto.keyring()
        self.engine = create_engine(self.url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        migrate(self.engine, self.keyring)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, info={"keyring": self.keyring})

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # --- accounts ------------------------------------------------------------------------------------
    def upsert_account(self, account: Account) -> bool:
        """Insert or update by id; return True when the row is new (so re-imports are idempotent)."""
        seal_account(account, self.keyring)  # merge copies columns: the sealed ones must be sealed by then
        with self.session() as s:
            existing = s.get(Account, account.id)
            s.merge(account)
            return existing is None

    def get_account(self, account_id: str) -> Account | None:
        with self.session() as s:
            return s.get(Account, account_id)

    def accounts_by_phone(self, phone: str) -> list[Account]:
        """The accounts of a number, found by its blind index (under every configured index key)."""
        wanted = crypto.normalise_phone(phone)
        with self.session() as s:
            found = list(s.scalars(select(Account).where(Account.phone_index.in_(self.keyring.indexes(phone)))))
        return [a for a in found if crypto.normalise_phone(a.phone) == wanted]  # an index is 128 bits; still check

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
        current, *old = self.keyring.indexes(phone)
        with self.session() as s:
            if old:  # the same number's row under a retired index key: this one replaces it
                s.execute(delete(OptOut).where(OptOut.phone_index.in_(old)))
            s.merge(OptOut(phone_index=current, phone_sealed=self.keyring.seal_text(
                crypto.normalise_phone(phone), OPT_OUT_CONTEXT), opted_out=opted_out, channel=channel, source=source,
                at=utcnow()))

    def is_opted_out(self, phone: str) -> bool:
        with self.session() as s:
            row = s.scalars(select(OptOut).where(OptOut.phone_index.in_(self.keyring.indexes(phone)))
                            .order_by(OptOut.at.desc()).limit(1)).first()
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
        case_number = f"D-{secrets.token_hex(4).upper()}"
        sealed = self.keyring.seal_text(details, dispute_context(case_number)) if details else details
        with self.session() as s:
            dispute = Dispute(case_number=case_number, account_id=account_id, reason=reason, details=sealed,
                              conversation_id=conversation_id)
            s.add(dispute)
            account = s.get(Account, account_id)
            if account is not None:
                account.status = "disputed"
        return self._opened_dispute(dispute)

    def _opened_dispute(self, dispute: Dispute) -> Dispute:
        """The (detached) case with its details opened: what the subscriber said is sealed at rest."""
        if dispute.details and crypto.looks_sealed(dispute.details):
            set_committed_value(dispute, "details",
                                self.keyring.open_text(dispute.details, dispute_context(dispute.case_number)))
        return dispute

    def resolve_dispute(self, case_number: str, resolution: str | None = None) -> None:
        """Close the case; a disputed account is open again (collection resumes). The account's history gets a
        `dispute_resolved` event in the same transaction (billing is told: channels/billing)."""
        with self.session() as s:
            dispute = s.get(Dispute, case_number)
            if dispute is None:
                raise KeyError(case_number)
            dispute.status = "resolved"
            dispute.resolved_at = utcnow()
            account = s.get(Account, dispute.account_id)
            if account is not None and account.status == "disputed":
                account.status = "open"
            s.add(Event(kind="dispute_resolved", account_id=dispute.account_id, conversation_id=None,
                        detail=seal_values({"case_number": case_number, "reason": dispute.reason,
                                            **({"resolution": resolution} if resolution else {})},
                                           EVENT_CONTEXT, self.keyring)))

    def has_open_dispute(self, account_id: str) -> bool:
        with self.session() as s:
            return s.scalar(select(Dispute.case_number).where(
                Dispute.account_id == account_id, Dispute.status == "open").limit(1)) is not None

    def record_payment(self, account_id: str, amount: Decimal, reference: str) -> bool:
        """Apply a confirmed payment once per reference; close collection when nothing is left owed."""
        with self.session() as s:
            if s.get(Payment, reference) is not None:
                return False
            account = s.get(Account, account_id)
            if account is None:  # before the payment row: its foreign key would fail the flush
                raise KeyError(account_id)
            s.add(Payment(reference=reference, account_id=account_id, amount=amount))
            account.amount_due = max(Decimal("0.00"), account.amount_due - amount)
            if account.amount_due == 0:
                account.status = "paid"
            return True

    # --- follow-through of promises and plans (issue 20, campaigns/followup.py) ----------------------------
    def apply_payment(self, account_id: str, amount: Decimal, reference: str,
                      at: dt.datetime | None = None) -> bool:
        """`record_payment`, and in the same transaction the follow-through: the payment counts toward the
        account's open promises and plan parts (earliest due first, partial payments summed); those paid in full
        are kept and their pending reminders cancelled; when the balance is closed, every open one is settled."""
        with self.session() as s:
            if s.get(Payment, reference) is not None:
                return False
            account = s.get(Account, account_id)
            if account is None:
                raise KeyError(account_id)
            s.add(Payment(reference=reference, account_id=account_id, amount=amount, paid_at=at or utcnow()))
            account.amount_due = max(Decimal("0.00"), account.amount_due - amount)
            if account.amount_due == 0:
                account.status = "paid"
            # the account's history, and billing's `payment_received` (channels/billing), in the same transaction
            s.add(Event(kind="payment", account_id=account_id, conversation_id=None,
                        detail=seal_values({"amount": str(amount), "reference": reference,
                                            "remaining": str(account.amount_due)}, EVENT_CONTEXT, self.keyring)))
            s.flush()
            self.settle_obligations(s, account, (at or utcnow()).timestamp())
            return True

    def settle_obligations(self, s: Session, account: Account, now: float, *, deadline_passed: bool = False) -> list[
            Obligation]:
        """Share the account's payments out over its obligations, each payment once, to the earliest due that was
        made before it and whose deadline it meets; an open one paid in full becomes kept (with `deadline_passed`,
        one past its deadline and not paid becomes broken). Returns the obligations that changed status. Runs
        inside the caller's transaction `s`."""
        rows = list(s.scalars(select(Obligation).where(Obligation.account_id == account.id).order_by(
            Obligation.due_date, Obligation.made_at, Obligation.part)))
        if not rows:
            return []
        payments = s.execute(select(Payment.paid_at, Payment.amount).where(Payment.account_id == account.id)
                             .order_by(Payment.paid_at)).all()
        share = {row.key: Decimal("0.00") for row in rows}
        for paid_at, amount in payments:
            when = (paid_at if paid_at.tzinfo else paid_at.replace(tzinfo=dt.UTC)).timestamp()
            left = Decimal(amount)
            for row in rows:
                if left <= 0:
                    break
                if row.made_at - 60 <= when <= row.check_at and share[row.key] < row.amount:
                    used = min(left, Decimal(row.amount) - share[row.key])
                    share[row.key] += used
                    left -= used
        changed = []
        for row in rows:
            if row.status != "open":
                continue
            row.paid = share[row.key]
            status = None
            if share[row.key] >= row.amount:
                status = "kept"
            elif account.amount_due == 0:
                status = "settled"  # the whole balance was paid: nothing is left to promise
            elif deadline_passed and now >= row.check_at:
                status = "broken"
            if status is not None:
                self._transition(s, row, status, now)
                changed.append(row)
        self._close_sources(s, rows)
        return changed

    def _transition(self, s: Session, row: Obligation, status: str, now: float) -> None:
        row.status, row.settled_at = status, now
        if row.remind_state == "pending":
            row.remind_state = "cancelled"
        kind = {"kept": "promise_kept", "settled": "promise_kept", "broken": "promise_broken"}[status]
        detail = {"key": row.key, "status": status, "amount": str(row.amount), "paid": str(row.paid),
                  "due_date": row.due_date.isoformat()}
        if row.promise_id is not None:
            detail["promise_id"] = row.promise_id
        else:
            detail |= {"plan_id": row.plan_id, "part": row.part}
        s.add(Event(kind=kind, account_id=row.account_id, conversation_id=row.conversation_id,
                    detail=seal_values(detail, EVENT_CONTEXT, self.keyring)))
        row.announce = [*(row.announce or []), {"type": kind, "account_id": row.account_id, **detail}]

    @staticmethod
    def _close_sources(s: Session, rows: list[Obligation]) -> None:
        """A promise takes its obligation's status; a plan is broken when a part is, kept when all are."""
        plans: dict[int, list[str]] = {}
        for row in rows:
            if row.promise_id is not None and row.status != "open":
                promise = s.get(Promise, row.promise_id)
                if promise is not None and promise.status == "open":
                    promise.status = "kept" if row.status == "settled" else row.status
            elif row.plan_id is not None:
                plans.setdefault(row.plan_id, []).append(row.status)
        for plan_id, states in plans.items():
            plan = s.get(InstallmentPlan, plan_id)
            if plan is None or plan.status not in ("open", "broken"):
                continue
            if "broken" in states:
                plan.status = "broken"
            elif all(state in ("kept", "settled") for state in states):
                plan.status = "kept"

    def obligations(self, account_id: str) -> list[Obligation]:
        """The account's followed-through promises and plan parts, earliest due first."""
        with self.session() as s:
            return list(s.scalars(select(Obligation).where(Obligation.account_id == account_id).order_by(
                Obligation.due_date, Obligation.made_at, Obligation.part)))

    def add_event(self, kind: str, account_id: str | None, conversation_id: str | None,
                  detail: dict | None = None) -> None:
        with self.session() as s:
            s.add(Event(kind=kind, account_id=account_id, conversation_id=conversation_id,
                        detail=seal_values(detail or {}, EVENT_CONTEXT, self.keyring)))

    def events(self, account_id: str) -> list[Event]:
        """The account's events, oldest first, with the personal values of their details opened."""
        with self.session() as s:
            events = list(s.scalars(select(Event).where(Event.account_id == account_id).order_by(Event.id)))
        for row in events:  # detached: what is set here is never written back
            set_committed_value(row, "detail", open_values(row.detail or {}, EVENT_CONTEXT, self.keyring))
        return events

    def promises(self, account_id: str) -> list[Promise]:
        with self.session() as s:
            return list(s.scalars(select(Promise).where(Promise.account_id == account_id).order_by(Promise.id)))

    def plans(self, account_id: str) -> list[InstallmentPlan]:
        with self.session() as s:
            return list(s.scalars(select(InstallmentPlan).where(InstallmentPlan.account_id == account_id)))

    def disputes(self, account_id: str) -> list[Dispute]:
        with self.session() as s:
            disputes = list(s.scalars(select(Dispute).where(Dispute.account_id == account_id)))
        return [self._opened_dispute(d) for d in disputes]

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
            seal_account(account, self.keyring)  # a Core insert: no flush seals them
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

    # --- encryption at rest: key rotation (docs/security.md) --------------------------------------------
    def rekey(self, batch: int = 500) -> RekeyReport:
        """Seal again every personal value not sealed with the current data key and the cipher its pack asks for,
        and recompute every blind index under the current index key. Idempotent, and safe while the stack runs:
        each batch is a transaction of its own, and rows written meanwhile are sealed with the current key."""
        report = RekeyReport()
        with self.session() as s:
            ids = list(s.scalars(select(Account.id).order_by(Account.id)))
        for start in range(0, len(ids), batch):
            with self.session() as s:
                for account in s.scalars(select(Account).where(Account.id.in_(ids[start:start + batch]))):
                    try:
                        report.accounts += seal_account(account, self.keyring, reseal=True)
                    except crypto.CryptoError as exc:
                        report.errors.append(f"account {account.id}: {exc}")
        with self.session() as s:
            rows = s.execute(select(OptOut.phone_index, OptOut.phone_sealed).order_by(OptOut.at.desc())).all()
        for index, sealed in rows:
            if sealed is None:
                continue
            try:
                envelope = crypto.Envelope.parse_text(sealed)
                phone = self.keyring.open_text(sealed, OPT_OUT_CONTEXT)
            except crypto.CryptoError as exc:
                report.errors.append(f"opt-out {index}: {exc}")
                continue
            current = self.keyring.index(phone)
            if current == index and self.keyring.is_current(envelope):
                continue
            with self.session() as s:
                if current != index and s.get(OptOut, current) is not None:  # newer, written under the new key
                    s.execute(delete(OptOut).where(OptOut.phone_index == index))
                else:
                    row = s.get(OptOut, index)
                    if row is not None:
                        row.phone_index = current
                        row.phone_sealed = self.keyring.seal_text(phone, OPT_OUT_CONTEXT)
            report.opt_outs += 1
        with self.session() as s:  # events' details and disputes' details: sealed with the deployment's cipher
            for row in s.scalars(select(Event).where(Event.detail.is_not(None))):
                try:
                    detail = open_values(row.detail or {}, EVENT_CONTEXT, self.keyring, reseal=True)
                except crypto.CryptoError as exc:
                    report.errors.append(f"event {row.id}: {exc}")
                    continue
                if detail != row.detail:
                    row.detail = detail
                    report.events += 1
            for dispute in s.scalars(select(Dispute).where(Dispute.details != "")):
                context = dispute_context(dispute.case_number)
                try:
                    if not crypto.looks_sealed(dispute.details):  # written in the clear
                        dispute.details = self.keyring.seal_text(dispute.details, context)
                        report.events += 1
                    elif not self.keyring.is_current(crypto.Envelope.parse_text(dispute.details)):
                        dispute.details = self.keyring.seal_text(self.keyring.open_text(dispute.details, context),
                                                                 context)
                        report.events += 1
                except crypto.CryptoError as exc:
                    report.errors.append(f"dispute {dispute.case_number}: {exc}")
        return report

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

    # --- the console's work queue (issue 20, console/work_queue.py) -----------------------------------
    def events_of(self, kinds: tuple[str, ...], after_id: int = 0) -> list[Event]:
        """Events of these kinds (any account) after `after_id`, oldest first, their details opened."""
        with self.session() as s:
            events = list(s.scalars(select(Event).where(Event.kind.in_(kinds), Event.id > after_id)
                                    .order_by(Event.id)))
        for row in events:
            set_committed_value(row, "detail", open_values(row.detail or {}, EVENT_CONTEXT, self.keyring))
        return events

    def open_disputes(self) -> list[Dispute]:
        with self.session() as s:
            disputes = list(s.scalars(select(Dispute).where(Dispute.status == "open")))
        return [self._opened_dispute(d) for d in disputes]

    def broken_promises(self) -> list[Promise]:
        with self.session() as s:
            return list(s.scalars(select(Promise).where(Promise.status == "broken")))

    def accounts_in_status(self, status: str) -> list[tuple[str, dt.datetime]]:
        """(account id, last updated) of the accounts in `status`."""
        with self.session() as s:
            return [(a, u) for a, u in s.execute(select(Account.id, Account.updated_at)
                                                 .where(Account.status == status))]

    def work_item_keys(self) -> set[str]:
        from duebot.accounts.models import WorkItem

        with self.session() as s:
            return set(s.scalars(select(WorkItem.key)))

    def add_work_item(self, kind: str, source: str, *, due_at: dt.datetime, account_id: str | None,
                      conversation_id: str | None = None, reason: str | None = None, high_risk: bool = False,
                      detail: dict | None = None, created_at: dt.datetime | None = None) -> bool:
        """One item per (kind, source): True when it is new, False when it exists (a sync that runs again)."""
        from sqlalchemy.exc import IntegrityError

        from duebot.accounts.models import WORK_CONTEXT, WorkItem

        key = f"{kind}|{source}"
        try:
            with self.session() as s:
                if s.scalar(select(WorkItem.id).where(WorkItem.key == key)) is not None:
                    return False
                s.add(WorkItem(key=key, kind=kind, source=source, account_id=account_id,
                               conversation_id=conversation_id, reason=reason, high_risk=high_risk,
                               detail=seal_values(detail or {}, WORK_CONTEXT, self.keyring),
                               created_at=created_at or utcnow(), due_at=due_at, state="open"))
            return True
        except IntegrityError:  # another sync inserted it meanwhile
            return False

    def _opened_item(self, item):  # noqa: ANN001, ANN202 - a detached WorkItem
        from duebot.accounts.models import WORK_CONTEXT

        set_committed_value(item, "detail", open_values(item.detail or {}, WORK_CONTEXT, self.keyring))
        if item.note and crypto.looks_sealed(item.note):
            set_committed_value(item, "note", self.keyring.open_text(item.note, f"{WORK_CONTEXT}.note:{item.id}"))
        return item

    def work_items(self, kinds: tuple[str, ...] | None = None, states: tuple[str, ...] | None = None) -> list:
        """Work items by due time (soonest first), details and notes opened."""
        from duebot.accounts.models import WorkItem

        query = select(WorkItem).order_by(WorkItem.due_at, WorkItem.id)
        if kinds:
            query = query.where(WorkItem.kind.in_(kinds))
        if states:
            query = query.where(WorkItem.state.in_(states))
        with self.session() as s:
            items = list(s.scalars(query))
        return [self._opened_item(i) for i in items]

    def work_item(self, item_id: int):  # noqa: ANN201 - WorkItem | None
        from duebot.accounts.models import WorkItem

        with self.session() as s:
            item = s.get(WorkItem, item_id)
        return self._opened_item(item) if item is not None else None

    def assign_work_item(self, item_id: int, username: str) -> bool:
        """open → assigned to `username` (a compare-and-set: of two agents, one gets it)."""
        from duebot.accounts.models import WorkItem

        with self.session() as s:
            done = s.execute(update(WorkItem).where(WorkItem.id == item_id, WorkItem.state == "open")
                             .values(state="assigned", assignee=username))
            return done.rowcount == 1

    def close_work_item(self, item_id: int, username: str, resolution: str, note: str | None,
                        account_status: tuple[str, str] | None = None) -> bool:
        """assigned to `username` → closed, with the account's status moved (from, to) in the same transaction
        when it is still `from` (collection resumes only through a closed item)."""
        from duebot.accounts.models import WORK_CONTEXT, WorkItem

        sealed = self.keyring.seal_text(note, f"{WORK_CONTEXT}.note:{item_id}") if note else None
        with self.session() as s:
            done = s.execute(update(WorkItem).where(WorkItem.id == item_id, WorkItem.state == "assigned",
                                                    WorkItem.assignee == username)
                             .values(state="closed", resolution=resolution, note=sealed, closed_by=username,
                                     closed_at=utcnow()))
            if done.rowcount != 1:
                return False
            item = s.get(WorkItem, item_id)
            if account_status is not None and item is not None and item.account_id:
                s.execute(update(Account).where(Account.id == item.account_id, Account.status == account_status[0])
                          .values(status=account_status[1], updated_at=utcnow()))
            return True

    def set_amount_due(self, account_id: str, amount: Decimal) -> None:
        with self.session() as s:
            account = s.get(Account, account_id)
            if account is None:
                raise KeyError(account_id)
            account.amount_due = amount
            if amount == 0 and account.status in ("open", "disputed"):
                account.status = "closed"  # nothing is owed: collection ends

    def review_outcomes(self, account_id: str, approve: bool) -> int:
        """A person's decision on the promises and plans waiting for review: approved (they stand) or rejected.
        Returns how many were decided."""
        values = {"needs_review": False} if approve else {"needs_review": False, "status": "rejected"}
        n = 0
        with self.session() as s:
            for table in (Promise, InstallmentPlan):
                n += s.execute(update(table).where(table.account_id == account_id, table.needs_review.is_(True),
                                                   table.status == "open").values(**values)).rowcount
        return n

    def queue_human_step(self, key: str, *, campaign_id: str, account_id: str, step: int, step_name: str,
                         now: float, due_at: dt.datetime, reason: str) -> bool:
        """A campaign's human step: the attempt is started (handled by a person), a work item is made, and the
        account stays on this step (queued) until the item is closed. Idempotent: False when already queued."""
        from duebot.accounts.models import CampaignAccount, WorkItem

        with self.session() as s:
            new = s.get(Attempt, key) is None
            if new:
                s.add(Attempt(key=key, campaign_id=campaign_id, account_id=account_id, step=step,
                              step_name=step_name, channel="human", purpose="collection", state="started",
                              tries=1, reasons=[], started_at=now, worker="human_queue", right_party=False,
                              handled_by="human"))
            item_key = f"human_queue|{key}"
            if s.scalar(select(WorkItem.id).where(WorkItem.key == item_key)) is None:
                s.add(WorkItem(key=item_key, kind="human_queue", source=key, account_id=account_id, reason=reason,
                               detail={"campaign_id": campaign_id, "step": step_name}, created_at=utcnow(),
                               due_at=due_at, state="open"))
            s.execute(update(CampaignAccount).where(CampaignAccount.campaign_id == campaign_id,
                                                    CampaignAccount.account_id == account_id,
                                                    CampaignAccount.step == step).values(queued=True))
        return new

    def finish_human_step(self, key: str, *, now: float, next_step: int, due_at: float, state: str,
                          reason: str | None) -> bool:
        """The person closed the step's work item: the attempt is done and the account moves on, in one
        transaction. False when it was finished already (nothing moves twice)."""
        from duebot.accounts.models import CampaignAccount

        with self.session() as s:
            attempt = s.get(Attempt, key)
            if attempt is None or attempt.state != "started" or attempt.channel != "human":
                return False
            attempt.state, attempt.finished_at, attempt.outcome = "done", now, "handled"
            s.execute(update(CampaignAccount).where(
                CampaignAccount.campaign_id == attempt.campaign_id, CampaignAccount.account_id == attempt.account_id,
                CampaignAccount.step == attempt.step).values(step=next_step, due_at=due_at, state=state,
                                                             reason=reason, queued=False))
            return True
