"""Console users in the account store's SQL database (table `console_users`, migration 0003).

Passwords are Argon2id hashes (argon2-cffi defaults, rehashed when the parameters change). Five wrong passwords
lock the user for 15 minutes; the lock lives in the same row, so it survives restarts and holds across every
web process (a Redis counter would be lost with Redis and needs a second source of truth)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, Float, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from duebot.accounts.models import Base
from duebot.accounts.store import AccountStore
from duebot.console.roles import Role

MAX_FAILURES = 5
LOCK_SECONDS = 15 * 60
MIN_PASSWORD = 10
_hasher = PasswordHasher()
# verified against when the user does not exist, so an unknown name costs the same time as a wrong password
_DUMMY = _hasher.hash("not a password of anyone")


class ConsoleUser(Base):
    __tablename__ = "console_users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[float | None] = mapped_column(Float)
    last_login_at: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)


class UserError(ValueError):
    pass


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    active: bool
    locked_until: float | None
    failed_logins: int
    last_login_at: float | None

    @classmethod
    def of(cls, row: ConsoleUser) -> User:
        return cls(row.username, Role(row.role), row.active, row.locked_until, row.failed_logins, row.last_login_at)


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    error: str | None  # shown to the person logging in: never says whether the name exists


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password must have at least {MIN_PASSWORD} characters")


class Users:
    def __init__(self, store: AccountStore, clock=time.time) -> None:  # noqa: ANN001 - a () -> float
        self.store, self.clock = store, clock

    def add(self, username: str, role: str, password: str) -> User:
        username = username.strip()
        if not username or len(username) > 64 or not username.replace("_", "").replace(".", "").isalnum():
            raise UserError("username: 1-64 letters, digits, '.' or '_'")
        try:
            role_ = Role(role)
        except ValueError as exc:
            raise UserError(f"role must be one of {', '.join(r.value for r in Role)}") from exc
        _check_password(password)
        with self.store.session() as s:
            if s.get(ConsoleUser, username) is not None:
                raise UserError(f"user {username!r} exists")
            row = ConsoleUser(username=username, role=role_.value, password_hash=_hasher.hash(password),
                              active=True, failed_logins=0, created_at=self.clock())
            s.add(row)
            return User.of(row)

    def ensure(self, username: str, role: str, password: str) -> User:
        """Create the user, or reset its role and password (the demo's users on every run)."""
        with self.store.session() as s:
            row = s.get(ConsoleUser, username)
            if row is not None:
                _check_password(password)
                row.role, row.password_hash = Role(role).value, _hasher.hash(password)
                row.active, row.failed_logins, row.locked_until = True, 0, None
                return User.of(row)
        return self.add(username, role, password)

    def get(self, username: str) -> User | None:
        with self.store.session() as s:
            row = s.get(ConsoleUser, username)
            return User.of(row) if row else None

    def all(self) -> list[User]:
        with self.store.session() as s:
            return [User.of(r) for r in s.scalars(select(ConsoleUser).order_by(ConsoleUser.username))]

    def set_password(self, username: str, password: str) -> None:
        _check_password(password)
        with self.store.session() as s:
            row = self._row(s, username)
            row.password_hash = _hasher.hash(password)
            row.failed_logins, row.locked_until = 0, None

    def set_active(self, username: str, active: bool) -> None:
        with self.store.session() as s:
            self._row(s, username).active = active

    def unlock(self, username: str) -> None:
        with self.store.session() as s:
            row = self._row(s, username)
            row.failed_logins, row.locked_until = 0, None

    @staticmethod
    def _row(s, username: str) -> ConsoleUser:  # noqa: ANN001 - a Session
        row = s.get(ConsoleUser, username)
        if row is None:
            raise UserError(f"no user {username!r}")
        return row

    def login(self, username: str, password: str) -> LoginResult:
        now = self.clock()
        refused = LoginResult(None, "Wrong user name or password.")
        with self.store.session() as s:
            row = s.get(ConsoleUser, username.strip())
            if row is None:
                _verify(_DUMMY, password)
                return refused
            if row.locked_until and row.locked_until > now:
                minutes = int((row.locked_until - now) // 60) + 1
                return LoginResult(None, f"Too many failed logins: this user is locked for {minutes} more "
                                         "minute(s). An admin can unlock it.")
            if not _verify(row.password_hash, password):
                row.failed_logins += 1
                if row.failed_logins >= MAX_FAILURES:
                    row.locked_until = now + LOCK_SECONDS
                    row.failed_logins = 0
                    return LoginResult(None, f"Too many failed logins: this user is locked for "
                                             f"{LOCK_SECONDS // 60} minutes.")
                return refused
            if not row.active:
                return LoginResult(None, "This user is disabled.")
            if _hasher.check_needs_rehash(row.password_hash):
                row.password_hash = _hasher.hash(password)
            row.failed_logins, row.locked_until, row.last_login_at = 0, None, now
            return LoginResult(User.of(row), None)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
