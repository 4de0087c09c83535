"""The console's services (built once per process from the environment) and its request dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates

from duebot import clients
from duebot.accounts.models import Account
from duebot.accounts.store import AccountStore
from duebot.campaigns.service import Campaigns
from duebot.console import i18n
from duebot.console.evidence_view import Catalog, InboxWriter, LogReader
from duebot.console.masking import Known, Masker
from duebot.console.roles import VISIBLE_BY_DEFAULT, Perm, Role, allowed
from duebot.console.sessions import COOKIE, Session, Sessions
from duebot.console.users import User, Users
from duebot.evidence.inbox import EvidenceInbox
from duebot.settings import load_settings

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"), context_processors=[i18n.context])
i18n.install(templates.env)  # zh-CN and en: console/i18n.py
# ISO instants as people read them: "2026-11-24 14:45:20Z" (no microseconds)
templates.env.filters["instant"] = lambda iso: (str(iso)[:19].replace("T", " ") + "Z") if iso else ""


@dataclass
class Console:
    store: AccountStore
    client: redis.Redis
    data_dir: Path
    secure_cookies: bool
    # The origin (scheme://host[:port]) browsers reach the console at, from DUEBOT_PUBLIC_URL: state changes must
    # come from it. None when DUEBOT_PUBLIC_URL is not set: the service is reached directly, so the browser's
    # Origin must name the Host it reached.
    public_origin: str | None = None

    def __post_init__(self) -> None:
        self.users = Users(self.store)
        self.sessions = Sessions(self.client)
        self.campaigns = Campaigns(self.store, self.client)
        self.reader = LogReader(self.data_dir / "evidence")
        self.catalog = Catalog(self.reader, self._account_from_id)
        self.writer = InboxWriter(self.reader, EvidenceInbox(self.client))

    @classmethod
    def from_env(cls) -> Console:
        settings = load_settings()
        configured = "public_url" in settings.model_fields_set
        return cls(clients.account_store(settings), clients.redis_client(settings), settings.data_dir,
                   settings.public_url.startswith("https://"), origin_of(settings.public_url) if configured else None)

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
        await check_csrf(request, session, console)
    return ctx


def origin_of(url: str) -> str:
    """scheme://host[:port] as a browser sends it in Origin: lower case, no default port, no path."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    port = parts.port
    return f"{scheme}://{host}" + (f":{port}" if port and port != {"http": 80, "https": 443}.get(scheme) else "")


def client_address(request: Request) -> str:
    """The address lock-outs count per. Behind a reverse proxy this is the proxy's, unless uvicorn trusts it to
    say who the client is (its --forwarded-allow-ips / FORWARDED_ALLOW_IPS; 127.0.0.1 by default)."""
    return request.client.host if request.client else "unknown"


async def check_csrf(request: Request, session: Session, console: Console) -> None:
    """Every state change carries the session's token (form field or X-CSRF-Token header), and when the browser
    says where the request comes from (Origin), it must be the console's own origin: DUEBOT_PUBLIC_URL's when it
    is set (so a proxy may rewrite Host), else the Host the browser reached. A browser sends `Origin: null` for
    a request from an opaque origin (a sandboxed frame, a data: URL): refused too."""
    origin = request.headers.get("origin")
    if origin is not None:
        expected = console.public_origin
        if expected is not None:
            ours = origin.strip().lower() == expected
        else:
            ours = origin != "null" and origin.split("://", 1)[-1] == request.headers.get("host")
        if not ours:
            raise HTTPException(403, i18n.Msg("cross-site request refused"))
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette caches it: the endpoint's Form() parameters read the same
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not session.csrf_ok(sent):
        raise HTTPException(403, i18n.Msg("missing or wrong CSRF token; reload the page and try again"))


def require(perm: Perm):  # noqa: ANN201 - returns a FastAPI dependency
    def dependency(ctx: Ctx = Depends(current)) -> Ctx:  # noqa: B008
        if not ctx.can(perm):
            raise HTTPException(403, i18n.Msg("your role ({role}) may not {perm}", role=i18n.Msg(ctx.role.value),
                                              perm=i18n.Msg(perm.value)))
        return ctx

    return dependency
