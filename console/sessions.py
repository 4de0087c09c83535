"""Server-side sessions in Redis (the stack always has it): the cookie holds only a random token.

Redis keys are the SHA-256 of the token, so a leaked key dump cannot be replayed as a cookie. Each session
carries its CSRF token (synchronizer pattern). Logging in replaces the anonymous session (no fixation);
sessions expire after 30 idle minutes and 12 hours in all. Unmask grants are per session, conversation and
15 minutes, so an unmasked transcript masks itself again."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

import redis

PREFIX = "duebot:console:"
IDLE = 30 * 60
ABSOLUTE = 12 * 3600
ANONYMOUS_IDLE = 10 * 60
UNMASK_SECONDS = 15 * 60
COOKIE = "duebot_console"


def _key(token: str) -> str:
    return PREFIX + "session:" + hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    token: str
    username: str | None  # None: not logged in (the login form's CSRF token still lives here)
    csrf: str
    created: float

    @property
    def sid(self) -> str:
        return hashlib.sha256(self.token.encode()).hexdigest()[:32]

    def csrf_ok(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf, sent or "")


class Sessions:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def new(self, username: str | None = None) -> Session:
        session = Session(secrets.token_urlsafe(32), username, secrets.token_urlsafe(32), time.time())
        key = _key(session.token)
        self.r.hset(key, mapping={"username": username or "", "csrf": session.csrf, "created": session.created})
        self.r.expire(key, IDLE if username else ANONYMOUS_IDLE)
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        key = _key(token)
        data = self.r.hgetall(key)
        if not data:
            return None
        created = float(data[b"created"])
        username = data[b"username"].decode() or None
        if time.time() - created > ABSOLUTE:
            self.r.delete(key)
            return None
        self.r.expire(key, IDLE if username else ANONYMOUS_IDLE)  # sliding idle timeout
        return Session(token, username, data[b"csrf"].decode(), created)

    def end(self, session: Session) -> None:
        self.r.delete(_key(session.token))
        for key in self.r.scan_iter(f"{PREFIX}unmask:{session.sid}:*"):
            self.r.delete(key)

    def end_user(self, username: str) -> int:
        """Log a user out everywhere (disabled, role or password changed)."""
        ended = 0
        for key in self.r.scan_iter(PREFIX + "session:*"):
            if self.r.hget(key, "username") == username.encode():
                ended += self.r.delete(key)
        return ended

    # ---- unmask grants
    def grant_unmask(self, session: Session, conversation_id: str, reason: str = "",
                     record: int | None = None) -> None:
        """`reason` and `record` (the index of the durable unmask access record) travel with the grant, so what
        the grant allows (an evidence bundle) can cite them."""
        value = json.dumps({"reason": reason, "record": record})
        self.r.set(f"{PREFIX}unmask:{session.sid}:{conversation_id}", value, ex=UNMASK_SECONDS)

    def unmasked(self, session: Session, conversation_id: str) -> bool:
        return self.r.exists(f"{PREFIX}unmask:{session.sid}:{conversation_id}") == 1

    def unmask_grant(self, session: Session, conversation_id: str) -> dict | None:
        """{"reason": …, "record": …} of a running unmask grant, or None."""
        raw = self.r.get(f"{PREFIX}unmask:{session.sid}:{conversation_id}")
        if raw is None:
            return None
        try:
            grant = json.loads(raw)
        except ValueError:
            return None
        return grant if isinstance(grant, dict) else None

    def revoke_unmask(self, session: Session, conversation_id: str) -> None:
        self.r.delete(f"{PREFIX}unmask:{session.sid}:{conversation_id}")

    def first_time(self, session: Session, what: str, ttl: int = IDLE) -> bool:
        """True once per session for `what` (e.g. one access record per audio clip, not per range request)."""
        return bool(self.r.set(f"{PREFIX}once:{session.sid}:{what}", "1", nx=True, ex=ttl))
