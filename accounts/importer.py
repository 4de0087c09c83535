"""Load accounts from CSV or JSON Lines: every bad row is reported with its line and reason, every good row kept.

Fields (CSV header row required; JSON Lines: one object per line, same names): account_id, name, phone, amount,
due_date — required; currency, id_last4, birth_date, segment, timezone, language, pack, line_type,
consent_ai_voice, consent_sms, region, broken_promises, disputes — optional. due_date is YYYY-MM-DD or an ISO
date-time with a UTC offset (read as the local date in the account's timezone, else at that offset).
Re-importing the same file updates rows in place (idempotent).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

from duebot.accounts.models import Account
from duebot.accounts.store import AccountStore

REQUIRED = ("account_id", "name", "phone", "amount", "due_date")
SEGMENTS = ("malicious", "cash_flow", "dispute", "forgot", "legacy", "new_business")
PACKS = ("cn", "us")
LINE_TYPES = ("mobile", "landline", "unknown")
TRUE, FALSE = {"1", "true", "yes", "y"}, {"0", "false", "no", "n", ""}


class RowError(ValueError):
    pass


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    account_ids: list[str] = field(default_factory=list)  # the good rows, in file order (campaign membership)

    @property
    def imported(self) -> int:
        return self.created + self.updated


@dataclass(frozen=True)
class SegmentHistory:
    """What the operator's file or our own store knows about the subscriber's past."""
    broken_promises: int = 0
    disputes: int = 0


def derive_segment(amount: Decimal, due: dt.date, today: dt.date, history: SegmentHistory | None = None) -> str:
    """Documented defaults when the file gives no segment, first match wins: > 2 years overdue is legacy (human
    review); ≥ 3000 is new business (account manager); 2+ broken promises is plan abuse (malicious); a past
    dispute is a bill dispute; one broken promise is cash-flow trouble; otherwise a reminder-first 'forgot'."""
    if (today - due).days > 730:
        return "legacy"
    if amount >= 3000:
        return "new_business"
    history = history or SegmentHistory()
    if history.broken_promises >= 2:
        return "malicious"
    if history.disputes > 0:
        return "dispute"
    if history.broken_promises == 1:
        return "cash_flow"
    return "forgot"


def _bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise RowError(f"{name}: expected true/false, got {value!r}")


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise RowError(f"{name}: expected YYYY-MM-DD, got {value!r}") from exc


def _zoned_date(value: str, name: str, timezone: str | None) -> dt.date:
    """A date, or a date-time with a UTC offset (e.g. a billing system's cut-off): its local calendar date in
    the account's zone when known. A date-time without an offset is ambiguous, so it is refused."""
    text = value.strip()
    if "T" not in text and " " not in text:
        return _date(text, name)
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RowError(f"{name}: expected YYYY-MM-DD or an ISO date-time with offset, got {value!r}") from exc
    if stamp.tzinfo is None:
        raise RowError(f"{name}: a date-time needs a UTC offset (e.g. +08:00 or Z), got {value!r}")
    return (stamp.astimezone(ZoneInfo(timezone)) if timezone else stamp).date()


def _count(value: str, name: str) -> int:
    text = value.strip()
    if not text:
        return 0
    if not text.isdigit():
        raise RowError(f"{name}: expected a whole number ≥ 0, got {value!r}")
    return int(text)


def parse_row(row: dict[str, str], today: dt.date, default_region: str = "US",
              known: SegmentHistory | None = None) -> Account:
    missing = [name for name in REQUIRED if not (row.get(name) or "").strip()]
    if missing:
        raise RowError(f"missing {', '.join(missing)}")
    region = (row.get("region") or default_region).strip().upper()
    try:
        number = phonenumbers.parse(row["phone"], region)
    except phonenumbers.NumberParseException as exc:
        raise RowError(f"phone: not a phone number ({row['phone']!r})") from exc
    if not phonenumbers.is_valid_number(number):
        raise RowError(f"phone: not a valid number ({row['phone']!r})")
    try:
        amount = Decimal(row["amount"].strip().replace(",", ""))
    except InvalidOperation as exc:
        raise RowError(f"amount: not a number ({row['amount']!r})") from exc
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise RowError(f"amount: must be positive with at most 2 decimals ({row['amount']!r})")
    timezone = (row.get("timezone") or "").strip() or None
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise RowError(f"timezone: unknown zone {timezone!r}") from exc
    due = _zoned_date(row["due_date"], "due_date", timezone)
    known = known or SegmentHistory()
    history = SegmentHistory(max(known.broken_promises, _count(row.get("broken_promises") or "", "broken_promises")),
                             max(known.disputes, _count(row.get("disputes") or "", "disputes")))
    segment = (row.get("segment") or "").strip() or derive_segment(amount, due, today, history)
    if segment not in SEGMENTS:
        raise RowError(f"segment: one of {', '.join(SEGMENTS)}, got {segment!r}")
    id_last4 = (row.get("id_last4") or "").strip() or None
    if id_last4 is not None and not (len(id_last4) == 4 and id_last4.isdigit()):
        raise RowError(f"id_last4: four digits, got {id_last4!r}")
    pack = (row.get("pack") or "").strip() or ("cn" if region == "CN" else "us")
    if pack not in PACKS:
        raise RowError(f"pack: one of {', '.join(PACKS)}, got {pack!r}")
    line_type = (row.get("line_type") or "unknown").strip()
    if line_type not in LINE_TYPES:
        raise RowError(f"line_type: one of {', '.join(LINE_TYPES)}, got {line_type!r}")
    return Account(
        id=row["account_id"].strip(), name=row["name"].strip(),
        phone=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        id_last4=id_last4,
        birth_date=_date(row["birth_date"], "birth_date") if (row.get("birth_date") or "").strip() else None,
        amount_due=amount, currency=(row.get("currency") or "USD").strip().upper(), due_date=due,
        segment=segment, timezone=timezone, language=(row.get("language") or "en").strip(), pack=pack,
        line_type=line_type,
        consent_ai_voice=_bool(row.get("consent_ai_voice") or "", "consent_ai_voice"),
        consent_sms=_bool(row.get("consent_sms") or "true", "consent_sms"),
        phone_zones="|".join(pn_timezone.time_zones_for_number(number)),
    )


def read_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(lines)
    if reader.fieldnames is None:
        return
    absent = [name for name in REQUIRED if name not in reader.fieldnames]
    if absent:
        raise RowError(f"header: missing column(s) {', '.join(absent)}")
    for row in reader:
        yield reader.line_num, row


def read_jsonl(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, str] | RowError]]:
    """JSON Lines rows as the CSV reader's strings (amounts keep their exact decimal text); a line that is not
    a JSON object comes back as a RowError for its line number, the rest of the file still loads."""
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_float=Decimal)
        except ValueError as exc:
            yield line_no, RowError(f"not valid JSON ({exc.args[0] if exc.args else exc})")
            continue
        if not isinstance(obj, dict):
            yield line_no, RowError("not a JSON object")
            continue
        yield line_no, {k: _text(v) for k, v in obj.items()}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in (".jsonl", ".ndjson", ".json")


