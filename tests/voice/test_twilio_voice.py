"""Twilio Media Streams driven exactly as Twilio does: signed webhook, then JSON events over a WebSocket."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import pytest
import websockets
from fastapi import FastAPI
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from duebot.channels.twilio_voice.router import (
    MemoryStreamTokens,
    TwilioDialer,
    TwilioVoiceConfig,
    create_twilio_voice_router,
)
from duebot.voice.audio import FRAME_BYTES_PCM, pcm_to_ulaw, split_frames
from duebot.voice.dialogue import RasaRestDialogue
from duebot.voice.evidence import MemoryEvidenceSink
from duebot.voice.runtime import ContactNotAllowed, VoiceRuntime
from duebot.voice.session import VoiceConfig
from tests.voice.conftest import flite_pcm
from tests.voice.line import comfort_noise
from tests.voice.scripted_dialogue import MENU
from tests.voice.servers import ThreadedServer

pytestmark = [pytest.mark.timeout(120), pytest.mark.anyio]
TOKEN = "test-auth-token"


def twilio_signature(url: str, params: dict[str, str]) -> str:
    """Twilio's scheme, written independently: HMAC-SHA1 over the URL plus sorted key+value pairs."""
    payload = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(TOKEN.encode(), payload.encode(), hashlib.sha1).digest()).decode()


