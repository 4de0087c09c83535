"""Per-number sliding-window limits in Redis, checked and taken in one Lua script (workers cannot race past).

Each window is a sorted set of send ids scored by time; a send is admitted only when every window has room,
and then recorded in all of them. `give_back` removes a send that did not happen (Twilio refused it)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import redis

# KEYS: one sorted set per window. ARGV: now, member, then (window_seconds, cap) per key.
# Returns {} when admitted, else {index of the first full window (1-based), seconds until it has room}.
_TAKE = """
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local window, cap = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= cap then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    return {i, tostring(tonumber(oldest[2]) + window - now)}
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[2])
  redis.call('EXPIRE', KEYS[i], math.ceil(tonumber(ARGV[1 + 2 * i])) + 1)
end
return {}
"""


@dataclass(frozen=True)
class Limit:
    name: str  # e.g. "minute", part of the key and of the refusal reason
    window: float  # seconds
    cap: int


@dataclass(frozen=True)
class Admission:
    admitted: bool
    token: str
    blocked_by: str | None = None
    retry_after: float | None = None


class RateLimiter:
    def __init__(self, client: redis.Redis, limits: Sequence[Limit], prefix: str) -> None:
        self.client, self.limits, self.prefix = client, tuple(limits), prefix
        self._take = client.register_script(_TAKE)

    def _keys(self, number: str) -> list[str]:
        return [f"{self.prefix}:{{{number}}}:{limit.name}" for limit in self.limits]

    def take(self, number: str, now: float | None = None) -> Admission:
        token = uuid.uuid4().hex
        args: list[float | str | int] = [now if now is not None else time.time(), token]
        for limit in self.limits:
            args += [limit.window, limit.cap]
        reply = self._take(keys=self._keys(number), args=args)
        if not reply:
            return Admission(True, token)
        return Admission(False, token, self.limits[int(reply[0]) - 1].name, max(0.0, float(reply[1])))

    def give_back(self, number: str, token: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key in self._keys(number):
            pipe.zrem(key, token)
        pipe.execute()