BATCH = 5000  # rows per store round trip: bulk upserts keep a 100k-row import in seconds, not minutes


def import_file(path: Path, store: AccountStore, today: dt.date | None = None,
                default_region: str = "US") -> ImportReport:
    """CSV or JSON Lines (by extension: .jsonl/.ndjson/.json); good rows are upserted by account_id."""
    report = ImportReport()
    today = today or dt.date.today()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = read_jsonl(handle) if is_jsonl(path) else read_rows(handle)
        batch: list[tuple[int, dict[str, str] | RowError]] = []
        for item in rows:
            batch.append(item)
            if len(batch) >= BATCH:
                _import_batch(batch, store, today, default_region, report)
                batch = []
        _import_batch(batch, store, today, default_region, report)
    report.errors.sort()
    return report


def _import_batch(batch: list[tuple[int, dict[str, str] | RowError]], store: AccountStore, today: dt.date,
                  default_region: str, report: ImportReport) -> None:
    ids = [row["account_id"].strip() for _, row in batch if isinstance(row, dict) and row.get("account_id")]
    known = {k: SegmentHistory(*v) for k, v in store.segment_history(ids).items()}
    accounts: list[Account] = []
    for line, row in batch:
        try:
            if isinstance(row, RowError):
                raise row
            account = parse_row(row, today, default_region, known.get((row.get("account_id") or "").strip()))
        except RowError as exc:
            report.errors.append((line, str(exc)))
            continue
        accounts.append(account)
        report.account_ids.append(account.id)
    created = store.upsert_accounts(accounts)
    report.created += created
    report.updated += len(accounts) - created


def import_csv(path: Path, store: AccountStore, today: dt.date | None = None,
               default_region: str = "US") -> ImportReport:
    return import_file(path, store, today, default_region)
