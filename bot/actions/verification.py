"""An identity check that cannot be rewound: failures counted per account outside the conversation, and a
verification that lapses with the session.

A Rasa tracker is the conversation's own state: a reset, a new sender id or another channel starts it afresh,
so nothing that limits guessing may live there. The failures of the identity check are counted per account in
Redis (`duebot:verification:failures:<account id>`): after the strategy's `verification.max_attempts` failures
the check is closed to every conversation and channel of the account for DUEBOT_VERIFICATION_COOLDOWN seconds
(from the last failure), and the bot offers a person meanwhile; a success clears the count. An attempt is
counted before its answer is compared (one atomic step, `Attempts.take`), so attempts sent at the same moment
from several conversations get no more tries than the limit, and an attempt made while the check is closed is
neither compared nor counted (nobody can keep an account closed longer by trying).

`verified` is the conversation's (a slot) and never outlives its session: it lapses after
DUEBOT_VERIFICATION_IDLE seconds without a message (`lapsed`, checked before every action) and is never carried
into a new Rasa session (action_session_start, bot/actions/conversation.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis

from duebot import clients

KEY = "duebot:verification:failures:"

# KEYS[1] the account's failure count; ARGV[1] the limit, ARGV[2] the cool-down in seconds.
# Returns {admitted (0|1), failures counting this attempt, seconds until the check opens again when closed}.
_TAKE = """
local failures = tonumber(redis.call('GET', KEYS[1]) or '0')
local limit, cooldown = tonumber(ARGV[1]), tonumber(ARGV[2])
if failures >= limit then
  local left = redis.call('TTL', KEYS[1])
  if left < 0 then
    redis.call('EXPIRE', KEYS[1], cooldown)
    left = cooldown
  end
  return {0, failures, left}
end
failures = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], cooldown)
return {1, failures, cooldown}
"""


@dataclass(frozen=True)
class Attempt:
    admitted: bool  # False: the check is closed for this account; the answer must not be compared
    failures: int  # the account's failures, this attempt included should it fail
    retry_after: int  # seconds until the check opens again once closed (the cool-down after a last failure)


class Attempts:
    """The identity-check attempts of each account, in Redis."""

    def __init__(self, client: redis.Redis, limit: int, cooldown: int, prefix: str = KEY) -> None:
        if limit < 1 or cooldown < 1:
            raise ValueError("the limit and the cool-down must be at least 1")
        self.client, self.limit, self.cooldown, self.prefix = client, limit, cooldown, prefix
        self._take = client.register_script(_TAKE)

    def take(self, account_id: str) -> Attempt:
        """Count one attempt before its answer is compared; not admitted (and not counted) while closed."""
        admitted, failures, left = self._take(keys=[self.prefix + account_id], args=[self.limit, self.cooldown])
        return Attempt(bool(admitted), int(failures), int(left))

    def closed_for(self, account_id: str) -> int:
        """Seconds until the account's check opens again; 0 while it is open."""
        key = self.prefix + account_id
        with self.client.pipeline() as pipe:
            failures, left = pipe.get(key).ttl(key).execute()
        if failures is None or int(failures) < self.limit:
            return 0
        return int(left) if left and left > 0 else self.cooldown

    def succeeded(self, account_id: str) -> None:
        self.client.delete(self.prefix + account_id)


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return clients.redis_client()


def attempts(limit: int, cooldown: int) -> Attempts:
    """The action server's counter (Redis from duebot/clients.py)."""
    return Attempts(_redis(), limit, cooldown)


def quiet_before_latest_message(events: Iterable[Mapping[str, Any]]) -> float:
    """Seconds the conversation was silent before the subscriber's latest message: from the last thing said
    before it, by either side, to it (0 when nothing was said before it)."""
    said = [e for e in events if e.get("event") in ("user", "bot") and e.get("timestamp") is not None]
    for index in range(len(said) - 1, -1, -1):
        if said[index]["event"] == "user":
            return float(said[index]["timestamp"]) - float(said[index - 1]["timestamp"]) if index else 0.0
    return 0.0


def lapsed(events: Iterable[Mapping[str, Any]], idle: float) -> bool:
    """Whether a verification made in this conversation has lapsed: the subscriber's latest message came after
    more than `idle` seconds of silence."""
    return quiet_before_latest_message(events) > idle


def wait_text(minutes_format: Mapping[str, str], seconds: int) -> str:
    """A wait as the conversation's language says it, in whole minutes rounded up ("1 minute", "30 minutes")."""
    minutes = max(1, math.ceil(seconds / 60))
    return (minutes_format["one"] if minutes == 1 else minutes_format["other"]).format(n=minutes)
