"""The embeddable web chat: GET /chat?t=TOKEN (the page), POST /chat/api/message, GET /chat/static/….

The link in a payment/notice SMS carries only a signed token (account id, expiry, purpose "chat"; HMAC-SHA256
like duebot/payments.py but under its own secret and purpose, so a payment token cannot open a chat). The page
never talks to Rasa: it posts the subscriber's text with the token, and duebot forwards it with the account
id taken from the verified token, so a browser cannot choose another account.

Mount with `app.include_router(duebot.channels.webchat.router)`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field

from duebot.accounts.store import AccountStore
from duebot.channels.sms_rasa import RasaClient, RasaRouter, RasaUnavailable
from duebot.channels.sms_ratelimit import Limit, RateLimiter
from duebot.config import Settings

logger = logging.getLogger(__name__)
router = APIRouter(tags=["chat"])
STATIC = Path(__file__).resolve().parent / "webchat"
ASSETS = {"chat.js": "text/javascript", "chat.css": "text/css"}
# Strict: the page loads only its own script and style, and may only call back to duebot.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors *",
    "Referrer-Policy": "no-referrer",  # the token must not leak to other sites through Referer
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


class InvalidToken(ValueError):
    pass


def _secret() -> bytes:
    # A development default keeps the embedded demo working; production sets DUEBOT_CHAT_SECRET.
    return (os.environ.get("DUEBOT_CHAT_SECRET") or "duebot-development-chat-secret").encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(payload: str, key: bytes) -> str:
    return _b64(hmac.new(key, b"chat." + payload.encode(), hashlib.sha256).digest())


def make_token(account_id: str, ttl_hours: float = 72, now: float | None = None, key: bytes | None = None) -> str:
    payload = _b64(json.dumps({"a": account_id, "e": int((now or time.time()) + ttl_hours * 3600), "p": "chat"},
                              separators=(",", ":")).encode())
    return f"{payload}.{_mac(payload, key or _secret())}"


def chat_url(base_url: str, account_id: str, ttl_hours: float = 72) -> str:
    """The link to put in a notice or payment SMS (no personal data in it)."""
    return f"{base_url.rstrip('/')}/chat?t={make_token(account_id, ttl_hours)}"


def verify_token(token: str, now: float | None = None, key: bytes | None = None) -> str:
    """The account id, or InvalidToken."""
    payload, _, mac = token.partition(".")
    if not payload or not mac or not hmac.compare_digest(_mac(payload, key or _secret()), mac):
        raise InvalidToken("bad signature")
    try:
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        account_id, expires, purpose = str(body["a"]), float(body["e"]), body["p"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidToken("malformed token") from exc
    if purpose != "chat":
        raise InvalidToken("not a chat token")
    if expires < (now or time.time()):
        raise InvalidToken("expired")
    return account_id


@dataclass
class ChatChannel:
    rasa: RasaClient | RasaRouter
    redis: redis.Redis | None
    per_minute: int = 30
    store: AccountStore | None = None  # the account's language picks the Rasa server; without it, the default

    def __post_init__(self) -> None:
        self.router = RasaRouter.of(self.rasa)
        self.limiter = (RateLimiter(self.redis, [Limit("minute", 60, self.per_minute)], "duebot:chat:rate")
                        if self.redis is not None else None)

    @classmethod
    def from_env(cls) -> ChatChannel:
        settings = Settings.from_env()
        url = os.environ.get("REDIS_URL")
        return cls(RasaRouter.from_settings(settings), redis.Redis.from_url(url) if url else None,
                   int(os.environ.get("DUEBOT_CHAT_RATE_PER_MINUTE", 30)), AccountStore())

    def account_language(self, account_id: str) -> str | None:
        account = self.store.get_account(account_id) if self.store is not None else None
        return account.language if account else None


@lru_cache(maxsize=1)
def get_chat() -> ChatChannel:
    """The process's chat channel; tests replace it with `app.dependency_overrides[get_chat]`."""
    return ChatChannel.from_env()


class MessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=1000)


class Button(BaseModel):
    title: str
    payload: str


class MessageOut(BaseModel):
    text: str
    buttons: list[Button] = []


class Reply(BaseModel):
    messages: list[MessageOut]


def _page(name: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse((STATIC / name).read_text(encoding="utf-8"), status_code=status, headers=HEADERS)


@router.get("/chat", response_class=HTMLResponse, include_in_schema=False)
def chat_page(t: str = "") -> HTMLResponse:
    try:
        verify_token(t)
    except InvalidToken as exc:
        logger.info("chat link refused: %s", exc)
        return _page("expired.html", 403)
    return _page("index.html")


@router.get("/chat/static/{name}", include_in_schema=False)
def chat_asset(name: str) -> FileResponse:
    if name not in ASSETS:  # a fixed list: no path is ever built from the request
        raise HTTPException(status_code=404)
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=300"})


@router.post("/chat/api/message", response_model=Reply)
async def chat_message(message: MessageIn, request: Request, chat: Annotated[ChatChannel, Depends(get_chat)],
                       authorization: Annotated[str, Header()] = "") -> Reply:
    scheme, _, token = authorization.partition(" ")
    try:
        if scheme.lower() != "bearer":
            raise InvalidToken("no bearer token")
        account_id = verify_token(token)
    except InvalidToken as exc:
        logger.warning("chat message refused: %s (from %s)", exc, request.client.host if request.client else "?")
        raise HTTPException(status_code=403, detail="this chat link is not valid any more") from exc
    if chat.limiter is not None:
        admission = chat.limiter.take(account_id)
        if not admission.admitted:
            raise HTTPException(status_code=429, detail="too many messages, please wait a moment",
                                headers={"Retry-After": str(int((admission.retry_after or 1) + 1))})
    try:
        messages = await chat.router.ask(f"chat:{account_id}", message.text, account_id, "chat",
                                         chat.account_language(account_id))
    except RasaUnavailable as exc:
        logger.error("chat: %s", exc)
        raise HTTPException(status_code=503, detail="the assistant is unavailable, please try again") from exc
    return Reply(messages=[MessageOut(text=m["text"], buttons=[Button(title=b.get("title", ""),
                                                                      payload=b.get("payload", ""))
                                                               for b in m.get("buttons") or []])
                           for m in messages])
