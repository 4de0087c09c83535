"""The operator's labelled history: CSV (header row) or JSON Lines, one account snapshot per row (docs/risk.md).

A row is what was known about an overdue account on some day (its snapshot) and whether the debt was recovered
within the horizon (N days) after it: `recovered` is 1/0 (true/false). Feature columns are `features.INPUTS`;
days_overdue, amount and segment are required, the rest may be blank (the training median stands in). Any other
column is kept aside, never parsed into the model: `duebot risk check` uses such columns (gender, region…) to
show the score does not move with them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from duebot.risk.features import INPUTS, InputError, Inputs, parse_inputs

LABEL = "recovered"
KEY = "account_id"
MAX_FIELD = 200  # characters: a longer value is not one of ours


class HistoryError(ValueError):
    """The file as a whole cannot be used (not found, no header, nothing valid); the message says why."""


@dataclass
class History:
    path: Path
    sha256: str
    columns: list[str]
    raw: list[dict[str, str]] = field(default_factory=list)  # the good rows as read (every column, as text)
    lines: list[int] = field(default_factory=list)
    inputs: list[Inputs] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ignored(self) -> list[str]:
        """Columns present that the model never reads."""
        return [c for c in self.columns if c not in (*INPUTS, LABEL, KEY)]

    def ids(self) -> list[str]:
        return [row.get(KEY, "") for row in self.raw]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _label(row: Mapping[str, str]) -> int:
    text = (row.get(LABEL) or "").strip().lower()
    if text in ("1", "true", "yes", "y"):
        return 1
    if text in ("0", "false", "no", "n"):
        return 0
    raise InputError(f"{LABEL}: expected 1/0 or true/false, got {text[:40]!r}" if text else f"missing {LABEL}")


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def iter_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str] | InputError]]]:
    """(columns, [(line, row or why it cannot be read)]) of a CSV or JSON Lines file."""
    if not path.is_file():
        raise HistoryError(f"{path}: no such file")
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    rows: list[tuple[int, dict[str, str] | InputError]] = []
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        columns: list[str] = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                rows.append((number, InputError(f"not JSON ({exc.msg})")))
                continue
            if not isinstance(obj, dict):
                rows.append((number, InputError("not a JSON object")))
                continue
            row = {str(k): _as_text(v) for k, v in obj.items()}
            columns += [k for k in row if k not in columns]
            rows.append((number, row))
        return columns, rows
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise HistoryError(f"{path}: no header row")
    columns = [c.strip() for c in reader.fieldnames]
    for row in reader:
        number = reader.line_num
        if None in row:
            rows.append((number, InputError("more fields than the header")))
            continue
        rows.append((number, {k.strip(): (v or "") for k, v in row.items()}))
    return columns, rows


def read_history(path: Path, *, labelled: bool = True) -> History:
    """Every good row kept, every bad one reported with its line and reason. `labelled`: `recovered` required
    (training); without it (an operator's history for scoring) only account_id is, and any feature may be blank."""
    columns, items = iter_rows(path)
    history = History(path, file_sha256(path), columns)
    if labelled and LABEL not in columns:
        raise HistoryError(f"{path}: no {LABEL!r} column (1 when the debt was recovered within the horizon)")
    if not labelled and KEY not in columns:
        raise HistoryError(f"{path}: no {KEY!r} column")
    for line, row in items:
        if isinstance(row, InputError):
            history.errors.append((line, str(row)))
            continue
        try:
            long = [k for k, v in row.items() if len(v) > MAX_FIELD]
            if long:
                raise InputError(f"{long[0]}: longer than {MAX_FIELD} characters")
            label = _label(row) if labelled else 0
            inputs = parse_inputs(row, require=labelled)
            if not labelled and not (row.get(KEY) or "").strip():
                raise InputError(f"missing {KEY}")
        except InputError as exc:
            history.errors.append((line, str(exc)))
            continue
        history.raw.append(row)
        history.lines.append(line)
        history.inputs.append(inputs)
        history.labels.append(label)
    return history


def write_rows(path: Path, rows: list[dict[str, object]], columns: list[str]) -> None:
    """CSV, or JSON Lines when the name ends in .jsonl."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False) + "\n")
        return
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: "" if row.get(c) is None else _as_text(row.get(c)) for c in columns})
