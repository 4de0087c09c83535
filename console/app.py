"""Mount the console on the duebot web service: routers, static files and its error pages."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from duebot.console import views_admin, views_auth, views_campaigns, views_kpis, views_qa
from duebot.console.context import HERE, NotLoggedIn, get_console, templates
from duebot.console.masking import console_logger
from duebot.console.sessions import COOKIE
from duebot.console.web_guard import SecurityHeaders
from duebot.settings import load_settings

PREFIX = "/console"


def install(app: FastAPI) -> None:
    console_logger()  # masking filter on the console's log lines before anything logs
    for module in (views_auth, views_campaigns, views_kpis, views_qa, views_admin):
        app.include_router(module.router, prefix=PREFIX)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(HERE / "static")), name="console-static")
    # CSP, frame-ancestors, Referrer-Policy, nosniff on every console response; HSTS when served over https
    app.add_middleware(SecurityHeaders, hsts=load_settings().public_url.startswith("https://"))

    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, _exc: NotLoggedIn) -> Response:
        if request.method in ("GET", "HEAD"):
            return RedirectResponse(f"{PREFIX}/login?next={request.url.path}", status_code=303)
        return Response("not logged in", status_code=401)

    @app.exception_handler(HTTPException)
    async def console_errors(request: Request, exc: HTTPException) -> Response:
        if not request.url.path.startswith(PREFIX):
            return await http_exception_handler(request, exc)
        user = None
        session = get_console().sessions.get(request.cookies.get(COOKIE))
        if session is not None and session.username:
            user = get_console().users.get(session.username)
        return templates.TemplateResponse(request, "error.html", {"status": exc.status_code, "detail": exc.detail,
                                                                  "user": user}, status_code=exc.status_code)
