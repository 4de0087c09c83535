"""Live use: reserve a contact atomically against Redis counters, release it if it is not used.

The offline decision runs first (quiet hours, consent, holds...). Counter-based rules then re-check in one Lua
script against the union of the request's history and the reservations already in Redis (history entries that
carry their `reservation_id` are not counted twice; entries without one are added: the safe side), and add
this reservation to every counter in the same script, so two workers racing for one subscriber cannot both
pass a cap. Any Redis error means GATE_UNAVAILABLE, never a contact. Keys share the subscriber's hash tag."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import redis

from duebot.policies import codes, timezones
from duebot.policies.audit import AUDIT_KIND, RELEASE_KIND, AuditSink, JsonlAuditSink, append_many, audit_body
from duebot.policies.gate import Decision, HistoryEntry, Request, RequestError, denied, evaluate, parse_request
from duebot.policies.packs import Pack, PackError, load_pack
from duebot.policies.rules import CounterCheck
from duebot.policies.timeutil import DAY, format_instant

# KEYS[1] reservation hash, KEYS[2..] counter keys (one per check row; a key may repeat for several zones).
# ARGV: member, score, ttl, prune_before, reservation json, then per row: cap, history_count, after, n_ids,
# ids... A reservation id that is already reserved returns {0}: a retry after a crash reuses its reservation
# instead of counting the same contact twice. The count is the union of Redis and history: history entries
# carrying a reservation id that Redis holds are not counted twice; all others are added.
_RESERVE_LUA = """
if redis.call('HGET', KEYS[1], 'state') == 'reserved' then return {0} end
local blocked = {}
local base = 5
for i = 2, #KEYS do
  local n = redis.call('ZCOUNT', KEYS[i], '(' .. ARGV[base + 3], '+inf') + tonumber(ARGV[base + 2])
  local n_ids = tonumber(ARGV[base + 4])
  for j = 1, n_ids do
    if not redis.call('ZSCORE', KEYS[i], ARGV[base + 4 + j]) then n = n + 1 end
  end
  if n >= tonumber(ARGV[base + 1]) then blocked[#blocked + 1] = i - 1 end
  base = base + 4 + n_ids
end
if #blocked > 0 then return blocked end
local seen = {}
for i = 2, #KEYS do
  local k = KEYS[i]
  if not seen[k] then
    seen[k] = true
    redis.call('ZREMRANGEBYSCORE', k, '-inf', ARGV[4])
    redis.call('ZADD', k, ARGV[2], ARGV[1])
    redis.call('EXPIRE', k, ARGV[3])
  end
end
redis.call('HSET', KEYS[1], 'state', 'reserved', 'data', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {}
"""

# KEYS[1] reservation hash, KEYS[2..] its counter keys. ARGV: member, reason. 1 released, 0 already, -1 unknown.
_RELEASE_LUA = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -1 end
if state ~= 'reserved' then return 0 end
for i = 2, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('HSET', KEYS[1], 'state', 'released', 'reason', ARGV[2])
return 1
"""


_JSON = msgspec.json.Encoder()


def _resp(command: bytes, args: Sequence[str | bytes | int]) -> bytes:
    """A RESP array of bulk strings."""
    parts = [b"*%d\r\n$%d\r\n%s\r\n" % (len(args) + 1, len(command), command)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str | None  # None when not allowed
    decision: Decision

    @property
    def allowed(self) -> bool:
        return self.decision.allowed


class LiveGate:
    """`reserve`/`reserve_many` before contacting, `release` when the contact did not happen."""

    def __init__(self, client: redis.Redis, pack: Pack | str = "cn", sink: AuditSink | None = None,
                 prefix: str = "duebot:gate") -> None:
        self.client = client
        self.pack_error: str | None = None
        if isinstance(pack, str):
            try:
                pack = load_pack(pack)
            except PackError as exc:
                self.pack_error, self.pack_name = str(exc), pack
                pack = None  # type: ignore[assignment]
        self.pack: Pack | None = pack
        self.sink: AuditSink = sink if sink is not None else JsonlAuditSink()
        self.prefix = prefix
        days = max((getattr(r, "days", 1) for r in pack.rules), default=1) if pack else 1
        self.ttl = int((days + 2) * DAY)
        self._reserve = client.register_script(_RESERVE_LUA)
        self._release = client.register_script(_RELEASE_LUA)

    # ------------------------------------------------------------ keys

    def _tag(self, subscriber_id: str) -> str:
        # Braces would break the hash tag; they are rare in ids, so escape them rather than refuse.
        return "{" + subscriber_id.replace("{", "%7B").replace("}", "%7D") + "}"

    def _key(self, subscriber_id: str, suffix: str) -> str:
        return f"{self.prefix}:{self._tag(subscriber_id)}:{suffix}"

    # ------------------------------------------------------------ reserve

    def _prepare(self, raw: Request | Mapping[str, Any]
                 ) -> tuple[Request | Mapping[str, Any], Decision | None, list[CounterCheck]]:
        """Offline part: a final decision (denied) or the counter rows to check live."""
        if self.pack is None:
            return raw, denied(codes.UNKNOWN_PACK, self.pack_name, self.pack_error), []
        pack = self.pack
        try:
            req = raw if isinstance(raw, Request) else parse_request(raw)
        except RequestError as exc:
            return raw, denied(codes.INVALID_REQUEST, pack.id, str(exc)), []
        try:
            decision = evaluate(pack, req)
            if not decision.allowed:
                return req, decision, []
            _, zones = timezones.resolve(req.contact.to, req.subscriber.timezone, pack.default_region)
            rows = [row for rule in pack.rules for row in rule.counters(req, zones or (), req.now)]
        except Exception as exc:  # noqa: BLE001
            return req, denied(codes.RULE_ERROR, pack.id, f"{type(exc).__name__}: {exc}", req.now), []
        return req, None, rows

    def _script_command(self, req: Request, rows: list[CounterCheck], rid: str) -> bytes:
        """EVALSHA of the reserve script for one request, already in RESP: redis-py's generic packing cost more
        than the rest of a reservation."""
        sub = req.subscriber.id
        counter_keys = [self._key(sub, row.key) for row in rows]
        data = _JSON.encode({"keys": sorted(set(counter_keys)), "now": format_instant(req.now),
                             "channel": req.contact.channel, "purpose": req.contact.purpose})
        args: list[str | bytes | int] = [self._reserve.sha, 1 + len(rows), self._key(sub, f"res:{rid}"),
                                         *counter_keys, rid, repr(req.now), self.ttl, repr(req.now - self.ttl),
                                         data]
        for row in rows:
            args += [row.cap, row.history_count, repr(row.after), len(row.history_ids), *row.history_ids]
        return _resp(b"EVALSHA", args)

    def _run_scripts(self, commands: list[bytes]) -> list[Any]:
        """Send the commands in one write and read one reply each (an exception for an error reply); scripts
        missing from Redis' cache (restart, SCRIPT FLUSH) did not run, so they are loaded and sent again."""
        replies = self._send(commands)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, redis.exceptions.NoScriptError)]
        if missing:
            self.client.script_load(_RESERVE_LUA)
            for i, reply in zip(missing, self._send([commands[i] for i in missing]), strict=True):
                replies[i] = reply
        return replies

    def _send(self, commands: list[bytes]) -> list[Any]:
        pool = self.client.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command([b"".join(commands)])
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except redis.ResponseError as exc:  # the reply was read whole: the stream stays in step
                    replies.append(exc)
            return replies
        except BaseException:
            conn.disconnect()  # a half-read reply stream cannot be reused
            raise
        finally:
            pool.release(conn)

    def _blocked_many(self, blocked: list[tuple[int, Request, list[CounterCheck], Sequence[int]]]
                      ) -> dict[int, Decision]:
        """Redis knows of contacts the history does not: say which caps block and, advisory, when the cap
        would lift, by re-deciding with the live reservations added to the history. The live counters of the
        whole batch are read in one pipelined round trip."""
        assert self.pack is not None
        wanted = [(i, req, sorted({rows[int(b) - 1].key for b in idx})) for i, req, rows, idx in blocked]
        try:
            pipe = self.client.pipeline(transaction=False)
            for _, req, keys in wanted:
                for key in keys:
                    pipe.zrange(self._key(req.subscriber.id, key), 0, -1, withscores=True)
            members: list[Any] | None = pipe.execute()
        except Exception:  # noqa: BLE001 - the blocks stand; only the hints are lost
            members = None
        out: dict[int, Decision] = {}
        cursor = 0
        for (i, req, rows, idx), (_, _, keys) in zip(blocked, wanted, strict=True):
            reasons: list[str] = []
            for b in idx:
                if (code := rows[int(b) - 1].code) not in reasons:
                    reasons.append(code)
            nxt: float | None = None
            if members is not None:
                live = members[cursor:cursor + len(keys)]
                try:
                    nxt = self._next_allowed(req, [m for key_members in live for m in key_members])
                except Exception:  # noqa: BLE001 - the block stands; only the hint is lost
                    nxt = None
            cursor += len(keys)
            out[i] = Decision(False, tuple(reasons), nxt, self.pack.id, req.now)
        return out

    def _next_allowed(self, req: Request, live: list[tuple[bytes, float]]) -> float | None:
        assert self.pack is not None
        c = req.contact
        extra = [HistoryEntry(score, c.channel, c.purpose, c.debt_id, None, member.decode())
                 for member, score in live]
        known = {e.reservation_id for e in extra}
        history = tuple(e for e in req.history if e.reservation_id not in known) + tuple(extra)
        return evaluate(self.pack, msgspec.structs.replace(req, history=history)).next_allowed_at

    def reserve_many(self, requests: Sequence[Request | Mapping[str, Any]],
                     keys: Sequence[str | None] | None = None) -> list[Reservation]:
        """Pipelined: one round trip for the batch; each reservation is still its own atomic script.

        `keys` are the callers' idempotency keys: reserving again with the same key (a worker retrying a job
        after a crash) returns the reservation already held instead of taking a second one."""
        if keys is not None and len(keys) != len(requests):
            raise ValueError("one key per request")
        prepared = [self._prepare(r) for r in requests]
        results: list[Reservation | None] = [None] * len(prepared)
        pending: list[tuple[int, Request, list[CounterCheck], str]] = []
        for i, (req, decision, rows) in enumerate(prepared):
            if decision is not None:
                results[i] = Reservation(None, decision)
            else:
                assert isinstance(req, Request)
                key = keys[i] if keys is not None else None
                if key is not None and "@" in key:
                    raise ValueError(f"reservation key may not contain '@': {key!r}")
                rid = f"{key or uuid.uuid4().hex}@{req.subscriber.id}"
                pending.append((i, req, rows, rid))
        if pending:
            try:
                replies = self._run_scripts([self._script_command(req, rows, rid) for _, req, rows, rid in pending])
            except Exception as exc:  # noqa: BLE001 - connection refused, timeout, ...
                replies = [exc] * len(pending)
            assert self.pack is not None
            blocked: list[tuple[int, Request, list[CounterCheck], Sequence[int]]] = []
            for (i, req, rows, rid), reply in zip(pending, replies, strict=True):
                if isinstance(reply, Exception):
                    results[i] = Reservation(None, denied(codes.GATE_UNAVAILABLE, self.pack.id,
                                                          f"redis: {reply}", req.now))
                elif reply and list(reply) != [0]:
                    blocked.append((i, req, rows, reply))
                else:
                    results[i] = Reservation(rid, Decision(True, (), req.now, self.pack.id, req.now))
            if blocked:
                for i, decision in self._blocked_many(blocked).items():
                    results[i] = Reservation(None, decision)
        out = [r for r in results if r is not None]
        return self._audit(prepared, out)

    def reserve(self, request: Request | Mapping[str, Any], key: str | None = None) -> Reservation:
        return self.reserve_many([request], None if key is None else [key])[0]

    def _audit(self, prepared: list[tuple[Any, Decision | None, list[CounterCheck]]],
               reservations: list[Reservation]) -> list[Reservation]:
        bodies = [audit_body(req, res.decision, "live", reservation_id=res.id)
                  for (req, _, _), res in zip(prepared, reservations, strict=True)]
        try:
            append_many(self.sink, AUDIT_KIND, bodies)
        except Exception as exc:  # noqa: BLE001 - an unrecorded reservation must not be used
            out = []
            for res in reservations:
                if res.id is not None:
                    self._release_quiet(res.id, "audit_unavailable")
                d = res.decision
                out.append(Reservation(None, Decision(False, (*d.reasons, codes.AUDIT_UNAVAILABLE), None, d.pack,
                                                      d.now, f"audit: {exc}")))
            return out
        return reservations

    # ------------------------------------------------------------ release

    def _release_quiet(self, reservation_id: str, reason: str) -> int:
        _, _, sub = reservation_id.partition("@")
        res_key = self._key(sub, f"res:{reservation_id}")
        raw = self.client.hget(res_key, "data")
        if raw is None:
            return -1
        keys = json.loads(raw)["keys"]
        return int(self._release(keys=[res_key, *keys], args=[reservation_id, reason]))

    def release(self, reservation_id: str, reason: str) -> bool:
        """Give back an unused reservation (e.g. the call failed to start). True if it was released now;
        False if unknown or already released. Audited either way; Redis errors propagate (the caller did not
        contact anyone, so failing loudly is safe)."""
        status = self._release_quiet(reservation_id, reason)
        self.sink.append(RELEASE_KIND, {"reservation_id": reservation_id, "reason": reason,
                                        "released": status == 1,
                                        "status": {1: "released", 0: "already_released", -1: "unknown"}[status]})
        return status == 1


class GatesByPack(Mapping[str, LiveGate]):
    """One LiveGate per compliance pack, made the first time a pack is asked for; safe across threads."""

    def __init__(self, client: redis.Redis, sink: AuditSink | None = None) -> None:
        self.client, self.sink = client, sink
        self._gates: dict[str, LiveGate] = {}
        self._lock = threading.Lock()

    def __getitem__(self, pack: str) -> LiveGate:
        with self._lock:
            gate = self._gates.get(pack)
            if gate is None:
                gate = self._gates[pack] = LiveGate(self.client, pack, self.sink)
            return gate

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._gates))

    def __len__(self) -> int:
        return len(self._gates)


def reserve(client: redis.Redis, request: Request | Mapping[str, Any], pack: Pack | str = "cn",
            sink: AuditSink | None = None) -> Reservation:
    """One-shot convenience; long-running workers should keep a LiveGate (scripts are registered once)."""
    return LiveGate(client, pack, sink).reserve(request)


def release(client: redis.Redis, reservation_id: str, reason: str, sink: AuditSink | None = None) -> bool:
    return LiveGate(client, "cn", sink).release(reservation_id, reason)


__all__ = ["GatesByPack", "LiveGate", "Reservation", "reserve", "release"]
