"""Every gate decision is recorded: an append-only JSONL file until the evidence log takes over.

The sink is a protocol so the lead can plug in the evidence log; the file sink fsyncs before returning, so
a decision that is acted on is already on disk."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import msgspec

from duebot.evidence.durable import write_all_synced
from duebot.policies.gate import Decision, Request
from duebot.policies.timeutil import format_instant

AUDIT_KIND = "gate.decision"
_LINE = msgspec.json.Encoder()  # compact UTF-8 JSON, like json.dumps(separators=(",", ":"), ensure_ascii=False)
RELEASE_KIND = "gate.release"


@runtime_checkable
class AuditSink(Protocol):
    def append(self, kind: str, body: dict[str, Any]) -> None: ...


def default_audit_path() -> Path:
    from duebot.settings import load_settings

    return load_settings().data_dir / "audit" / "gate.jsonl"


class JsonlAuditSink:
    """Append-only JSON Lines with fsync. `append_many` writes a batch with one fsync (offline batches)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_audit_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def append(self, kind: str, body: dict[str, Any]) -> None:
        self.append_many(kind, (body,))

    def append_many(self, kind: str, bodies: Iterable[dict[str, Any]]) -> None:
        recorded = format_instant(time.time())
        data = b"".join(_LINE.encode({"kind": kind, "recorded_at": recorded, **b}) + b"\n" for b in bodies)
        if not data:
            return
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                write_all_synced(fd, data)
            finally:
                os.close(fd)


class MemoryAuditSink:
    """For tests and embedding: keeps records in a list."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def append(self, kind: str, body: dict[str, Any]) -> None:
        with self._lock:
            self.records.append((kind, body))

    def append_many(self, kind: str, bodies: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            self.records.extend((kind, b) for b in bodies)


def _request_json(request: Request | Mapping[str, Any] | object) -> object:
    if isinstance(request, Request):
        if request.raw is not None:
            return _request_json(request.raw)
        return msgspec.to_builtins(request)
    if isinstance(request, bytes | msgspec.Raw):  # JSON text as received: digest the object it decodes to
        text = bytes(request)
        try:
            return json.loads(text)
        except ValueError:
            return text.decode("utf-8", "replace")
    return request


def request_digest(request: Request | Mapping[str, Any] | object) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of the request as received."""
    canonical = json.dumps(_request_json(request), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def audit_body(request: Request | Mapping[str, Any] | object, decision: Decision, mode: str,
               **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "mode": mode,
        "request_digest": request_digest(request),
        "pack": decision.pack,
        "allowed": decision.allowed,
        "reasons": list(decision.reasons),
        "next_allowed_at": None if decision.next_allowed_at is None else format_instant(decision.next_allowed_at),
        "now": None if decision.now is None else format_instant(decision.now),
    }
    if isinstance(request, Request):
        body["subscriber_id"] = request.subscriber.id
        body["channel"] = request.contact.channel
        body["purpose"] = request.contact.purpose
    if decision.error is not None:
        body["error"] = decision.error
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def append_many(sink: AuditSink, kind: str, bodies: list[dict[str, Any]]) -> None:
    batch = getattr(sink, "append_many", None)
    if batch is not None:
        batch(kind, bodies)
    else:
        for body in bodies:
            sink.append(kind, body)
