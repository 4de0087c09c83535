"""The console's services (built once per process from the environment) and its request dependencies."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates

from duebot.accounts.models import Account
from duebot.accounts.store import AccountStore
from duebot.campaigns.service import Campaigns, redis_client
from duebot.config import Settings
from duebot.console.evidence_view import Catalog, InboxWriter, LogReader
from duebot.console.masking import Known, Masker
from duebot.console.roles import VISIBLE_BY_DEFAULT, Perm, Role, allowed
from duebot.console.sessions import COOKIE, Session, Sessions
from duebot.console.users import User, Users
from duebot.evidence.inbox import EvidenceInbox

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
# ISO instants as people read them: "2026-11-24 14:45:20Z" (no microseconds)
templates.env.filters["instant"] = lambda iso: (str(iso)[:19].replace("T", " ") + "Z") if iso else ""


@dataclass
class Console:
    store: AccountStore
    client: redis.Redis
    data_dir: Path
    secure_cookies: bool

    def __post_init__(self) -> None:
        self.users = Users(self.store)
        self.sessions = Sessions(self.client)
        self.campaigns = Campaigns(self.store, self.client)
        self.reader = LogReader(self.data_dir / "evidence")
        self.catalog = Catalog(self.reader, self._account_from_id)
        self.writer = InboxWriter(self.reader, EvidenceInbox(self.client))

    @classmethod
    def from_env(cls) -> Console:
        settings = Settings.from_env()
        public = os.environ.get("DUEBOT_PUBLIC_URL", "")
        return cls(AccountStore(), redis_client(), settings.data_dir, public.startswith("https://"))

    def _account_from_id(self, conversation_id: str) -> str | None:
        """Channel conversation ids are "<channel>:<account id>" (e.g. sms:A-1)."""
        candidate = conversation_id.rsplit(":", 1)[-1]
        return candidate if candidate and self.store.get_account(candidate) is not None else None

    def account(self, account_id: str | None) -> Account | None:
        return self.store.get_account(account_id) if account_id else None


_console: Console | None = None


def set_console(console: Console | None) -> None:
    """Tests wire their own store, Redis and data directory here; by default all come from the environment."""
    global _console
    _console = console


def get_console() -> Console:
    global _console
    if _console is None:
        _console = Console.from_env()
    return _console


class NotLoggedIn(Exception):
    """Raised by page dependencies; the app turns it into a redirect to the login page."""


@dataclass
class Ctx:
    """Who is asking, with the session that carries the CSRF token."""

    console: Console
    session: Session
    user: User
    request: Request

    @property
    def role(self) -> Role:
        return self.user.role

    def can(self, perm: Perm) -> bool:
        return allowed(self.role, perm)

    def masker(self, account: Any = None, unmasked: bool = False) -> Masker:
        visible = frozenset({"name", "id_number", "phone", "amount"}) if unmasked else VISIBLE_BY_DEFAULT[self.role]
        return Masker(visible, Known.of_account(account))

    def render(self, template: str, status_code: int = 200, **values: Any) -> Any:
        return templates.TemplateResponse(self.request, template, {"ctx": self, "Perm": Perm, **values},
                                          status_code=status_code)


async def current(request: Request, console: Console = Depends(get_console)) -> Ctx:  # noqa: B008 - FastAPI idiom
    session = console.sessions.get(request.cookies.get(COOKIE))
    if session is None or session.username is None:
        raise NotLoggedIn()
    user = console.users.get(session.username)
    if user is None or not user.active:  # disabled or deleted since login: the session ends now
        console.sessions.end(session)
        raise NotLoggedIn()
    ctx = Ctx(console, session, user, request)
    if request.method not in ("GET", "HEAD"):
        await check_csrf(request, session)
    return ctx


async def check_csrf(request: Request, session: Session) -> None:
    """Every state change carries the session's token (form field or X-CSRF-Token header), from our origin."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.split("://", 1)[-1] != request.headers.get("host"):
        raise HTTPException(403, "cross-site request refused")
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette caches it: the endpoint's Form() parameters read the same
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not session.csrf_ok(sent):
        raise HTTPException(403, "missing or wrong CSRF token; reload the page and try again")


def require(perm: Perm):  # noqa: ANN201 - returns a FastAPI dependency
    def dependency(ctx: Ctx = Depends(current)) -> Ctx:  # noqa: B008
        if not ctx.can(perm):
            raise HTTPException(403, f"your role ({ctx.role.value}) may not {perm.value}")
        return ctx

    return dependency
