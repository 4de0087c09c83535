"""Mount the console on the duebot web service: routers, static files and its error pages."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from duebot.console import views_admin, views_auth, views_campaigns, views_kpis, views_qa, views_work
from duebot.console.context import HERE, Ctx, NotLoggedIn, get_console, templates
from duebot.console.i18n import N_, Msg
from duebot.console.masking import console_logger
from duebot.console.roles import Perm
from duebot.console.sessions import COOKIE
from duebot.console.web_guard import SecurityHeaders
from duebot.settings import load_settings

PREFIX = "/console"
# Starlette's default details (a route that does not exist, a method it does not take), for the catalogue
_PHRASES = (N_("Not Found"), N_("Method Not Allowed"))


def install(app: FastAPI) -> None:
    console_logger()  # masking filter on the console's log lines before anything logs
    for module in (views_auth, views_campaigns, views_kpis, views_qa, views_work, views_admin):
        app.include_router(module.router, prefix=PREFIX)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(HERE / "static")), name="console-static")
    # CSP, frame-ancestors, Referrer-Policy, nosniff on every console response; HSTS when served over https
    app.add_middleware(SecurityHeaders, hsts=load_settings().public_url.startswith("https://"))

    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, _exc: NotLoggedIn) -> Response:
        if request.method in ("GET", "HEAD"):
            return RedirectResponse(f"{PREFIX}/login?next={request.url.path}", status_code=303)
        return Response("not logged in", status_code=401)

    # Starlette's HTTPException (FastAPI's derives from it): a console URL that matches no route gets the console's
    # 404 page too, not a JSON body
    @app.exception_handler(HTTPException)
    async def console_errors(request: Request, exc: HTTPException) -> Response:
        if not request.url.path.startswith(PREFIX):
            return await http_exception_handler(request, exc)
        # A logged-in user keeps the menu (and the language switch) on an error page: it extends base.html
        # with the same context as every other page.
        console = get_console()
        ctx = None
        session = console.sessions.get(request.cookies.get(COOKIE))
        if session is not None and session.username:
            user = console.users.get(session.username)
            if user is not None and user.active:
                ctx = Ctx(console, session, user, request)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if not isinstance(detail, Msg) and detail in _PHRASES:  # Starlette's own "Not Found" and friends
            detail = Msg(detail)
        return templates.TemplateResponse(request, "error.html", {"status": exc.status_code, "detail": detail,
                                                                  "ctx": ctx, "Perm": Perm,
                                                                  "csrf": session.csrf if session else None},
                                          status_code=exc.status_code, headers=getattr(exc, "headers", None))
