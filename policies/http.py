"""POST /gate/check: the same offline engine over HTTP. Body: one request object or an array of them.

200 with a decision (or an array of decisions); 422 when a request is invalid, with `detail` naming the field
and the fail-closed decisions alongside; unknown pack -> 422 with UNKNOWN_PACK decisions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse

from duebot.policies import codes
from duebot.policies.audit import AUDIT_KIND, AuditSink, JsonlAuditSink, append_many, audit_body
from duebot.policies.check import check_many
from duebot.policies.gate import denied
from duebot.policies.packs import DEFAULT_PACK, PackError, load_pack

router = APIRouter(tags=["gate"])
_sink: AuditSink | None = None


def set_audit_sink(sink: AuditSink) -> None:
    """The service wires the evidence log here; default is the JSONL file under the data directory."""
    global _sink
    _sink = sink


def _get_sink() -> AuditSink:
    global _sink
    if _sink is None:
        _sink = JsonlAuditSink()
    return _sink


@router.post("/gate/check")
def gate_check(body: Any = Body(...), pack: str = Query(DEFAULT_PACK)) -> JSONResponse:  # noqa: B008
    single = not isinstance(body, list)
    items = [body] if single else body
    sink = _get_sink()
    try:
        loaded = load_pack(pack)
    except PackError as exc:
        decisions = [denied(codes.UNKNOWN_PACK, pack, str(exc)) for _ in items]
        append_many(sink, AUDIT_KIND, [audit_body(i, d, "offline") for i, d in zip(items, decisions, strict=True)])
        out = [d.to_json() for d in decisions]
        return JSONResponse({"detail": f"pack: {exc}", "decisions": out[0] if single else out}, status_code=422)
    result = check_many(items, loaded, sink)
    out = [d.to_json() for d in result.decisions]
    payload: Any = out[0] if single else out
    if result.errors:
        return JSONResponse({"detail": result.errors, "decisions": payload}, status_code=422)
    return JSONResponse(payload)
