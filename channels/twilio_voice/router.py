"""Twilio voice: TwiML `<Connect><Stream>` webhook, a bidirectional Media Streams WebSocket, outbound dialing.

Mount: `app.include_router(create_twilio_voice_router(TwilioVoiceConfig.from_settings(), runtime))`.
Twilio POSTs the call webhook to `{public_url}{prefix}/twiml`; the TwiML tells it to open
`wss://…{prefix}/stream/<token>`, over which it sends `connected`, `start`, `media`, `dtmf`, `mark`, `stop` and
accepts `media`, `mark` and `clear` (clear flushes the audio Twilio has buffered: barge-in).

Fails closed (issue 18):
- without TWILIO_AUTH_TOKEN nothing is served: an empty key is one anyone can sign with, so every request gets 503
  (the WebSocket is refused), and the reason is logged at start-up and on every refusal;
- the webhook must carry a valid `X-Twilio-Signature`; it mints a per-call stream token (random, single use,
  DUEBOT_TWILIO_STREAM_TOKEN_TTL seconds, kept in Redis, or in this process without REDIS_URL) bound to the
  signed request's CallSid, direction and caller, and puts it in the `<Stream>` URL's path (Twilio's `<Stream url>`
  takes no query string);
- the WebSocket handshake must carry Twilio's signature of that exact URL, token included, and the token is taken
  (deleted) on first use: a replayed handshake, an expired token, or a token shown with another call's `start`
  is refused;
- who the call is with comes from the signed webhook only (From inbound, To outbound, or the dialer's signed
  `sender`), as an opaque conversation id (voice/identity.py); the stream's own `customParameters` are never trusted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit
from xml.sax.saxutils import quoteattr

from fastapi import APIRouter, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from twilio.request_validator import RequestValidator

from duebot.settings import Settings, load_settings
from duebot.voice.runtime import VoiceRuntime

log = logging.getLogger(__name__)
NO_TOKEN = ("TWILIO_AUTH_TOKEN is not set: Twilio voice refuses every request (503), because a signature made with "
            "an empty key is one anyone can make. Set TWILIO_AUTH_TOKEN and restart the web service.")


@dataclass(frozen=True)
class TwilioVoiceConfig:
    auth_token: str
    public_url: str  # what Twilio calls, e.g. https://duebot.example.org (behind the operator's proxy)
    account_sid: str = ""
    from_number: str = ""
    prefix: str = "/twilio/voice"
    stream_token_ttl: float = 120.0  # seconds between the TwiML answer and the WebSocket handshake

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> TwilioVoiceConfig:
        s = settings or load_settings()
        return cls(auth_token=s.twilio.auth_token.get_secret_value(), public_url=s.public_url,
                   account_sid=s.twilio.account_sid, from_number=s.twilio.from_number or "",
                   stream_token_ttl=s.twilio.stream_token_ttl)

    @property
    def twiml_url(self) -> str:
        return f"{self.public_url}{self.prefix}/twiml"

    @property
    def stream_url(self) -> str:
        parts = urlsplit(self.public_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path}{self.prefix}/stream"

    def stream_url_for(self, token: str) -> str:
        return f"{self.stream_url}/{token}"


def twiml_connect_stream(stream_url: str, parameters: dict[str, str]) -> str:
    params = "".join(f"<Parameter name={quoteattr(k)} value={quoteattr(v)}/>" for k, v in parameters.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url={quoteattr(stream_url)}>'
            f"{params}</Stream></Connect></Response>")


# ---- per-call stream tokens -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamGrant:
    """What the signed TwiML webhook established about a call, for the one WebSocket that may carry it."""

    call_sid: str
    direction: str  # inbound | outbound
    conversation_id: str  # opaque (voice/identity.py): never the caller's number
    expires_at: float  # epoch seconds


class StreamTokens(Protocol):
    def mint(self, grant: StreamGrant) -> str:
        """A new random token for `grant`, valid until grant.expires_at."""

    def take(self, token: str) -> StreamGrant | None:
        """The grant of `token`, removing it: a second take of the same token gets None, as does an expired one."""


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _token_key(token: str) -> str:
    """Tokens are stored by their hash: a dump of the store holds no token that would open a stream."""
    return hashlib.sha256(token.encode()).hexdigest()


class MemoryStreamTokens:
    """Tokens in this process: right for a single web process (no REDIS_URL) and for tests."""

    def __init__(self, clock: Any = time.time) -> None:
        self._grants: dict[str, StreamGrant] = {}
        self._lock = threading.Lock()
        self.clock = clock

    def mint(self, grant: StreamGrant) -> str:
        token = new_token()
        with self._lock:
            now = self.clock()
            for key in [k for k, g in self._grants.items() if g.expires_at <= now]:
                del self._grants[key]
            self._grants[_token_key(token)] = grant
        return token

    def take(self, token: str) -> StreamGrant | None:
        with self._lock:
            grant = self._grants.pop(_token_key(token), None)
        return grant if grant is not None and grant.expires_at > self.clock() else None


class RedisStreamTokens:
    """Tokens in Redis, so the WebSocket may reach another web process than the webhook did. GETDEL takes a token
    atomically: of two handshakes presenting it, one gets the grant."""

    PREFIX = "duebot:twilio:stream:"

    def __init__(self, client: Any) -> None:
        self.client = client

    def mint(self, grant: StreamGrant) -> str:
        token = new_token()
        ttl_ms = max(1, int((grant.expires_at - time.time()) * 1000))
        self.client.set(self.PREFIX + _token_key(token), json.dumps(asdict(grant)), px=ttl_ms)
        return token

    def take(self, token: str) -> StreamGrant | None:
        raw = self.client.getdel(self.PREFIX + _token_key(token))
        if raw is None:
            return None
        grant = StreamGrant(**json.loads(raw))
        return grant if grant.expires_at > time.time() else None


def default_stream_tokens(settings: Settings | None = None) -> StreamTokens:
    settings = settings or load_settings()
    if settings.redis.url:
        from duebot import clients

        return RedisStreamTokens(clients.redis_client(settings))
    log.warning("REDIS_URL is not set: Twilio Media Stream tokens are kept in this web process (run one only)")
    return MemoryStreamTokens()


class TwilioMediaTransport:
    """The way back to Twilio over the Media Stream: one `media` message per 20 ms µ-law frame."""

    def __init__(self, websocket: WebSocket, stream_sid: str) -> None:
        self.websocket = websocket
        self.stream_sid = stream_sid
        self.closed = False
        self.marks_sent: list[str] = []

    async def _send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            await self.websocket.send_text(json.dumps(message))
        except (WebSocketDisconnect, RuntimeError):
            self.closed = True

    async def send_audio(self, ulaw: bytes) -> None:
        await self._send({"event": "media", "streamSid": self.stream_sid,
                          "media": {"payload": base64.b64encode(ulaw).decode()}})

    async def clear(self) -> None:
        await self._send({"event": "clear", "streamSid": self.stream_sid})

    async def mark(self, name: str) -> None:
        self.marks_sent.append(name)
        await self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    async def hangup(self) -> None:
        # Closing the stream ends <Connect>; with no TwiML after it, Twilio ends the call.
        if not self.closed:
            self.closed = True
            with contextlib.suppress(RuntimeError):
                await self.websocket.close()


def create_twilio_voice_router(config: TwilioVoiceConfig, runtime: VoiceRuntime,
                               tokens: StreamTokens | None = None) -> APIRouter:
    router = APIRouter(prefix=config.prefix, tags=["twilio-voice"])
    if not config.auth_token:
        log.error(NO_TOKEN)
        return _refusing_router(router)
    tokens = tokens if tokens is not None else default_stream_tokens()
    validator = RequestValidator(config.auth_token)

    def signed(url: str, params: dict[str, str], signature: str | None) -> bool:
        return bool(signature) and validator.validate(url, params, signature)

    @router.post("/twiml")
    async def twiml(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        url = config.twiml_url + (f"?{request.url.query}" if request.url.query else "")
        if not signed(url, form, request.headers.get("X-Twilio-Signature")):
            log.warning("twilio voice: refused a TwiML request without a valid signature (from %s)",
                        request.client.host if request.client else "?")
            raise HTTPException(status_code=403, detail="invalid Twilio signature")
        call_sid = form.get("CallSid", "")
        direction = request.query_params.get("direction", "inbound")
        if not call_sid or direction not in ("inbound", "outbound"):
            raise HTTPException(status_code=400, detail="a call webhook names its CallSid and direction")
        # Who the call is with, from the signed request only: the dialer's `sender` (in the signed URL), else the
        # subscriber's number, inbound the caller (From), outbound the one called (To). Kept only as an opaque id.
        caller = form.get("To") if direction == "outbound" else form.get("From")
        conversation = runtime.conversation_id(sender=request.query_params.get("sender"), caller=caller) or call_sid
        token = tokens.mint(StreamGrant(call_sid, direction, conversation, time.time() + config.stream_token_ttl))
        body = twiml_connect_stream(config.stream_url_for(token), {"direction": direction})
        return Response(content=body, media_type="application/xml")

    @router.websocket("/stream/{token}")
    async def stream(websocket: WebSocket, token: str) -> None:
        # The signature first: someone who learnt a token cannot spend it without Twilio's key.
        if not signed(config.stream_url_for(token), {}, websocket.headers.get("x-twilio-signature")):
            log.warning("twilio voice: refused a Media Stream handshake without a valid signature")
            await websocket.close(code=1008)
            return
        grant = tokens.take(token)
        if grant is None:
            log.warning("twilio voice: refused a Media Stream whose token is unknown, expired or already used "
                        "(a replayed handshake?)")
            await websocket.close(code=1008)
            return
        await websocket.accept()
        await _serve_media_stream(websocket, runtime, grant)

    @router.websocket("/stream")
    async def stream_without_token(websocket: WebSocket) -> None:
        log.warning("twilio voice: refused a Media Stream without a stream token")
        await websocket.close(code=1008)

    return router


def _refusing_router(router: APIRouter) -> APIRouter:
    """Every route of Twilio voice, each one refusing: the web service starts, and says why calls fail."""

    @router.post("/twiml")
    async def twiml_refused() -> Response:
        log.error("twilio voice: refused a call webhook. %s", NO_TOKEN)
        raise HTTPException(status_code=503, detail="Twilio voice is not configured: TWILIO_AUTH_TOKEN is not set")

    @router.websocket("/stream/{token}")
    async def stream_refused(websocket: WebSocket, token: str) -> None:  # noqa: ARG001 - the route's shape
        log.error("twilio voice: refused a Media Stream. %s", NO_TOKEN)
        await websocket.close(code=1008)

    @router.websocket("/stream")
    async def bare_stream_refused(websocket: WebSocket) -> None:
        log.error("twilio voice: refused a Media Stream. %s", NO_TOKEN)
        await websocket.close(code=1008)

    return router


async def _serve_media_stream(websocket: WebSocket, runtime: VoiceRuntime, grant: StreamGrant) -> None:
    session = None
    transport: TwilioMediaTransport | None = None
    run_task: asyncio.Task[None] | None = None
    refused = False
    try:
        while True:
            try:
                raw = await websocket.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                break
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            event = message.get("event")
            if event == "start":
                if session is not None:
                    continue  # one call per stream
                start = _object(message.get("start"))
                if start.get("callSid") != grant.call_sid:
                    log.warning("twilio voice: a stream token of call %s was presented for call %s: refused",
                                grant.call_sid, start.get("callSid"))
                    refused = True
                    break
                fmt = start.get("mediaFormat")
                if not _mulaw_8k(fmt):
                    log.error("unsupported media format %.200r", fmt)
                    break
                stream_sid = message.get("streamSid") or start.get("streamSid")
                if not isinstance(stream_sid, str) or not stream_sid:
                    break
                transport = TwilioMediaTransport(websocket, stream_sid)
                # customParameters are the stream's own word: who the call is with comes from the signed webhook
                session = runtime.session(grant.call_sid, transport, direction=grant.direction,
                                          sender=grant.conversation_id,
                                          metadata={"carrier": "twilio", "call_sid": grant.call_sid})
                run_task = asyncio.get_running_loop().create_task(session.run())
            elif session is None:
                continue  # `connected` and anything before `start`
            elif event == "media":
                media = _object(message.get("media"))
                if media.get("track", "inbound") == "inbound" and isinstance(media.get("payload"), str):
                    with contextlib.suppress(ValueError):
                        session.feed_audio(base64.b64decode(media["payload"], validate=True))
            elif event == "dtmf":
                digit = _object(message.get("dtmf")).get("digit")
                if isinstance(digit, str) and len(digit) == 1 and digit in "0123456789*#ABCD":
                    session.feed_dtmf(digit)
            elif event == "mark":
                log.debug("twilio played up to %.100r", _object(message.get("mark")).get("name"))
            elif event == "stop":
                session.remote_hangup("twilio stop")
                break
    finally:
        if session is not None and run_task is not None:
            if not run_task.done():
                session.remote_hangup("stream closed")
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(run_task, 10)
        if transport is not None:
            await transport.hangup()
        else:
            with contextlib.suppress(RuntimeError):
                await websocket.close(code=1008 if refused else 1000)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _mulaw_8k(fmt: Any) -> bool:
    """The one media format the pipeline takes (Twilio's: audio/x-mulaw, 8000 Hz); anything else ends the stream."""
    return (isinstance(fmt, dict) and fmt.get("encoding") == "audio/x-mulaw"
            and fmt.get("sampleRate", 8000) in (8000, "8000") and not isinstance(fmt.get("sampleRate"), bool))


class TwilioDialer:
    """Outbound calls through Twilio's REST API, only after the compliance gate reserved the contact."""

    def __init__(self, config: TwilioVoiceConfig, runtime: VoiceRuntime, client: Any | None = None) -> None:
        from twilio.rest import Client

        if not config.auth_token:
            raise RuntimeError(NO_TOKEN)
        self.config = config
        self.runtime = runtime
        self.client = client or Client(config.account_sid, config.auth_token)

    def call(self, to: str, sender: str | None = None) -> str:
        """Place the call (raises ContactNotAllowed if the gate says no); returns the Call SID."""
        self.runtime.check_outbound(to)
        # The URL Twilio calls back holds no number: the webhook takes the callee from its signed `To`.
        query = {"direction": "outbound"}
        if sender:
            query["sender"] = self.runtime.conversation_id(sender=sender) or sender
        call = self.client.calls.create(to=to, from_=self.config.from_number,
                                        url=f"{self.config.twiml_url}?{urlencode(query)}",
                                        method="POST")
        return str(call.sid)
