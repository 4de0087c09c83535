"""Log in, log out, the language switch, and the landing page of each role."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from duebot.console import i18n
from duebot.console.context import Console, Ctx, check_csrf, client_address, current, get_console, templates
from duebot.console.masking import console_logger
from duebot.console.roles import Role
from duebot.console.sessions import COOKIE, IDLE

router = APIRouter(tags=["console"], include_in_schema=False)
log = console_logger()
HOME = {Role.ADMIN: "/console/users", Role.CAMPAIGN_MANAGER: "/console/campaigns",
        Role.QA_REVIEWER: "/console/transcripts", Role.AUDITOR: "/console/transcripts",
        Role.MONITOR: "/console/campaigns", Role.AGENT: "/console/work"}


def _cookie(response: Response, console: Console, token: str) -> None:
    response.set_cookie(COOKIE, token, max_age=IDLE * 24, httponly=True, samesite="strict",
                        secure=console.secure_cookies, path="/console")


def _safe_next(target: str | None) -> str | None:
    # only our own pages: never an open redirect to another site
    return target if target and target.startswith("/console/") and not target.startswith("//") else None


@router.get("/login")
def login_page(request: Request, next: str | None = None,  # noqa: A002 - the conventional name
               console: Console = Depends(get_console)) -> Response:  # noqa: B008
    session = console.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        session = console.sessions.new()
    response = templates.TemplateResponse(request, "login.html", {"csrf": session.csrf, "next": _safe_next(next),
                                                                  "error": None, "user": None})
    _cookie(response, console, session.token)
    return response


@router.post("/login")
async def login(request: Request, username: Annotated[str, Form()], password: Annotated[str, Form()],
                next: Annotated[str | None, Form()] = None,  # noqa: A002
                console: Console = Depends(get_console)) -> Response:  # noqa: B008
    session = console.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise HTTPException(403, i18n.Msg("your login form expired; reload the page"))
    await check_csrf(request, session, console)
    address = client_address(request)
    result = console.users.login(username, password, address)
    if result.user is None:
        log.warning("console login refused for %r from %s: %s", username[:64], address, result.error)
        response = templates.TemplateResponse(request, "login.html", {"csrf": session.csrf, "next": _safe_next(next),
                                                                      "error": result.error, "user": None},
                                              status_code=401)
        return response
    console.sessions.end(session)  # a new token after login: a planted cookie never becomes a logged-in one
    fresh = console.sessions.new(result.user.username)
    log.info("console login: %s (%s)", result.user.username, result.user.role.value)
    response = RedirectResponse(_safe_next(next) or HOME[result.user.role], status_code=303)
    _cookie(response, console, fresh.token)
    return response


@router.post("/logout")
def logout(ctx: Ctx = Depends(current)) -> Response:  # noqa: B008
    ctx.console.sessions.end(ctx.session)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("/")
@router.get("")
def home(ctx: Ctx = Depends(current)) -> Response:  # noqa: B008
    return RedirectResponse(HOME[ctx.role], status_code=303)


@router.post("/lang")
async def choose_language(request: Request, lang: Annotated[str, Form()] = "",
                          next: Annotated[str | None, Form()] = None,  # noqa: A002
                          console: Console = Depends(get_console)) -> Response:  # noqa: B008
    """The menu's EN / 中文 switch: the choice is kept in a cookie (a year) and wins over the browser's languages.
    A form of the console's own pages (its session's CSRF token, logged in or on the login page)."""
    session = console.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise HTTPException(403, i18n.Msg("your login form expired; reload the page"))
    await check_csrf(request, session, console)
    chosen = i18n.normalise(lang)
    if chosen is None:
        raise HTTPException(422, i18n.Msg("language must be one of {languages}", languages=", ".join(i18n.LANGUAGES)))
    response = RedirectResponse(_safe_next(next) or "/console/", status_code=303)
    response.set_cookie(i18n.COOKIE, chosen, max_age=i18n.COOKIE_MAX_AGE, httponly=True, samesite="lax",
                        secure=console.secure_cookies, path="/console")
    return response
