"""Load accounts from CSV: every bad row is reported with its line and reason, every good row is kept.

Columns (header row required): account_id, name, phone, amount, due_date — required;
currency, id_last4, birth_date, segment, timezone, language, pack, line_type, consent_ai_voice,
consent_sms, region — optional. Re-importing the same file updates rows in place (idempotent).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

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

    @property
    def imported(self) -> int:
        return self.created + self.updated


def derive_segment(amount: Decimal, due: dt.date, today: dt.date) -> str:
    """Documented defaults when the file gives no segment: > 2 years overdue is legacy (human review);
    ≥ 3000 is new business (account manager); otherwise a reminder-first 'forgot'."""
    if (today - due).days > 730:
        return "legacy"
    if amount >= 3000:
        return "new_business"
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


def parse_row(row: dict[str, str], today: dt.date, default_region: str = "US") -> Account:
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
    due = _date(row["due_date"], "due_date")
    segment = (row.get("segment") or "").strip() or derive_segment(amount, due, today)
    if segment not in SEGMENTS:
        raise RowError(f"segment: one of {', '.join(SEGMENTS)}, got {segment!r}")
    timezone = (row.get("timezone") or "").strip() or None
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise RowError(f"timezone: unknown zone {timezone!r}") from exc
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


def import_csv(path: Path, store: AccountStore, today: dt.date | None = None,
               default_region: str = "US") -> ImportReport:
    report = ImportReport()
    today = today or dt.date.today()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for line, row in read_rows(handle):
            try:
                account = parse_row(row, today, default_region)
            except RowError as exc:
                report.errors.append((line, str(exc)))
                continue
            if store.upsert_account(account):
                report.created += 1
            else:
                report.updated += 1
    return report
