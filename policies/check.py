"""Offline checking shared by the CLI and the HTTP endpoint: input parsing, batch decide, batch audit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from duebot.policies import codes
from duebot.policies.audit import AUDIT_KIND, AuditSink, append_many, audit_body
from duebot.policies.gate import Decision, RequestError, denied, evaluate, parse_request
from duebot.policies.packs import Pack


class InputError(ValueError):
    """The input is not JSON / JSON Lines / an array of objects."""


_RAW = msgspec.json.Decoder(msgspec.Raw)
_RAW_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])


def _split_fast(data: bytes) -> list[Any] | None:
    """The requests as undecoded JSON texts (msgspec.Raw, validated later straight into typed requests), or None
    when this is not plain JSON objects; the reference path then decides, and words any error."""
    try:
        if data.startswith(b"["):
            return _RAW_ARRAY.decode(data)
        if data.startswith(b"{"):
            try:
                return [_RAW.decode(data)]
            except msgspec.DecodeError:
                return _RAW.decode_lines(data)
    except msgspec.DecodeError:
        pass
    return None


def parse_input(text: str | bytes) -> list[Any]:
    """One JSON object, a JSON array of them, or JSON Lines. Items are decoded objects, or JSON texts that
    `parse_request` decodes (faster than building dicts first)."""
    try:
        data = text.strip().encode("utf-8") if isinstance(text, str) else text.strip()
    except UnicodeEncodeError:
        data = b""
    items = _split_fast(data) if data else None
    if items is not None:
        return items
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"input: not UTF-8: {exc}") from None
    stripped = text.strip()
    if not stripped:
        raise InputError("input: empty (expected a JSON object, an array of them, or JSON Lines)")
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as whole_err:
        if stripped.startswith("["):
            raise InputError(f"input: invalid JSON at line {whole_err.lineno} column {whole_err.colno}: "
                             f"{whole_err.msg}") from None
        items = []
        for lineno, line in enumerate(stripped.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"input: invalid JSON on line {lineno} column {exc.colno}: {exc.msg}") from None
        return items
    if isinstance(data, list):
        return data
    return [data]


@dataclass
class CheckResult:
    decisions: list[Decision]
    errors: list[str]  # "request[i]: field: problem", one per invalid request


def check_many(items: Sequence[Any], pack: Pack, sink: AuditSink | None, mode: str = "offline") -> CheckResult:
    """Decide each request (invalid ones fail closed with INVALID_REQUEST) and audit the whole batch before
    returning; if the audit cannot be written, nothing is allowed."""
    decisions: list[Decision] = []
    errors: list[str] = []
    parsed: list[Any] = []
    multi = len(items) > 1
    for i, item in enumerate(items):
        try:
            req = parse_request(item)
        except RequestError as exc:
            msg = f"request[{i}].{exc}" if multi else str(exc)
            errors.append(msg)
            decisions.append(denied(codes.INVALID_REQUEST, pack.id, msg))
            parsed.append(item)
            continue
        try:
            decisions.append(evaluate(pack, req))
        except Exception as exc:  # noqa: BLE001
            decisions.append(denied(codes.RULE_ERROR, pack.id, f"{type(exc).__name__}: {exc}", req.now))
        parsed.append(req)
    if sink is not None:
        try:
            append_many(sink, AUDIT_KIND, [audit_body(r, d, mode) for r, d in zip(parsed, decisions, strict=True)])
        except Exception as exc:  # noqa: BLE001 - unrecorded means not allowed
            decisions = [msgspec.structs.replace(d, allowed=False, reasons=(*d.reasons, codes.AUDIT_UNAVAILABLE)
                                 if codes.AUDIT_UNAVAILABLE not in d.reasons else d.reasons,
                                 next_allowed_at=None, error=f"audit: {exc}") for d in decisions]
    return CheckResult(decisions, errors)
