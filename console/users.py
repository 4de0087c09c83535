"""Console users in the account store's SQL database (table `console_users`, migration 0003).

Passwords are Argon2id hashes (argon2-cffi defaults, rehashed when the parameters change).

Lock-out is per user name AND client address (table `console_login_throttle`, migration 0004): five wrong
passwords for one name from one address within 15 minutes lock that name at that address for 15 minutes, so
nobody can lock a user out from elsewhere; and 30 failures from one address (whatever the names) lock that
address, so one address cannot spray a password over every name. The counters are kept for any name typed,
whether a user of that name exists or not, so every answer — wrong password, locked, how long — is the same
for both. They live in SQL beside the users: they survive restarts and hold across every web process."""

from __future__ import annotations

import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, Float, Integer, String, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from duebot.accounts.models import Base
from duebot.accounts.store import AccountStore
from duebot.console.i18n import Msg
from duebot.console.roles import Role

MAX_FAILURES = 5  # per user name and address
ADDRESS_MAX_FAILURES = 30  # per address, whatever the names
WINDOW_SECONDS = 15 * 60  # failures older than this are forgotten
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
    # unused since migration 0004: lock-outs are per name and address, in console_login_throttle
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[float | None] = mapped_column(Float)
    last_login_at: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)


class LoginThrottle(Base):
    """Failed logins of one subject ("user:<name>" for a name at this address, "address" for the address
    itself) from one client address."""

    __tablename__ = "console_login_throttle"

    subject: Mapped[str] = mapped_column(String(80), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[float] = mapped_column(Float)
    locked_until: Mapped[float | None] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)  # when the row may be forgotten


def _subject(username: str) -> str:
    return "user:" + username[:64]


ADDRESS = "address"


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
    def of(cls, row: ConsoleUser, locked_until: float | None = None, failures: int = 0) -> User:
        """`locked_until`: the latest lock of this name at any address (for the admin's list)."""
        return cls(row.username, Role(row.role), row.active, locked_until, failures, row.last_login_at)


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    error: str | None  # shown to the person logging in: never says whether the name exists


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(Msg("password must have at least {n} characters", n=MIN_PASSWORD))


