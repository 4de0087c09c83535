"""Two ASGI middlewares of the web service: a cap on request bodies (all routes), and the browser security
headers of the console (plus HSTS and nosniff everywhere).

`BodyLimit` refuses with 413 a body whose Content-Length is over the limit before reading a byte of it, and one
sent without a length (chunked) as soon as it passes the limit: no route reads more than DUEBOT_MAX_BODY_BYTES
(the two account-import routes: DUEBOT_MAX_UPLOAD_BYTES)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import HTTPException

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a body passes its limit; an HTTPException, so whatever is reading the body
    (FastAPI's JSON or form parsing, a route's own read) ends in a 413 response."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, uploads: Mapping[str, int] | None = None) -> None:
        self.app, self.limit, self.uploads = app, limit, dict(uploads or {})

    def limit_for(self, scope: Scope) -> int:
        if scope.get("method") == "POST":
            return self.uploads.get(scope.get("path", ""), self.limit)
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = [v for k, v in scope.get("headers", ()) if k == b"content-length"]
        if declared:
            try:
                length = int(declared[0])
            except ValueError:
                await _send_json(send, 400, "invalid Content-Length")
                return
            if length > limit:
                await _send_json(send, 413, f"request body larger than {limit} bytes")
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _send_json(send, 413, f"request body larger than {limit} bytes")


CONSOLE = "/console"
# Everything the console serves comes from its own origin: no inline script or style (the templates have none),
# no framing (clickjacking), forms post only to the console, no plugins, no <base> rewriting.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeaders:
    """On every console response: CSP with frame-ancestors 'none' (and X-Frame-Options for old browsers),
    Referrer-Policy same-origin (conversation ids in URLs never leave; same-origin posts keep their Origin),
    X-Content-Type-Options nosniff, and Cache-Control no-store on pages (they may hold unmasked data) but not on
    static files. On every response of the service: nosniff, and HSTS when the public URL is https. A header a
    route set itself is left as it is."""

    def __init__(self, app: ASGIApp, hsts: bool) -> None:
        self.app, self.hsts = app, hsts

    @staticmethod
    def is_console(path: str) -> bool:
        return path == CONSOLE or path.startswith(CONSOLE + "/")

    def headers_for(self, path: str) -> list[tuple[bytes, bytes]]:
        out = [(b"x-content-type-options", b"nosniff")]
        if self.hsts:
            out.append((b"strict-transport-security", HSTS.encode()))
        if self.is_console(path):
            out += [(b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin")]
            if not path.startswith(CONSOLE + "/static/"):
                out.append((b"cache-control", b"no-store"))
        return out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers_for(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
