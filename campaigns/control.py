"""Everything the workers share in Redis: the job stream, run/pause flags, pacing, heartbeats, progress.

Jobs are one Redis Stream read by one consumer group ("campaign-workers"): add workers on any machine to scale.
Pacing is global: a token bucket per channel (calls per second) and a lease-based semaphore for concurrent
calls, both Lua scripts on Redis' own clock, so every worker on every machine shares the same limits."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis

PREFIX = "duebot:campaign"
STREAM = f"{PREFIX}:jobs"
GROUP = "campaign-workers"
RUNNING, PAUSED, CANCELLED = "running", "paused", "cancelled"

_BUCKET_LUA = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(s[1]) or burst, tonumber(s[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return wait
"""

# KEYS[1] zset of leases (member → expiry). ARGV: member, max, lease seconds. 1 acquired, 0 full.
_SEMAPHORE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class Job:
    campaign_id: str
    account_id: str
    step: int

    @property
    def key(self) -> str:
        return f"{self.campaign_id}:{self.account_id}:{self.step}"

    def fields(self) -> dict[str, str]:
        return {"campaign_id": self.campaign_id, "account_id": self.account_id, "step": str(self.step)}

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> Job:
        return cls(fields[b"campaign_id"].decode(), fields[b"account_id"].decode(), int(fields[b"step"]))


class Control:
    def __init__(self, client: redis.Redis, stream: str = STREAM, group: str = GROUP) -> None:
        self.client, self.stream, self.group = client, stream, group
        self._bucket = client.register_script(_BUCKET_LUA)
        self._semaphore = client.register_script(_SEMAPHORE_LUA)

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # ------------------------------------------------------------ jobs
    def enqueue(self, jobs: Iterable[Job]) -> int:
        n = 0
        pipe = self.client.pipeline(transaction=False)
        for job in jobs:
            pipe.xadd(self.stream, job.fields())
            n += 1
            if n % 1000 == 0:
                pipe.execute()
        pipe.execute()
        return n

    def backlog(self) -> dict[str, int]:
        """Jobs not yet read and jobs read but not acknowledged (in flight or held by a dead worker)."""
        try:
            groups = {g["name"].decode(): g for g in self.client.xinfo_groups(self.stream)}
        except redis.ResponseError:
            return {"waiting": 0, "pending": 0}
        g = groups.get(self.group)
        if g is None:
            return {"waiting": int(self.client.xlen(self.stream)), "pending": 0}
        return {"waiting": int(g.get("lag") or 0), "pending": int(g["pending"])}

    # ------------------------------------------------------------ run state
    def state_key(self, campaign_id: str) -> str:
        return f"{PREFIX}:{{{campaign_id}}}:state"

    def set_state(self, campaign_id: str, state: str) -> None:
        self.client.set(self.state_key(campaign_id), state)

    def state(self, campaign_id: str) -> str | None:
        raw = self.client.get(self.state_key(campaign_id))
        return raw.decode() if raw is not None else None

    # ------------------------------------------------------------ pacing
    def wait_token(self, channel: str, rate: float, deadline: float | None = None) -> bool:
        """Block until the channel's bucket gives a token (burst = 1 s of rate). False if past the deadline."""
        if rate <= 0:
            return True
        burst = max(1.0, rate)
        while True:
            wait_ms = int(self._bucket(keys=[f"{PREFIX}:pace:{channel}"], args=[rate, burst]))
            if wait_ms <= 0:
                return True
            if deadline is not None and time.monotonic() + wait_ms / 1000 > deadline:
                return False
            time.sleep(min(wait_ms / 1000, 0.25))

    def acquire_slot(self, member: str, limit: int, lease: float) -> bool:
        return bool(self._semaphore(keys=[f"{PREFIX}:slots:voice"], args=[member, limit, lease]))

    def release_slot(self, member: str) -> None:
        self.client.zrem(f"{PREFIX}:slots:voice", member)

    def slots_in_use(self) -> int:
        now = time.time()
        return int(self.client.zcount(f"{PREFIX}:slots:voice", now, "+inf"))

    # ------------------------------------------------------------ workers
    def heartbeat(self, worker: str, ttl: float) -> None:
        self.client.set(f"{PREFIX}:worker:{worker}", str(time.time()), px=int(ttl * 1000))

    def alive(self, worker: str) -> bool:
        return self.client.exists(f"{PREFIX}:worker:{worker}") == 1

    def workers(self) -> list[str]:
        return [k.decode().rsplit(":", 1)[-1] for k in self.client.scan_iter(f"{PREFIX}:worker:*")]

    def stash_reservation(self, key: str, reservation_id: str, ttl: int = 86400) -> None:
        """A reservation taken but not yet tied to a started attempt: released by whoever handles the job next
        if the worker dies in between (it would otherwise count against the subscriber's caps for a day)."""
        self.client.set(f"{PREFIX}:resv:{key}", reservation_id, ex=ttl)

    def stashed_reservation(self, key: str) -> str | None:
        raw = self.client.get(f"{PREFIX}:resv:{key}")
        return raw.decode() if raw is not None else None

    def clear_reservation(self, key: str) -> None:
        self.client.delete(f"{PREFIX}:resv:{key}")

    # ------------------------------------------------------------ progress (for status and /metrics)
    def count(self, campaign_id: str, step_name: str, channel: str, *what: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        for w in what:
            pipe.hincrby(f"{PREFIX}:{{{campaign_id}}}:progress", f"{step_name}|{channel}|{w}", 1)
        pipe.execute()

    def counts(self, campaign_id: str) -> dict[tuple[str, str, str], int]:
        raw = self.client.hgetall(f"{PREFIX}:{{{campaign_id}}}:progress")
        out = {}
        for field, value in raw.items():
            step, channel, what = field.decode().split("|", 2)
            out[(step, channel, what)] = int(value)
        return out

    def contact_started(self, campaign_id: str, at: float, clear_key: str | None = None) -> None:
        """One round trip: when the campaign last started a contact, and the reservation stash is no longer needed
        (the started attempt now carries the reservation id)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.set(f"{PREFIX}:{{{campaign_id}}}:last_contact", repr(at))
        if clear_key is not None:
            pipe.delete(f"{PREFIX}:resv:{clear_key}")
        pipe.execute()

    def state_and_stash(self, campaign_id: str, key: str) -> tuple[str | None, str | None]:
        state, stash = self.client.mget(self.state_key(campaign_id), f"{PREFIX}:resv:{key}")
        return (state.decode() if state is not None else None, stash.decode() if stash is not None else None)