class Users:
    def __init__(self, store: AccountStore, clock=time.time) -> None:  # noqa: ANN001 - a () -> float
        self.store, self.clock = store, clock

    def add(self, username: str, role: str, password: str) -> User:
        username = username.strip()
        if not username or len(username) > 64 or not username.replace("_", "").replace(".", "").isalnum():
            raise UserError(Msg("username: 1-64 letters, digits, '.' or '_'"))
        try:
            role_ = Role(role)
        except ValueError as exc:
            raise UserError(Msg("role must be one of {roles}", roles=", ".join(r.value for r in Role))) from exc
        _check_password(password)
        with self.store.session() as s:
            if s.get(ConsoleUser, username) is not None:
                raise UserError(Msg("user {name!r} exists", name=username))
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
                row.role, row.password_hash, row.active = Role(role).value, _hasher.hash(password), True
                self._clear_locks(s, username)
                return User.of(row)
        return self.add(username, role, password)

    def _locks(self, s, usernames: list[str] | None = None) -> dict[str, tuple[float | None, int]]:  # noqa: ANN001
        """name -> (latest lock still running at any address, failures counted now) for names with either."""
        now = self.clock()
        query = (select(LoginThrottle.subject, func.max(LoginThrottle.locked_until), func.sum(LoginThrottle.failures))
                 .where(LoginThrottle.subject.like("user:%"), LoginThrottle.expires_at > now)
                 .group_by(LoginThrottle.subject))
        if usernames is not None:
            query = query.where(LoginThrottle.subject.in_([_subject(u) for u in usernames]))
        out = {}
        for subject, locked, failures in s.execute(query):
            out[subject.removeprefix("user:")] = (locked if locked and locked > now else None, int(failures or 0))
        return out

    def get(self, username: str) -> User | None:
        with self.store.session() as s:
            row = s.get(ConsoleUser, username)
            return User.of(row, *self._locks(s, [username]).get(username, (None, 0))) if row else None

    def all(self) -> list[User]:
        with self.store.session() as s:
            locks = self._locks(s)
            return [User.of(r, *locks.get(r.username, (None, 0)))
                    for r in s.scalars(select(ConsoleUser).order_by(ConsoleUser.username))]

    def set_password(self, username: str, password: str) -> None:
        _check_password(password)
        with self.store.session() as s:
            row = self._row(s, username)
            row.password_hash = _hasher.hash(password)
            self._clear_locks(s, username)

    def set_active(self, username: str, active: bool) -> None:
        """Disabling the last active admin is refused (the console would have nobody to manage it): add or enable
        another admin first."""
        with self.store.session() as s:
            row = self._row(s, username)
            if not active and row.active and self._last_active_admin(s, row):
                raise UserError(Msg("{name} is the last active admin: add or enable another admin first",
                                    name=username))
            row.active = active

    def last_active_admin(self, username: str) -> bool:
        """True when `username` is an active admin and no other admin is active."""
        with self.store.session() as s:
            row = s.get(ConsoleUser, username)
            return row is not None and row.active and self._last_active_admin(s, row)

    @staticmethod
    def _last_active_admin(s, row: ConsoleUser) -> bool:  # noqa: ANN001 - a Session
        if row.role != Role.ADMIN.value:
            return False
        others = s.scalar(select(func.count()).select_from(ConsoleUser).where(
            ConsoleUser.role == Role.ADMIN.value, ConsoleUser.active.is_(True), ConsoleUser.username != row.username))
        return not others

    def unlock(self, username: str) -> None:
        """Clear the lock-outs of this user name at every address."""
        with self.store.session() as s:
            self._row(s, username)
            self._clear_locks(s, username)

    @staticmethod
    def _clear_locks(s, username: str) -> None:  # noqa: ANN001 - a Session
        s.execute(delete(LoginThrottle).where(LoginThrottle.subject == _subject(username)))

    @staticmethod
    def _row(s, username: str) -> ConsoleUser:  # noqa: ANN001 - a Session
        row = s.get(ConsoleUser, username)
        if row is None:
            raise UserError(Msg("no user {name!r}", name=username))
        return row

    def login(self, username: str, password: str, address: str = "unknown") -> LoginResult:
        """Check a login from client `address`. Every answer depends only on what was typed and on the counters
        of this name and address: never on whether the user exists (a disabled user is named only to whoever
        gives its right password)."""
        try:
            return self._login(username, password, address)
        except IntegrityError:  # two failures at once made the same counter row: count this one again
            return self._login(username, password, address)

    def _login(self, username: str, password: str, address: str) -> LoginResult:
        now = self.clock()
        username, address = username.strip(), (address or "unknown")[:64]
        with self.store.session() as s:
            s.execute(delete(LoginThrottle).where(LoginThrottle.expires_at <= now))  # forget what has expired
            pair = s.get(LoginThrottle, (_subject(username), address))
            place = s.get(LoginThrottle, (ADDRESS, address))
            if place is not None and place.locked_until and place.locked_until > now:
                return LoginResult(None, Msg("Too many failed logins from your address: try again in {n} minute(s).",
                                             n=_minutes(place.locked_until - now)))
            if pair is not None and pair.locked_until and pair.locked_until > now:
                return LoginResult(None, Msg("Too many failed logins: this user name is locked for {n} more minute(s) "
                                             "from your address. An admin can unlock it.",
                                             n=_minutes(pair.locked_until - now)))
            row = s.get(ConsoleUser, username) if len(username) <= 64 else None
            if not _verify(row.password_hash if row is not None else _DUMMY, password) or row is None:
                pair = self._fail(s, pair, _subject(username), address, now, MAX_FAILURES)
                place = self._fail(s, place, ADDRESS, address, now, ADDRESS_MAX_FAILURES)
                if place.locked_until:
                    return LoginResult(None, Msg("Too many failed logins from your address: try again in {n} "
                                                 "minute(s).", n=LOCK_SECONDS // 60))
                if pair.locked_until:
                    return LoginResult(None, Msg("Too many failed logins: this user name is locked for {n} minutes "
                                                 "from your address.", n=LOCK_SECONDS // 60))
                return LoginResult(None, Msg("Wrong user name or password."))
            if pair is not None:
                s.delete(pair)  # a right password clears this name's count at this address (not the address's)
            if not row.active:
                return LoginResult(None, Msg("This user is disabled."))
            if _hasher.check_needs_rehash(row.password_hash):
                row.password_hash = _hasher.hash(password)
            row.last_login_at = now
            return LoginResult(User.of(row), None)

    @staticmethod
    def _fail(s, counter: LoginThrottle | None, subject: str, address: str, now: float,  # noqa: ANN001
              limit: int) -> LoginThrottle:
        if counter is None:
            counter = LoginThrottle(subject=subject, address=address, failures=0, first_at=now)
            s.add(counter)
        elif now - counter.first_at > WINDOW_SECONDS or (counter.locked_until and counter.locked_until <= now):
            counter.failures, counter.first_at, counter.locked_until = 0, now, None
        counter.failures += 1
        counter.expires_at = now + WINDOW_SECONDS
        if counter.failures >= limit:
            counter.failures, counter.locked_until = 0, now + LOCK_SECONDS
            counter.expires_at = counter.locked_until
        return counter


def _minutes(seconds: float) -> int:
    return int(seconds // 60) + 1


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
