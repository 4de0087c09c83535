"""Evidence from many processes, one writer: a Redis Stream in front of the append-only log.

The log has a single writer (it holds an exclusive lock on its directory). Every other process — the action
server, channel adapters, voice workers, campaign workers, the gate — `submit`s records to a Redis Stream;
`duebot evidence writer` (started by `duebot serve`) reads them with a consumer group, appends them durably
and only then acknowledges them. A writer that dies leaves its records pending, and the next one appends
them; each record carries a producer-made id (`rid`) so a record appended just before a crash is not
appended a second time.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from duebot.evidence.log import EvidenceLog
from duebot.evidence.records import validate
from duebot.evidence.three_elements import record_three_elements

STREAM = "duebot:evidence:inbox"
GROUP = "evidence-writers"
HEARTBEAT = "duebot:evidence:writer"  # set while a writer runs: readiness and health checks read it
PAYLOAD_PREFIX = b"p:"


@dataclass(frozen=True)
class Submitted:
    rid: str
    stream_id: str


class EvidenceInbox:
    """The producers' side: validate here (a clear error for the caller), deliver through Redis."""

    def __init__(self, client: redis.Redis, stream: str = STREAM) -> None:
        self.client = client
        self.stream = stream

    def submit(self, kind: str, body: dict[str, Any], *, conversation_id: str | None = None,
               payloads: dict[str, bytes] | None = None) -> Submitted:
        body = dict(body)
        conversation_id = conversation_id or body.pop("conversation_id", None)
        validate(kind, body, conversation_id)
        rid = uuid.uuid4().hex
        fields: dict[bytes | str, bytes | str] = {
            "rid": rid, "kind": kind, "conversation_id": conversation_id or "",
            "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False),
        }
        for name, blob in (payloads or {}).items():
            fields[PAYLOAD_PREFIX + name.encode()] = blob
        stream_id = self.client.xadd(self.stream, fields)
        return Submitted(rid, stream_id.decode() if isinstance(stream_id, bytes) else str(stream_id))


class InboxAuditSink:
    """The compliance gate's audit sink (policies/audit.py AuditSink): its decisions become evidence records.

    A decision is in Redis (append-only file, fsync every second) before the gate answers, and in the
    signed log once the writer has drained it."""

    KINDS = {"gate.decision": ("gate_decision", "decision"), "gate.release": ("gate_release", "release")}

    def __init__(self, inbox: EvidenceInbox) -> None:
        self.inbox = inbox

    def _fields(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        record_kind, key = self.KINDS[kind]
        return {"rid": uuid.uuid4().hex, "kind": record_kind, "conversation_id": "",
                "body": json.dumps({key: body}, separators=(",", ":"), ensure_ascii=False, default=str)}

    def append(self, kind: str, body: dict[str, Any]) -> None:
        self.inbox.client.xadd(self.inbox.stream, self._fields(kind, body))

    def append_many(self, kind: str, bodies: list[dict[str, Any]]) -> None:
        pipe = self.inbox.client.pipeline(transaction=False)
        for body in bodies:
            pipe.xadd(self.inbox.stream, self._fields(kind, body))
        pipe.execute()


def _decode(fields: dict[bytes, bytes]) -> tuple[str, str, dict[str, Any], str | None, dict[str, bytes]]:
    body = json.loads(fields[b"body"])
    rid = fields[b"rid"].decode()
    body["rid"] = rid  # inside the hashed record: duplicates after a crash are recognisable
    payloads = {k[len(PAYLOAD_PREFIX):].decode(): v for k, v in fields.items() if k.startswith(PAYLOAD_PREFIX)}
    return rid, fields[b"kind"].decode(), body, fields[b"conversation_id"].decode() or None, payloads


class EvidenceWriter:
    """The single consumer that moves submitted records into the log, acknowledging only what is durable."""

    def __init__(self, client: redis.Redis, log: EvidenceLog, *, stream: str = STREAM, group: str = GROUP,
                 consumer: str | None = None, recent: int = 10_000, assess_after: float = 60.0) -> None:
        self.client, self.log, self.stream, self.group = client, log, stream, group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.stopping = threading.Event()
        self.appended = 0
        # conversations with new records → when they last had one; assessed once quiet for `assess_after` s
        self.assess_after = assess_after
        self.active: dict[str, float] = {}
        try:
            client.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        # rids of the log's newest records: what a crashed writer appended but never acknowledged
        self.seen: set[str] = set()
        for record in log.iter_records(max(0, log.size - recent)):
            if isinstance(record.body.get("rid"), str):
                self.seen.add(record.body["rid"])

    def _handle(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
        """Append a batch in stream order with one durable wait, then acknowledge it."""
        if not entries:
            return 0
        items, rids = [], []
        for _, fields in entries:
            rid, kind, body, conversation_id, payloads = _decode(fields)
            if rid not in self.seen and rid not in rids:
                items.append((kind, body, payloads or None, conversation_id))
                rids.append(rid)
        self.log.append_many(items)
        now = time.monotonic()
        for kind, _, _, conversation_id in items:
            if conversation_id and kind != "three_elements":
                self.active[conversation_id] = now
        self.seen.update(rids)
        self.appended += len(items)
        self.client.xack(self.stream, self.group, *[entry_id for entry_id, _ in entries])
        self.client.xdel(self.stream, *[entry_id for entry_id, _ in entries])
        return len(entries)

    def drain_once(self, block_ms: int = 500, count: int = 512) -> int:
        """Append what is waiting: first entries claimed but never acknowledged (ours or a dead writer's)."""
        claimed = self.client.xautoclaim(self.stream, self.group, self.consumer, min_idle_time=5_000,
                                         start_id="0-0", count=count)
        done = self._handle([entry for entry in claimed[1] if entry[1]])
        mine = self.client.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=count)
        done += self._handle([entry for entry in (mine[0][1] if mine else []) if entry[1]])
        fresh = self.client.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=count,
                                       block=block_ms)
        done += self._handle(fresh[0][1] if fresh else [])
        return done

    def assess_quiet_conversations(self, now: float | None = None) -> list[str]:
        """Record the three elements of every conversation that has gone quiet since its last records."""
        now = time.monotonic() if now is None else now
        quiet = [c for c, last in self.active.items() if now - last >= self.assess_after]
        for conversation_id in quiet:
            record_three_elements(self.log, conversation_id)
            del self.active[conversation_id]
        return quiet

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.client.set(HEARTBEAT, self.consumer, ex=5)
                self.drain_once()
                self.assess_quiet_conversations()
            except redis.ConnectionError:
                time.sleep(1.0)  # Redis restarting: the records wait in the stream

    def close(self) -> None:
        self.stopping.set()
        with contextlib.suppress(redis.ConnectionError):
            self.client.delete(HEARTBEAT)


def writer_running(client: redis.Redis) -> bool:
    return client.exists(HEARTBEAT) == 1
