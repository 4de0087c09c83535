"""The embeddable web chat: GET /chat?t=TOKEN (the page), POST /chat/api/message, GET /chat/static/….

The link in a payment/notice SMS carries only a signed token (account id, expiry, purpose "chat"; HMAC-SHA256
like payments/links.py but under its own secret and purpose, so a payment token cannot open a chat). The page
never talks to Rasa: it posts the subscriber's text with the token, and duebot forwards it with the account
id taken from the verified token, so a browser cannot choose another account.

Opt-out: a cease-contact request in either language (the SMS channel's rule, channels/sms/keywords.py) ends the
chat: the account store records the opt-out for the account's phone (channel "chat"), which holds every channel,
and this and every later message get the opted-out answer, never the dialogue. An opt-out made over SMS or voice
closes the chat the same way. Opting back in is by texting START from the phone (a chat link can be forwarded).

Mount with `app.include_router(duebot.channels.chat.webchat.router)`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader
from pydantic import BaseModel, Field

from duebot import clients, secrets
from duebot.accounts.store import AccountStore
from duebot.channels.rasa_client import RasaClient, RasaRouter, RasaUnavailable
from duebot.channels.sms.keywords import cease_contact, normalise
from duebot.channels.sms.ratelimit import Limit, RateLimiter
from duebot.channels.sms.texts import text_language
from duebot.console import i18n
from duebot.settings import load_settings

logger = logging.getLogger(__name__)


class _EncodableErrors(APIRoute):
    """A 422 that can be written: FastAPI's answer to an invalid body echoes the input, and a JSON body holding
    NaN or Infinity (Python's json reads them) made that answer unencodable, a 500. Such numbers are echoed as text."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))}, status_code=422)
        return route


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


router = APIRouter(tags=["chat"], route_class=_EncodableErrors)
STATIC = Path(__file__).resolve().parent / "static"
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


def make_token(account_id: str, ttl_hours: float = 72, now: float | None = None, key: bytes | None = None) -> str:
    payload = secrets.b64(json.dumps({"a": account_id, "e": int((now or time.time()) + ttl_hours * 3600),
                                      "p": "chat"}, separators=(",", ":")).encode())
    return f"{payload}.{secrets.mac(key or secrets.key('chat'), 'chat', payload)}"


def chat_url(base_url: str, account_id: str, ttl_hours: float = 72) -> str:
    """The link to put in a notice or payment SMS (no personal data in it)."""
    return f"{base_url.rstrip('/')}/chat?t={make_token(account_id, ttl_hours)}"


def verify_token(token: str, now: float | None = None, key: bytes | None = None) -> str:
    """The account id, or InvalidToken."""
    payload, _, mac = token.partition(".")
    if not token.isascii():  # a token is base64url: and compare_digest raises on a non-ASCII str
        raise InvalidToken("malformed token")
    if not payload or not mac or not secrets.mac_matches(key or secrets.key("chat"), "chat", payload, mac):
        raise InvalidToken("bad signature")
    try:
        body = json.loads(secrets.unb64(payload))
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
        self._opted_out: set[str] = set()
        self.limiter = (RateLimiter(self.redis, [Limit("minute", 60, self.per_minute)], "duebot:chat:rate")
                        if self.redis is not None else None)

    @classmethod
    def from_settings(cls) -> ChatChannel:
        settings = load_settings()
        return cls(clients.rasa_router(settings), clients.redis_client(settings), settings.chat.rate_per_minute,
                   clients.account_store(settings))

    def account_language(self, account_id: str) -> str | None:
        account = self.store.get_account(account_id) if self.store is not None else None
        return account.language if account else None

    # ------------------------------------------------------------------ opt-out

    def is_opted_out(self, account_id: str) -> bool:
        account = self.store.get_account(account_id) if self.store is not None else None
        if account is not None and account.phone and self.store is not None and self.store.is_opted_out(account.phone):
            return True
        return account_id in self._opted_out

    def opt_out(self, account_id: str, text: str) -> None:
        """Recorded in the account store like an SMS STOP: the flag on the phone holds every channel."""
        self._opted_out.add(account_id)  # this process, even without a store (and before the store answers)
        account = self.store.get_account(account_id) if self.store is not None else None
        if account is None or self.store is None:
            logger.warning("chat opt-out for %s not in the account store (no store or no account)", account_id)
            return
        if account.phone:
            self.store.set_opt_out(account.phone, True, channel="chat", source=f"chat:{text.strip()[:32]}")
        self.store.add_event("opt_out", account_id, f"chat:{account_id}",
                             {"channel": "chat", "said": text.strip()[:32]})


# Whole-message words that cancel a step of the dialogue (a payment form) in chat; over SMS they are carrier
# opt-out keywords, in chat only a cease-contact request opts out.
_DIALOGUE_WORDS = frozenset({"cancel", "end", "取消"})


# The chat's answers to an opt-out, per conversation language (LANGUAGES; en is the fallback).
OPT_OUT_TEXTS = {
    "en": {"opt_out": "You are unsubscribed: we will not contact you again by chat, text or phone, and this chat "
                      "has ended. To opt back in, text START to the number that texted you.",
           "opted_out": "You have opted out, so this chat is closed and we will not contact you. To opt back in, "
                        "text START to the number that texted you."},
    "zh": {"opt_out": "您已成功退订，我们将不再通过在线对话、短信或电话联系您，本次对话已结束。"
                      "如需恢复接收，请向给您发短信的号码回复START。",
           "opted_out": "您已退订，本对话已关闭，我们不会再联系您。如需恢复接收，请向给您发短信的号码回复START。"},
}


def opt_out_text(kind: str, language: str) -> str:
    return OPT_OUT_TEXTS.get(language, OPT_OUT_TEXTS["en"])[kind]


def asks_to_opt_out(text: str) -> bool:
    return normalise(text) not in _DIALOGUE_WORDS and cease_contact(text)


@lru_cache(maxsize=1)
def get_chat() -> ChatChannel:
    """The process's chat channel; tests replace it with `app.dependency_overrides[get_chat]`."""
    return ChatChannel.from_settings()


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


# The page's own words (title, placeholder, button, what went wrong) in each language it is offered in: data, in
# static/strings.json; the assistant's replies come from Rasa. index.html and expired.html are filled in with the
# chosen language's words; the page's script switches language in place (the conversation stays on the page).
_pages = Environment(loader=FileSystemLoader(str(STATIC)), autoescape=True)
STRINGS: dict[str, dict[str, str]] = json.loads((STATIC / "strings.json").read_text(encoding="utf-8"))


def page_language(asked: str | None, accept_language: str | None) -> str:
    """?lang= when it names a language of the page, else the browser's Accept-Language (zh* → zh-CN), else en."""
    for lang in (i18n.normalise(asked), i18n.from_accept_language(accept_language)):
        if lang in STRINGS:
            return lang
    return "en"


def _page(name: str, lang: str, status: int = 200) -> HTMLResponse:
    html = _pages.get_template(name).render(lang=lang, t=STRINGS[lang], strings=STRINGS,
                                            languages={k: v for k, v in i18n.LANGUAGES.items() if k in STRINGS})
    return HTMLResponse(html, status_code=status, headers={**HEADERS, "Content-Language": lang,
                                                           "Vary": "Accept-Language"})


@router.get("/chat", response_class=HTMLResponse, include_in_schema=False)
def chat_page(t: str = "", lang: str = "", accept_language: Annotated[str, Header()] = "") -> HTMLResponse:
    chosen = page_language(lang, accept_language)
    try:
        verify_token(t)
    except InvalidToken as exc:
        logger.info("chat link refused: %s", exc)
        return _page("expired.html", chosen, 403)
    return _page("index.html", chosen)


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
    language = chat.account_language(account_id)
    if chat.is_opted_out(account_id):
        return Reply(messages=[MessageOut(text=opt_out_text("opted_out", text_language(language, message.text)))])
    if asks_to_opt_out(message.text):
        chat.opt_out(account_id, message.text)
        return Reply(messages=[MessageOut(text=opt_out_text("opt_out", text_language(language, message.text)))])
    try:
        messages = await chat.router.ask(f"chat:{account_id}", message.text, account_id, "chat", language)
    except RasaUnavailable as exc:
        logger.error("chat: %s", exc)
        raise HTTPException(status_code=503, detail="the assistant is unavailable, please try again") from exc
    return Reply(messages=[MessageOut(text=m["text"], buttons=[Button(title=b.get("title", ""),
                                                                      payload=b.get("payload", ""))
                                                               for b in m.get("buttons") or []])
                           for m in messages])
