"""Load accounts from CSV or JSON Lines: every bad row is reported with its line and reason, every good row kept.

Fields (CSV header row required; JSON Lines: one object per line, same names): account_id, name, phone, amount,
due_date — required; currency, id_last4, birth_date, segment, timezone, language, pack, line_type,
consent_ai_voice, consent_sms, region, broken_promises, disputes, branch — optional. branch is the business office
(营业部) the money KPIs group by (campaigns/branches.py); a file without the column leaves stored branches as they
are, an empty value means no branch. due_date is YYYY-MM-DD or an ISO
date-time with a UTC offset (read as the local date in the account's timezone, else at that offset).
Re-importing the same file updates rows in place (idempotent).

What a row must be, else it is reported (line and field) and skipped, and the rest of the file still loads:
  * text: UTF-8 (a file in another encoding fails only the rows with such bytes; a UTF-16 file with its byte
    order mark is read as UTF-16), no control characters, at most `LIMITS` characters per field (64 unless
    listed: name 200; a CSV field over 131,072 characters fails its row);
  * amount: accounts.models.parse_amount — plain decimal digits (thousands commas allowed), finite, positive, at
    most 2 decimals and at most 99,999,999.99; NaN, Infinity, 1E+1000000 and the like are refused;
  * phone: a valid number for its region (the row's `region`, else the import's); region: a known region code;
  * due_date: from 1970-01-01 to one year after the import date; birth_date: from 1900-01-01 to the import date;
  * id_last4: the last four characters of the ID: four digits, or three digits and X (a Chinese resident ID
    ends in the check character X), stored upper-case;
  * broken_promises, disputes: whole numbers from 0 to 999; currency: three letters (ISO 4217);
    language: a tag like en, zh or zh-CN.
What a row leaves out comes from its pack's operator profile (policies/packs/<pack>.yml `profile`): a cn account
owes CNY, speaks Mandarin and lives in Asia/Shanghai unless the row says otherwise; numbers without a country code
are read in the row's region, else its pack's, else the import's, else the default pack's (CN).
Every row the report does not name as an error was committed; if the database refuses a batch, its rows are
written one by one and the ones it refuses are reported with the database's reason.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone
from sqlalchemy.exc import SQLAlchemyError

from duebot.accounts.models import Account, AmountError, parse_amount
from duebot.accounts.store import AccountStore
from duebot.campaigns.branches import normalise as normalise_branch
from duebot.campaigns.branches import set_branches
from duebot.policies.packs import DEFAULT_PACK, load_pack, profile_of

REQUIRED = ("account_id", "name", "phone", "amount", "due_date")
OPTIONAL = ("currency", "id_last4", "birth_date", "segment", "timezone", "language", "pack", "line_type",
            "consent_ai_voice", "consent_sms", "region", "broken_promises", "disputes", "branch")
SEGMENTS = ("malicious", "cash_flow", "dispute", "forgot", "legacy", "new_business")
PACKS = ("cn", "us")


def import_region() -> str:
    """The region of numbers written without a country code when the import names none: the default pack's."""
    return load_pack(DEFAULT_PACK).default_region or "CN"
LINE_TYPES = ("mobile", "landline", "unknown")
TRUE, FALSE = {"1", "true", "yes", "y"}, {"0", "false", "no", "n", ""}
# Characters per field (the store's column sizes, or what a sane value needs); any other field: DEFAULT_LIMIT.
LIMITS = {"account_id": 64, "name": 200, "amount": 40, "currency": 3, "id_last4": 4, "language": 8}
DEFAULT_LIMIT = 64
EARLIEST_DUE = dt.date(1970, 1, 1)
LATEST_DUE_AHEAD = dt.timedelta(days=366)  # a bill due more than a year from now is not one to collect
EARLIEST_BIRTH = dt.date(1900, 1, 1)
MAX_COUNT = 999
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # bytes that were not UTF-8 (surrogateescape), or a lone \\ud800
_ID_LAST4 = re.compile(r"[0-9]{3}[0-9X]")
_CURRENCY = re.compile(r"[A-Z]{3}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,4})?")


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


