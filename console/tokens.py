"""API tokens for the operator API (`/campaigns/…`, `/gate/check`, `/metrics`): `duebot console token …`.

A token belongs to a console user and acts with that user's role: the role matrix (console/roles.py) decides
what it may do, and disabling the user (or changing the role) changes every token of it at once. The token is
32 random bytes shown once at creation; the database keeps only its SHA-256 (table `console_api_tokens`, Alembic
migration 0004). A plain hash is enough — no salt, no slow hash — because the token is high-entropy: there is
nothing to guess, and a leaked table cannot be replayed as tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Float, ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column

from duebot.accounts.models import Base
from duebot.accounts.store import AccountStore
from duebot.console.users import ConsoleUser, User, UserError, Users

PREFIX = "dbt_"  # recognisable in a leaked config file or a secret scanner's rules
LABEL_MAX = 100
TOUCH_EVERY = 60.0  # seconds: last_used_at is written at most once a minute per token


class ConsoleApiToken(Base):
    __tablename__ = "console_api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), ForeignKey("console_users.username", ondelete="CASCADE"),
                                          index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    label: Mapped[str] = mapped_column(String(LABEL_MAX))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    id: str
    username: str
    label: str
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    revoked_at: float | None

    @classmethod
    def of(cls, row: ConsoleApiToken) -> TokenInfo:
        return cls(row.id, row.username, row.label, row.created_at, row.expires_at, row.last_used_at,
                   row.revoked_at)

    def state(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class Created:
    info: TokenInfo
    token: str  # the only time it exists outside the caller's hands


@dataclass(frozen=True)
class Caller:
    """Who an API request acts as: the token and the user (with the role) it belongs to."""

    token_id: str
    user: User


class ApiTokens:
    def __init__(self, store: AccountStore, clock=time.time) -> None:  # noqa: ANN001 - a () -> float
        self.store, self.clock = store, clock
        self.users = Users(store, clock)

    def create(self, username: str, label: str = "", days: float | None = None) -> Created:
        user = self.users.get(username)
        if user is None:
            raise UserError(f"no user {username!r}")
        if not user.active:
            raise UserError(f"user {username!r} is disabled")
        if days is not None and days <= 0:
            raise UserError("--days must be positive")
        token = PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        row = ConsoleApiToken(id=secrets.token_hex(6), username=username, token_sha256=digest(token),
                              label=label.strip()[:LABEL_MAX], created_at=now,
                              expires_at=now + days * 86400 if days else None)
        with self.store.session() as s:
            s.add(row)
            return Created(TokenInfo.of(row), token)

    def all(self, username: str | None = None) -> list[TokenInfo]:
        query = select(ConsoleApiToken).order_by(ConsoleApiToken.created_at)
        if username is not None:
            query = query.where(ConsoleApiToken.username == username)
        with self.store.session() as s:
            return [TokenInfo.of(r) for r in s.scalars(query)]

    def revoke(self, token_id: str) -> TokenInfo:
        with self.store.session() as s:
            row = s.get(ConsoleApiToken, token_id)
            if row is None:
                raise UserError(f"no token {token_id!r}")
            if row.revoked_at is None:
                row.revoked_at = self.clock()
            return TokenInfo.of(row)

    def verify(self, token: str | None) -> Caller | None:
        """The caller a presented token stands for, or None: unknown, revoked, expired, or its user disabled."""
        if not token or not token.startswith(PREFIX) or len(token) > 200:
            return None
        now = self.clock()
        with self.store.session() as s:
            row = s.scalars(select(ConsoleApiToken).where(ConsoleApiToken.token_sha256 == digest(token))).first()
            if row is None or TokenInfo.of(row).state(now) != "active":
                return None
            user = s.get(ConsoleUser, row.username)
            if user is None or not user.active:
                return None
            if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
                row.last_used_at = now
            return Caller(row.id, User.of(user))
