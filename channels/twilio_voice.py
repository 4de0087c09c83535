"""Twilio voice: TwiML `<Connect><Stream>` webhook, a bidirectional Media Streams WebSocket, outbound dialing.

Mount: `app.include_router(create_twilio_voice_router(TwilioVoiceConfig.from_env(), runtime))`.
Twilio POSTs the call webhook to `{public_url}{prefix}/twiml`; the TwiML tells it to open
`wss://…{prefix}/stream`, over which it sends `connected`, `start`, `media`, `dtmf`, `mark`, `stop` and
accepts `media`, `mark` and `clear` (clear flushes the audio Twilio has buffered: barge-in).
Both the webhook and the WebSocket handshake carry `X-Twilio-Signature`, checked against the public URL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit
from xml.sax.saxutils import quoteattr

from fastapi import APIRouter, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from twilio.request_validator import RequestValidator

from duebot.voice.runtime import VoiceRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TwilioVoiceConfig:
    auth_token: str
    public_url: str  # what Twilio calls, e.g. https://duebot.example.org (behind the operator's proxy)
    account_sid: str = ""
    from_number: str = ""
    prefix: str = "/twilio/voice"
    validate: bool = True

    @classmethod
    def from_env(cls) -> TwilioVoiceConfig:
        return cls(auth_token=os.environ.get("TWILIO_AUTH_TOKEN", ""),
                   public_url=os.environ.get("DUEBOT_PUBLIC_URL", "http://127.0.0.1:8080").rstrip("/"),
                   account_sid=os.environ.get("TWILIO_ACCOUNT_SID", ""),
                   from_number=os.environ.get("TWILIO_FROM_NUMBER", ""))

    @property
    def twiml_url(self) -> str:
        return f"{self.public_url}{self.prefix}/twiml"

    @property
    def stream_url(self) -> str:
        parts = urlsplit(self.public_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path}{self.prefix}/stream"


def twiml_connect_stream(stream_url: str, parameters: dict[str, str]) -> str:
    params = "".join(f"<Parameter name={quoteattr(k)} value={quoteattr(v)}/>" for k, v in parameters.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url={quoteattr(stream_url)}>'
            f"{params}</Stream></Connect></Response>")


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


def create_twilio_voice_router(config: TwilioVoiceConfig, runtime: VoiceRuntime) -> APIRouter:
    router = APIRouter(prefix=config.prefix, tags=["twilio-voice"])
    validator = RequestValidator(config.auth_token)

    def check(url: str, params: dict[str, str], signature: str | None) -> bool:
        return not config.validate or bool(signature and validator.validate(url, params, signature))

    @router.post("/twiml")
    async def twiml(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        url = config.twiml_url + (f"?{request.url.query}" if request.url.query else "")
        if not check(url, form, request.headers.get("X-Twilio-Signature")):
            raise HTTPException(status_code=403, detail="invalid Twilio signature")
        direction = request.query_params.get("direction", "inbound")
        # Inbound: the subscriber is the caller (From); outbound: the one we called (To).
        sender = request.query_params.get("sender") or (form.get("To") if direction == "outbound" else form.get("From"))
        body = twiml_connect_stream(config.stream_url, {"direction": direction, "sender": sender or "",
                                                        "call_sid": form.get("CallSid", "")})
        return Response(content=body, media_type="application/xml")

    @router.websocket("/stream")
    async def stream(websocket: WebSocket) -> None:
        if not check(config.stream_url, {}, websocket.headers.get("x-twilio-signature")):
            await websocket.close(code=1008)
            return
        await websocket.accept()
        await _serve_media_stream(websocket, runtime)

    return router


async def _serve_media_stream(websocket: WebSocket, runtime: VoiceRuntime) -> None:
    session = None
    transport: TwilioMediaTransport | None = None
    run_task: asyncio.Task[None] | None = None
    try:
        while True:
            try:
                raw = await websocket.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                break
            message = json.loads(raw)
            event = message.get("event")
            if event == "start":
                start = message["start"]
                params = start.get("customParameters", {})
                fmt = start.get("mediaFormat", {})
                if fmt and (fmt.get("encoding") != "audio/x-mulaw" or int(fmt.get("sampleRate", 8000)) != 8000):
                    log.error("unsupported media format %s", fmt)
                    break
                transport = TwilioMediaTransport(websocket, message.get("streamSid") or start["streamSid"])
                session = runtime.session(start.get("callSid") or transport.stream_sid, transport,
                                          direction=params.get("direction", "inbound"),
                                          sender=params.get("sender") or None,
                                          metadata={"carrier": "twilio", "call_sid": start.get("callSid", "")})
                run_task = asyncio.get_running_loop().create_task(session.run())
            elif session is None:
                continue  # `connected` and anything before `start`
            elif event == "media":
                media = message["media"]
                if media.get("track", "inbound") == "inbound":
                    session.feed_audio(base64.b64decode(media["payload"]))
            elif event == "dtmf":
                session.feed_dtmf(str(message["dtmf"]["digit"]))
            elif event == "mark":
                log.debug("twilio played up to %s", message.get("mark", {}).get("name"))
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
                await websocket.close()


class TwilioDialer:
    """Outbound calls through Twilio's REST API, only after the compliance gate reserved the contact."""

    def __init__(self, config: TwilioVoiceConfig, runtime: VoiceRuntime, client: Any | None = None) -> None:
        from twilio.rest import Client

        self.config = config
        self.runtime = runtime
        self.client = client or Client(config.account_sid, config.auth_token)

    def call(self, to: str, sender: str | None = None) -> str:
        """Place the call (raises ContactNotAllowed if the gate says no); returns the Call SID."""
        self.runtime.check_outbound(to)
        query = urlencode({"direction": "outbound", "sender": sender or to})
        call = self.client.calls.create(to=to, from_=self.config.from_number, url=f"{self.config.twiml_url}?{query}",
                                        method="POST")
        return str(call.sid)