def shown(value: str, limit: int = 40) -> str:
    """A value quoted for an error message, cut short: a 100,000-character field must not make a 100 kB report."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def check_text(row: dict[str, str]) -> None:
    """Every field duebot reads: UTF-8, no control characters, not longer than its limit."""
    for name in (*REQUIRED, *OPTIONAL):
        value = row.get(name)
        if not value:
            continue
        if _SURROGATE.search(value):
            raise RowError(f"{name}: not UTF-8 text (save the file as UTF-8)")
        limit = LIMITS.get(name, DEFAULT_LIMIT)
        if len(value.strip()) > limit:
            raise RowError(f"{name}: {len(value.strip()):,} characters, at most {limit} ({shown(value)})")
        if _CONTROL.search(value):
            raise RowError(f"{name}: contains a control character ({shown(value)})")


def check_region(value: str, name: str = "region") -> str:
    region = value.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise RowError(f"{name}: not a region code like US or CN ({shown(value)})")
    return region


def _bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise RowError(f"{name}: expected true/false, got {shown(value)}")


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise RowError(f"{name}: expected YYYY-MM-DD, got {shown(value)}") from exc


def _zoned_date(value: str, name: str, timezone: str | None) -> dt.date:
    """A date, or a date-time with a UTC offset (e.g. a billing system's cut-off): its local calendar date in
    the account's zone when known. A date-time without an offset is ambiguous, so it is refused."""
    text = value.strip()
    if "T" not in text and " " not in text:
        return _date(text, name)
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RowError(f"{name}: expected YYYY-MM-DD or an ISO date-time with offset, got {shown(value)}") from exc
    if stamp.tzinfo is None:
        raise RowError(f"{name}: a date-time needs a UTC offset (e.g. +08:00 or Z), got {shown(value)}")
    try:
        return (stamp.astimezone(ZoneInfo(timezone)) if timezone else stamp).date()
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 is before the first representable instant
        raise RowError(f"{name}: out of range ({shown(value)})") from exc


def _within(day: dt.date, name: str, earliest: dt.date, latest: dt.date) -> dt.date:
    if not earliest <= day <= latest:
        raise RowError(f"{name}: {day.isoformat()} is not between {earliest.isoformat()} and {latest.isoformat()}")
    return day


def _count(value: str, name: str) -> int:
    text = value.strip()
    if not text:
        return 0
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_COUNT:
        raise RowError(f"{name}: expected a whole number from 0 to {MAX_COUNT}, got {shown(value)}")
    return int(text)


def _timezone(value: str) -> str | None:
    timezone = value.strip() or None
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise RowError(f"timezone: unknown zone {shown(timezone)}") from exc
    return timezone


def parse_row(row: dict[str, str], today: dt.date, default_region: str | None = None,
              known: SegmentHistory | None = None) -> Account:
    missing = [name for name in REQUIRED if not (row.get(name) or "").strip()]
    if missing:
        raise RowError(f"missing {', '.join(missing)}")
    check_text(row)
    named_pack = (row.get("pack") or "").strip()
    if (row.get("region") or "").strip():
        region = check_region(row["region"])
    elif named_pack in PACKS:  # a us row's national number is a US number whatever the import's region
        region = load_pack(named_pack).default_region or import_region()
    else:
        region = (default_region or import_region()).strip().upper()
    try:
        number = phonenumbers.parse(row["phone"], region)
    except phonenumbers.NumberParseException as exc:
        raise RowError(f"phone: not a phone number ({shown(row['phone'])})") from exc
    if not phonenumbers.is_valid_number(number):
        raise RowError(f"phone: not a valid number ({shown(row['phone'])})")
    try:
        amount = parse_amount(row["amount"].replace(",", ""), "amount")
    except AmountError as exc:
        raise RowError(str(exc)) from exc
    pack = named_pack or ("cn" if region == "CN" else "us")
    if pack not in PACKS:
        raise RowError(f"pack: one of {', '.join(PACKS)}, got {shown(pack)}")
    profile = profile_of(pack)  # what the row leaves out: the pack's currency, language and time zone
    timezone = _timezone(row.get("timezone") or "") or profile.timezone
    due = _within(_zoned_date(row["due_date"], "due_date", timezone), "due_date", EARLIEST_DUE,
                  today + LATEST_DUE_AHEAD)
    birth_date = (_within(_date(row["birth_date"], "birth_date"), "birth_date", EARLIEST_BIRTH, today)
                  if (row.get("birth_date") or "").strip() else None)
    known = known or SegmentHistory()
    history = SegmentHistory(max(known.broken_promises, _count(row.get("broken_promises") or "", "broken_promises")),
                             max(known.disputes, _count(row.get("disputes") or "", "disputes")))
    segment = (row.get("segment") or "").strip() or derive_segment(amount, due, today, history)
    if segment not in SEGMENTS:
        raise RowError(f"segment: one of {', '.join(SEGMENTS)}, got {shown(segment)}")
    id_last4 = (row.get("id_last4") or "").strip().upper() or None
    if id_last4 is not None and not _ID_LAST4.fullmatch(id_last4):
        raise RowError(f"id_last4: four digits, or three digits and X, got {shown(id_last4)}")
    line_type = (row.get("line_type") or "unknown").strip()
    if line_type not in LINE_TYPES:
        raise RowError(f"line_type: one of {', '.join(LINE_TYPES)}, got {shown(line_type)}")
    currency = (row.get("currency") or profile.currency).strip().upper()
    if not _CURRENCY.fullmatch(currency):
        raise RowError(f"currency: three letters like USD or CNY, got {shown(currency)}")
    language = (row.get("language") or profile.language).strip()
    if not _LANGUAGE.fullmatch(language):
        raise RowError(f"language: a tag like en, zh or zh-CN, got {shown(language)}")
    return Account(
        id=row["account_id"].strip(), name=row["name"].strip(),
        phone=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        id_last4=id_last4, birth_date=birth_date,
        amount_due=amount, currency=currency, due_date=due,
        segment=segment, timezone=timezone, language=language, pack=pack,
        line_type=line_type,
        consent_ai_voice=_bool(row.get("consent_ai_voice") or "", "consent_ai_voice"),
        consent_sms=_bool(row.get("consent_sms") or "true", "consent_sms"),
        phone_zones="|".join(pn_timezone.time_zones_for_number(number)),
    )


# (first line, the row or why it cannot be read, last line): a CSV row's quoted field may span lines
Item = tuple[int, "dict[str, str] | RowError", int]


def read_rows(lines: Iterable[str]) -> Iterator[Item]:
    """CSV rows (a dict per row, like csv.DictReader: extra fields under None, missing ones None) with the lines
    they span. A row the csv module cannot read (a field over its size limit) comes back as a RowError."""
    reader = csv.reader(lines)
    fieldnames: list[str] = []
    while not fieldnames:
        try:
            fieldnames = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise RowError(f"header: {exc}") from exc
    if any(_SURROGATE.search(name) for name in fieldnames):
        raise RowError("header: not UTF-8 text (save the file as UTF-8)")
    absent = [name for name in REQUIRED if name not in fieldnames]
    if absent:
        raise RowError(f"header: missing column(s) {', '.join(absent)}")
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, RowError(f"not a CSV row: {exc}"), reader.line_num
            continue
        if not fields:
            continue  # a blank line
        row: dict = dict(zip(fieldnames, fields, strict=False))
        if len(fields) > len(fieldnames):
            row[None] = fields[len(fieldnames):]
        for name in fieldnames[len(fields):]:
            row[name] = None
        yield start, row, reader.line_num


def read_jsonl(lines: Iterable[str]) -> Iterator[Item]:
    """JSON Lines rows as the CSV reader's strings (amounts keep their exact decimal text); a line that is not
    a JSON object comes back as a RowError for its line number, the rest of the file still loads."""
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            # NaN and Infinity stay text (JSON has neither), so the amount check names them
            obj = json.loads(line, parse_float=Decimal, parse_constant=str)
        except (ValueError, RecursionError) as exc:
            reason = exc.args[0] if isinstance(exc, ValueError) and exc.args else "nested too deeply"
            yield line_no, RowError(f"not valid JSON ({shown(str(reason), 80)})"), line_no
            continue
        if not isinstance(obj, dict):
            yield line_no, RowError("not a JSON object"), line_no
            continue
        nested = [k for k in (*REQUIRED, *OPTIONAL) if isinstance(obj.get(k), dict | list)]
        if nested:
            kind = "object" if isinstance(obj[nested[0]], dict) else "array"
            yield line_no, RowError(f"{nested[0]}: a JSON {kind}, expected text or a number"), line_no
            continue
        yield line_no, {k: _text(v) for k, v in obj.items()}, line_no


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in (".jsonl", ".ndjson", ".json")


BATCH = 5000  # rows per store round trip: bulk upserts keep a 100k-row import in seconds, not minutes


def open_text(path: Path) -> IO[str]:
    """The file as text: UTF-8 (with or without BOM), or UTF-16 when it starts with a UTF-16 byte order mark.
    Bytes that are not UTF-8 are kept as lone surrogates (surrogateescape), so only the rows holding them fail.
    A UTF-16 file is decoded whole before anything is imported: one that cannot be is refused, nothing kept."""
    with path.open("rb") as probe:
        head = probe.read(2)
    if head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        try:
            return io.StringIO(path.read_bytes().decode("utf-16"), newline="")
        except UnicodeDecodeError as exc:
            raise RowError(f"file: starts as UTF-16 but is not ({exc.reason} at byte {exc.start})") from exc
    return path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")


def import_file(path: Path, store: AccountStore, today: dt.date | None = None,
                default_region: str | None = None) -> ImportReport:
    """CSV or JSON Lines (by extension: .jsonl/.ndjson/.json); good rows are upserted by account_id."""
    default_region = check_region(default_region or import_region())
    report = ImportReport()
    today = today or dt.date.today()
    with open_text(path) as handle:
        rows = read_jsonl(handle) if is_jsonl(path) else read_rows(handle)
        batch: list[Item] = []
        for item in rows:
            batch.append(item)
            if len(batch) >= BATCH:
                _import_batch(batch, store, today, default_region, report)
                batch = []
        _import_batch(batch, store, today, default_region, report)
    report.errors.sort()
    return report


def _import_batch(batch: list[Item], store: AccountStore, today: dt.date, default_region: str,
                  report: ImportReport) -> None:
    ids = [(row.get("account_id") or "").strip() for _, row, _ in batch if isinstance(row, dict)]
    # only ids a row could be stored under: a lone surrogate cannot even be sent to the database
    ids = [i for i in ids if i and len(i) <= LIMITS["account_id"] and not _SURROGATE.search(i)]
    known = {k: SegmentHistory(*v) for k, v in store.segment_history(ids).items()}
    good: list[tuple[int, Account]] = []
    branch_of: dict[str, str] = {}  # only rows that have the column: a file without it keeps stored branches
    for line, row, last in batch:
        try:
            if isinstance(row, RowError):
                raise row
            account = parse_row(row, today, default_region, known.get((row.get("account_id") or "").strip()))
            good.append((line, account))
            if row.get("branch") is not None:
                branch_of[account.id] = normalise_branch(row["branch"])
        except RowError as exc:
            report.errors.append((line, str(exc) if last == line else
                                  f"{exc} (this row runs to line {last}: an unbalanced quote?)"))
    try:
        created = store.upsert_accounts([account for _, account in good])
    except SQLAlchemyError:
        created = _one_by_one(good, store, report)
        kept = set(report.account_ids)
        branch_of = {a: b for a, b in branch_of.items() if a in kept}
    else:
        report.account_ids.extend(account.id for _, account in good)
        report.updated += len(good) - created
    report.created += created
    set_branches(store, branch_of)


def _one_by_one(good: list[tuple[int, Account]], store: AccountStore, report: ImportReport) -> int:
    """The database refused the batch: write each row alone, so one bad row costs only itself, and name it."""
    created = 0
    for line, account in good:
        try:
            new = store.upsert_accounts([account])
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            report.errors.append((line, f"the database refused the row: {shown(reason, 120)}"))
            continue
        created += new
        report.updated += 1 - new
        report.account_ids.append(account.id)
    return created


def import_csv(path: Path, store: AccountStore, today: dt.date | None = None,
               default_region: str | None = None) -> ImportReport:
    return import_file(path, store, today, default_region)
