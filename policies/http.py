"""POST /gate/check: the same offline engine over HTTP. Body: one request object or an array of them.

200 with a decision (or an array of decisions); 422 when a request is invalid, with `detail` naming the field
and the fail-closed decisions alongside; unknown pack -> 422 with UNKNOWN_PACK decisions.

Issue 18: the caller needs an API token whose role may check contacts (console/roles.py), checked before the
body is read; a body is at most DUEBOT_MAX_BODY_BYTES (the web service's middleware) and an array at most
DUEBOT_GATE_MAX_BATCH requests (413). `pack` is a registered name only — the packaged cn and us and those in
DUEBOT_GATE_PACKS — never a path: anything else gets one fixed message that repeats nothing of what was sent.
Audit records made here hold no string longer than AUDIT_STRING_MAX characters (the request digest still
identifies the whole request)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Security
from fastapi.responses import JSONResponse

from duebot.console.api_auth import AUTH_RESPONSES, require_token
from duebot.console.roles import Perm
from duebot.policies import codes
from duebot.policies.audit import AUDIT_KIND, AuditSink, JsonlAuditSink, append_many, audit_body
from duebot.policies.check import check_many
from duebot.policies.gate import denied
from duebot.policies.packs import BUILTIN, DEFAULT_PACK, Pack, PackError, load_pack
from duebot.settings import load_settings

router = APIRouter(tags=["gate"], responses=AUTH_RESPONSES)
log = logging.getLogger("duebot.gate")
_sink: AuditSink | None = None
AUDIT_STRING_MAX = 256
UNKNOWN = "unknown"  # the `pack` of a decision made for a pack that is not registered: never the name sent


def set_audit_sink(sink: AuditSink) -> None:
    """The service wires the evidence log here; default is the JSONL file under the data directory."""
    global _sink
    _sink = sink


def _get_sink() -> AuditSink:
    global _sink
    if _sink is None:
        _sink = JsonlAuditSink()
    return BoundedSink(_sink)


def bounded(value: Any, limit: int = AUDIT_STRING_MAX) -> Any:
    """The value with every string cut to `limit` characters (marked with how much was cut)."""
    if isinstance(value, str):
        return value if len(value) <= limit else f"{value[:limit]}…[{len(value) - limit} more characters]"
    if isinstance(value, dict):
        return {bounded(k, limit): bounded(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [bounded(v, limit) for v in value]
    return value


class BoundedSink:
    """An audit sink that never writes an unbounded string: what HTTP callers send is theirs to size."""

    def __init__(self, inner: AuditSink) -> None:
        self.inner = inner

    def append(self, kind: str, body: dict[str, Any]) -> None:
        self.inner.append(kind, bounded(body))

    def append_many(self, kind: str, bodies: Iterable[dict[str, Any]]) -> None:
        append_many(self.inner, kind, [bounded(b) for b in bodies])


def registered_packs() -> dict[str, str]:
    """Pack name -> what `load_pack` is given: the packaged packs, then the operator's (DUEBOT_GATE_PACKS)."""
    out = {name: name for name in BUILTIN}
    out.update({name: str(path) for name, path in load_settings().api.registered_packs.items()})
    return out


def _pack(name: str) -> tuple[Pack | None, str]:
    """The registered pack of this name, or None with a message that contains nothing of `name` or of any file."""
    known = registered_packs()
    source = known.get(name)
    if source is None:
        return None, f"pack: unknown pack; use one of {', '.join(known)}"
    try:
        return load_pack(source), ""
    except PackError as exc:  # the operator's file is broken: say so in the log, not to the caller
        log.error("gate: registered pack %s cannot be loaded: %s", name, exc)
        return None, f"pack: the registered pack {name} cannot be loaded; see the web service's log"


GATE_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "oneOf": [{"type": "object", "description": "One request (docs/compliance.md)"},
              {"type": "array", "items": {"type": "object"}, "description": "Requests, at most DUEBOT_GATE_MAX_BATCH"}],
}}}}}


@router.post("/gate/check", openapi_extra=GATE_BODY,
             dependencies=[Security(require_token(Perm.GATE_CHECK))],
             responses={413: {"description": "Body over DUEBOT_MAX_BODY_BYTES or more than DUEBOT_GATE_MAX_BATCH "
                                             "requests"}})
async def gate_check(request: Request,
                     pack: str = Query(DEFAULT_PACK, description="A registered pack name")) -> JSONResponse:
    raw = await request.body()  # only now: the token was checked first
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(422, "body: expected a JSON request object or an array of them") from exc
    single = not isinstance(body, list)
    items = [body] if single else body
    limit = load_settings().api.gate_max_batch
    if len(items) > limit:
        raise HTTPException(413, f"at most {limit} requests per call (DUEBOT_GATE_MAX_BATCH)")
    sink = _get_sink()
    loaded, problem = _pack(pack)
    if loaded is None:
        decisions = [denied(codes.UNKNOWN_PACK, UNKNOWN, problem) for _ in items]
        append_many(sink, AUDIT_KIND, [audit_body(i, d, "offline") for i, d in zip(items, decisions, strict=True)])
        out = [d.to_json() for d in decisions]
        return JSONResponse({"detail": problem, "decisions": out[0] if single else out}, status_code=422)
    result = check_many(items, loaded, sink)
    out = [d.to_json() for d in result.decisions]
    payload: Any = out[0] if single else out
    if result.errors:
        return JSONResponse({"detail": result.errors, "decisions": payload}, status_code=422)
    return JSONResponse(payload)
