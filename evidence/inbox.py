"""Evidence from many processes, one writer: a Redis Stream in front of the append-only log.

The log has a single writer (it holds an exclusive lock on its directory). Every other process — the action
server, channel adapters, voice workers, campaign workers, the gate — `submit`s records to a Redis Stream;
`duebot evidence writer` (started by `duebot serve`) reads them with a consumer group, appends them durably
and only then acknowledges them. A writer that dies leaves its records pending, and the next one appends
them; each record carries a producer-made id (`rid`) so a record appended just before a crash is not
appended a second time.

A record the writer cannot append (malformed JSON, NaN, an unknown kind: written by an old producer or by anyone
with access to Redis, past `submit`'s checks) would otherwise be redelivered after every restart and stop the
writer for good. It goes to the dead-letter stream instead, with the reason and its original fields, is
acknowledged and counted, and the writer carries on: `duebot evidence dead-letters` lists them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from duebot.evidence.log import EvidenceLog
from duebot.evidence.records import RecordError, utc_now, validate
from duebot.evidence.store import MAX_RECORD
from duebot.evidence.three_elements import record_three_elements

STREAM = "duebot:evidence:inbox"
GROUP = "evidence-writers"
HEARTBEAT = "duebot:evidence:writer"  # set while a writer runs: readiness and health checks read it
PAYLOAD_PREFIX = b"p:"
_logger = logging.getLogger("duebot.evidence")
DEAD_LETTERS = "duebot:evidence:dead-letters"  # records the writer could not append: reason + original fields
DEAD_LETTER_COUNT = "duebot:evidence:dead-letters:count"  # how many ever, never trimmed (alert on any increase)
ORIGINAL_PREFIX = b"f:"  # a dead letter's copy of the original fields: f:rid, f:kind, f:body, f:p:text...


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
        if not isinstance(body, dict):
            raise RecordError(f"a record body is a dict, not a {type(body).__name__}")
        body = dict(body)
        conversation_id = conversation_id or body.pop("conversation_id", None)
        # refuses NaN, infinities and anything JSON cannot hold, naming the field (records.check_json)
        validate(kind, body, conversation_id)
        rid = uuid.uuid4().hex
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        if len(text.encode()) > MAX_RECORD:
            raise RecordError(f"{kind} record body of {len(text.encode())} bytes exceeds {MAX_RECORD}")
        fields: dict[bytes | str, bytes | str] = {
            "rid": rid, "kind": kind, "conversation_id": conversation_id or "", "body": text,
        }
        for name, blob in (payloads or {}).items():
            if not isinstance(name, str) or not isinstance(blob, bytes | bytearray):
                raise RecordError(f"payload {name!r}: a name (str) and bytes, not {type(blob).__name__}")
            fields[PAYLOAD_PREFIX + name.encode()] = bytes(blob)
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


def _refuse_constant(name: str) -> Any:
    raise RecordError(f"body holds {name}, which is not a JSON number")


def _decode(fields: dict[bytes, bytes]) -> tuple[str, str, dict[str, Any], str | None, dict[str, bytes]]:
    """A stream entry as an append; RecordError (with the reason) for anything the log must not or cannot hold."""
    missing = [name for name in ("rid", "kind", "body") if name.encode() not in fields]
    if missing:
        raise RecordError(f"entry lacks {', '.join(missing)}")
    try:
        rid = fields[b"rid"].decode()
        kind = fields[b"kind"].decode()
        conversation_id = fields.get(b"conversation_id", b"").decode() or None
        payloads = {k[len(PAYLOAD_PREFIX):].decode(): v for k, v in fields.items() if k.startswith(PAYLOAD_PREFIX)}
        body = json.loads(fields[b"body"], parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise RecordError(f"not UTF-8: {exc}") from None
    except RecursionError:
        raise RecordError("body nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError; a RecordError from _refuse_constant passes through
        if isinstance(exc, RecordError):
            raise
        raise RecordError(f"body is not JSON: {exc}") from None
    if not rid or len(rid) > 128:
        raise RecordError("rid must be 1 to 128 characters")
    if not isinstance(body, dict):
        raise RecordError(f"body is a JSON {type(body).__name__}, not an object")
    conversation_id = conversation_id or body.pop("conversation_id", None)  # lifted as EvidenceLog.append does
    validate(kind, body, conversation_id)
    body["rid"] = rid  # inside the hashed record: duplicates after a crash are recognisable
    return rid, kind, body, conversation_id, payloads


def dead_letters(client: redis.Redis, count: int = 100, stream: str = DEAD_LETTERS) -> list[dict[str, Any]]:
    """The newest `count` dead letters, newest first: id, reason, when, the original entry id and fields."""
    out = []
    for entry_id, fields in client.xrevrange(stream, count=count):
        original = {k[len(ORIGINAL_PREFIX):].decode("utf-8", "replace"): v for k, v in fields.items()
                    if k.startswith(ORIGINAL_PREFIX)}
        meta = {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()
                if not k.startswith(ORIGINAL_PREFIX)}
        out.append({"id": entry_id.decode(), **meta, "fields": original})
    return out


def dead_letter_count(client: redis.Redis) -> int:
    return int(client.get(DEAD_LETTER_COUNT) or 0)


class EvidenceWriter:
    """The single consumer that moves submitted records into the log, acknowledging only what is durable."""

    def __init__(self, client: redis.Redis, log: EvidenceLog, *, stream: str = STREAM, group: str = GROUP,
                 consumer: str | None = None, recent: int = 10_000, assess_after: float = 60.0,
                 dead_letters: str = DEAD_LETTERS) -> None:
        self.client, self.log, self.stream, self.group = client, log, stream, group
        self.dead_letters = dead_letters
        self.dead_lettered = 0
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
        """Append a batch in stream order with one durable wait, then acknowledge it. An entry that cannot be
        appended is dead-lettered (and acknowledged); a storage failure raises and leaves the batch pending."""
        if not entries:
            return 0
        fresh: list[tuple[bytes, dict[bytes, bytes], str, tuple[Any, ...]]] = []
        dead: list[tuple[bytes, dict[bytes, bytes], str]] = []
        rids: set[str] = set()
        for entry_id, fields in entries:
            try:
                rid, kind, body, conversation_id, payloads = _decode(fields)
            except RecordError as exc:
                dead.append((entry_id, fields, str(exc)))
                continue
            if rid not in self.seen and rid not in rids:
                fresh.append((entry_id, fields, rid, (kind, body, payloads or None, conversation_id)))
                rids.add(rid)
        refusals = self._append([item for _, _, _, item in fresh])
        now = time.monotonic()
        for (entry_id, fields, rid, (kind, _, _, conversation_id)), refusal in zip(fresh, refusals, strict=True):
            if refusal is not None:
                dead.append((entry_id, fields, refusal))
                continue
            self.seen.add(rid)
            self.appended += 1
            if conversation_id and kind != "three_elements":
                self.active[conversation_id] = now
        if dead:
            self._dead_letter(dead)
        self.client.xack(self.stream, self.group, *[entry_id for entry_id, _ in entries])
        self.client.xdel(self.stream, *[entry_id for entry_id, _ in entries])
        return len(entries)

    def _append(self, items: list[tuple[str, dict[str, Any], dict[str, bytes] | None, str | None]]
                ) -> list[str | None]:
        """Append all with one wait; per item None, or why the log refused it. append_many is all or nothing, so
        when it refuses the batch the items are appended one by one to find the culprits (rare: _decode has
        already run the log's own validation)."""
        try:
            self.log.append_many(items)
            return [None] * len(items)
        except RecordError:
            pass
        reasons: list[str | None] = []
        for item in items:
            try:
                self.log.append_many([item])
                reasons.append(None)
            except RecordError as exc:
                reasons.append(str(exc))
        return reasons

    def _dead_letter(self, dead: list[tuple[bytes, dict[bytes, bytes], str]]) -> None:
        """Copy to the dead-letter stream and count, in one transaction (acknowledged right after: a crash in
        between redelivers the entry and it is dead-lettered again, never lost)."""
        pipe = self.client.pipeline(transaction=True)
        for entry_id, fields, reason in dead:
            letter: dict[bytes, bytes] = {b"reason": reason[:2000].encode(), b"stream_id": entry_id,
                                          b"at": utc_now().encode(), b"consumer": self.consumer.encode()}
            letter.update({ORIGINAL_PREFIX + k: v for k, v in fields.items()})
            pipe.xadd(self.dead_letters, letter)
        pipe.incrby(DEAD_LETTER_COUNT, len(dead))
        pipe.execute()
        self.dead_lettered += len(dead)
        for entry_id, _, reason in dead:
            _logger.error("evidence: entry %s dead-lettered to %s: %s", entry_id.decode(), self.dead_letters,
                          reason)

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
            del self.active[conversation_id]
            try:
                record_three_elements(self.log, conversation_id)
            except (RecordError, TypeError, ValueError, KeyError, AttributeError):
                # records of any JSON shape reach the detector: one it cannot read must not stop the writer
                _logger.exception("evidence: three elements of %s could not be assessed", conversation_id)
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