class TwilioStream:
    """Plays Twilio's side of a Media Stream: 20 ms inbound `media` messages, `dtmf`, echoed `mark`s."""

    def __init__(self, ws: websockets.ClientConnection, stream_sid: str) -> None:
        self.ws = ws
        self.sid = stream_sid
        self.received: list[tuple[float, dict]] = []
        self.pending: list[bytes] = []
        self.seq = 0
        self.chunk = 0

    async def send(self, message: dict) -> None:
        self.seq += 1
        await self.ws.send(json.dumps({"sequenceNumber": str(self.seq), **message}))

    async def pump(self) -> None:
        noise = split_frames(comfort_noise(50), FRAME_BYTES_PCM)
        deadline = time.monotonic()
        while True:
            frame = self.pending.pop(0) if self.pending else noise[self.chunk % len(noise)]
            self.chunk += 1
            await self.send({"event": "media", "streamSid": self.sid, "media": {
                "track": "inbound", "chunk": str(self.chunk), "timestamp": str(self.chunk * 20),
                "payload": base64.b64encode(pcm_to_ulaw(frame)).decode()}})
            deadline += 0.02
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))

    async def listen(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            self.received.append((time.monotonic(), message))
            if message["event"] == "mark":  # Twilio echoes a mark once the audio before it has played
                await self.send({"event": "mark", "streamSid": self.sid, "mark": message["mark"]})

    async def say(self, pcm: bytes) -> tuple[float, float]:
        start = time.monotonic()
        self.pending.extend(split_frames(pcm, FRAME_BYTES_PCM))
        while self.pending:
            await asyncio.sleep(0.01)
        return start, time.monotonic()

    def events(self, name: str) -> list[tuple[float, dict]]:
        return [(t, m) for t, m in self.received if m["event"] == name]


async def wait_for(predicate, timeout: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
def twilio_app(whisper, piper, scripted_rasa):  # noqa: ANN001, ANN201
    sink = MemoryEvidenceSink()
    config = VoiceConfig(start_message="/short")
    runtime = VoiceRuntime(whisper, piper, RasaRestDialogue(scripted_rasa.url), sink, config)
    app = FastAPI()
    with ThreadedServer(app) as server:
        config = TwilioVoiceConfig(auth_token=TOKEN, public_url="https://duebot.example.org/base")
        app.include_router(create_twilio_voice_router(config, runtime, MemoryStreamTokens()))
        yield server, config, runtime, sink


async def answer(server: ThreadedServer, config: TwilioVoiceConfig, form: dict[str, str]) -> httpx.Response:
    """Twilio's call webhook, signed."""
    async with httpx.AsyncClient(base_url=server.url) as client:
        return await client.post("/twilio/voice/twiml", data=form,
                                 headers={"X-Twilio-Signature": twilio_signature(config.twiml_url, form)})


def stream_url_of(twiml: str) -> str:
    match = re.search(r'<Stream url="([^"]+)">', twiml)
    assert match, twiml
    return match.group(1)


async def test_twiml_webhook_requires_a_valid_signature(twilio_app) -> None:
    server, config, _runtime, _sink = twilio_app
    form = {"CallSid": "CA123", "From": "+15551230000", "To": "+15559870000", "Direction": "inbound"}
    async with httpx.AsyncClient(base_url=server.url) as client:
        bad = await client.post("/twilio/voice/twiml", data=form, headers={"X-Twilio-Signature": "forged"})
        assert bad.status_code == 403
    good = await answer(server, config, form)
    assert good.status_code == 200
    assert good.headers["content-type"].startswith("application/xml")
    # a stream URL of this call's own (a token in the path: Twilio's <Stream url> takes no query string)
    assert re.fullmatch(r"wss://duebot\.example\.org/base/twilio/voice/stream/[A-Za-z0-9_-]{40,}",
                        stream_url_of(good.text))
    assert "5551230000" not in good.text  # the caller's number is nowhere in what Twilio is told


async def test_media_stream_call_with_barge_in_clear_and_dtmf(twilio_app, scripted_rasa) -> None:
    server, config, runtime, sink = twilio_app
    twiml = await answer(server, config, {"CallSid": "CA0001", "From": "+15551230000", "To": "+15559870000"})
    signed_url = stream_url_of(twiml.text)
    ws_url = f"ws://127.0.0.1:{server.port}/twilio/voice/stream/{signed_url.rsplit('/', 1)[1]}"
    with pytest.raises(websockets.InvalidStatus):  # unsigned handshake is refused
        async with websockets.connect(ws_url):
            pass
    headers = {"X-Twilio-Signature": twilio_signature(signed_url, {})}
    async with websockets.connect(ws_url, additional_headers=headers) as ws:
        stream = TwilioStream(ws, "MZ0001")
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await stream.send({"event": "start", "streamSid": "MZ0001", "start": {
            "accountSid": "AC0001", "streamSid": "MZ0001", "callSid": "CA0001", "tracks": ["inbound"],
            "customParameters": {"direction": "inbound"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        listener = asyncio.create_task(stream.listen())
        pump = asyncio.create_task(stream.pump())
        await wait_for(lambda: len(stream.events("mark")) >= 1)  # "I heard you." has played
        await asyncio.sleep(0.3)
        await stream.say(flite_pcm("Yes it is me"))
        await wait_for(lambda: len(scripted_rasa.requests) >= 2)
        await wait_for(lambda: stream.events("media")[-1][0] > time.monotonic() - 0.1)  # the menu is on the wire
        await asyncio.sleep(1.5)  # the menu is playing
        start, end = await stream.say(flite_pcm("I would like to talk to an agent please."))
        clears = stream.events("clear")
        assert len(clears) == 1 and start < clears[0][0] < end
        assert clears[0][1]["streamSid"] == "MZ0001"
        late = [t for t, _ in stream.events("media") if clears[0][0] + 0.1 < t < end]
        assert late == [], "no bot audio after `clear`"
        marks_before = len(stream.events("mark"))
        await wait_for(lambda: len(stream.events("mark")) > marks_before)  # the answer to the barge-in played
        await stream.send({"event": "dtmf", "streamSid": "MZ0001", "dtmf": {"track": "inbound_track", "digit": "2"}})
        await wait_for(lambda: len(scripted_rasa.requests) >= 4 and len(stream.events("mark")) > marks_before + 1)
        await stream.send({"event": "stop", "streamSid": "MZ0001",
                           "stop": {"accountSid": "AC0001", "callSid": "CA0001"}})
        pump.cancel()
        await asyncio.wait_for(listener, 10)  # the server closes the stream after `stop`

    conversation = runtime.conversation_id(caller="+15551230000")  # opaque: voice/identity.py
    messages = scripted_rasa.messages(conversation)
    assert messages[0] == "/short" and "yes" in messages[1].lower() and "agent" in messages[2].lower()
    assert messages[3] == "2"
    media = stream.events("media")[0][1]
    assert len(base64.b64decode(media["media"]["payload"])) == 160 and media["streamSid"] == "MZ0001"
    await wait_for(lambda: bool(sink.bodies("voice_call")), timeout=10)
    call = sink.bodies("voice_call")[0]
    assert call["call_id"] == "CA0001" and call["dtmf"] == "2" and call["interruptions"] == 1
    assert call["sender"] == conversation
    menu = [b for b in sink.bodies("voice_turn") if b["text"] == MENU]
    assert menu and menu[0]["interrupted"]


class FakeTwilioApi(BaseHTTPRequestHandler):
    calls: list[dict[str, list[str]]] = []

    def do_POST(self) -> None:  # noqa: N802
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        FakeTwilioApi.calls.append(form)
        body = json.dumps({"sid": "CA9999", "status": "queued", "to": form["To"][0], "from": form["From"][0]}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_outbound_call_only_after_the_gate_reserved_it(whisper, piper) -> None:
    api = ThreadingHTTPServer(("127.0.0.1", 0), FakeTwilioApi)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{api.server_address[1]}"

    class LocalHttpClient(TwilioHttpClient):  # the real Twilio client code, sent to a local fake API
        def request(self, method, url, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
            return super().request(method, url.replace("https://api.twilio.com", base), *args, **kwargs)

    asked: list[tuple[str, str]] = []
    allowed = {"+15550001111"}

    def reserve(to: str, channel: str) -> bool:
        asked.append((to, channel))
        return to in allowed

    runtime = VoiceRuntime(whisper, piper, RasaRestDialogue("http://127.0.0.1:9"), reserve_contact=reserve)
    config = TwilioVoiceConfig(auth_token=TOKEN, public_url="https://duebot.example.org", account_sid="AC0001",
                               from_number="+15557654321")
    dialer = TwilioDialer(config, runtime, Client("AC0001", TOKEN, http_client=LocalHttpClient()))
    try:
        assert dialer.call("+15550001111", sender="sub-7") == "CA9999"
        with pytest.raises(ContactNotAllowed):
            dialer.call("+15550002222")
    finally:
        api.shutdown()
    assert asked == [("+15550001111", "voice"), ("+15550002222", "voice")]
    assert len(FakeTwilioApi.calls) == 1, "a refused contact never reaches Twilio"
    placed = FakeTwilioApi.calls[0]
    assert placed["To"] == ["+15550001111"] and placed["From"] == ["+15557654321"]
    assert placed["Url"] == ["https://duebot.example.org/twilio/voice/twiml?direction=outbound&sender=sub-7"]
