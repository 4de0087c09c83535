"""Twilio voice fails closed (issue 18): each test performs an attack on the webhook or the Media Stream and fails if
the hole reopens. No speech models: a tone for a voice, a recording dialogue; the router and the session are real."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from duebot.channels.twilio_voice.router import (
    MemoryStreamTokens,
    RedisStreamTokens,
    StreamGrant,
    TwilioDialer,
    TwilioVoiceConfig,
    create_twilio_voice_router,
)
from duebot.voice.events import BotReply, Transcript
from duebot.voice.evidence import MemoryEvidenceSink
from duebot.voice.identity import conversation_id_for
from duebot.voice.runtime import VoiceRuntime
from duebot.voice.session import VoiceConfig
from tests.voice.line import MemoryTransport

pytestmark = pytest.mark.timeout(60)
TOKEN = "test-auth-token"
PUBLIC = "https://duebot.example.org/base"
CALLER = "+15551230000"
FORGED = "+15559999999"
KEY = b"k" * 32  # the voice id key (the `voice` secret in production)


def sign(url: str, params: dict[str, str], key: str = TOKEN) -> str:
    """Twilio's scheme, written independently: HMAC-SHA1 over the URL plus sorted key+value pairs."""
    payload = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(key.encode(), payload.encode(), hashlib.sha1).digest()).decode()


class ToneTts:
    name = "tone"

    def sentence(self, sentence: str) -> bytes:
        t = np.arange(int(8000 * 0.1)) / 8000
        return (np.sin(2 * np.pi * 440 * t) * 3000).astype(np.int16).tobytes()


class SilentAsr:
    name = "silent"

    def stream(self, grammar: list[str] | None = None) -> Any:
        class Stream:
            def accept(self, pcm: bytes) -> None:
                return None

            def finish(self) -> Transcript:
                return Transcript("", 0.0, True, "silent")

        return Stream()


class RecordingDialogue:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def respond(self, sender: str, text: str, metadata: dict[str, Any]) -> list[BotReply]:
        self.calls.append((sender, text, metadata))
        return [BotReply("Hello.")]


class Line:
    def __init__(self, client: TestClient, config: TwilioVoiceConfig, runtime: VoiceRuntime,
                 dialogue: RecordingDialogue, sink: MemoryEvidenceSink, tokens: Any) -> None:
        self.client, self.config, self.runtime = client, config, runtime
        self.dialogue, self.sink, self.tokens = dialogue, sink, tokens

    def twiml(self, form: dict[str, str], query: str = "") -> str:
        """Twilio's signed call webhook; returns the stream URL of the TwiML answer."""
        url = self.config.twiml_url + (f"?{query}" if query else "")
        response = self.client.post(f"/twilio/voice/twiml{'?' + query if query else ''}", data=form,
                                    headers={"X-Twilio-Signature": sign(url, form)})
        assert response.status_code == 200, response.text
        match = re.search(r'<Stream url="([^"]+)">', response.text)
        assert match
        return match.group(1)

    def path(self, stream_url: str) -> str:
        return "/twilio/voice/stream/" + stream_url.rsplit("/", 1)[1]


def start_message(call_sid: str, **custom: str) -> dict[str, Any]:
    return {"event": "start", "sequenceNumber": "1", "streamSid": "MZ0001", "start": {
        "accountSid": "AC0001", "streamSid": "MZ0001", "callSid": call_sid, "tracks": ["inbound"],
        "customParameters": custom, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}


STOP = {"event": "stop", "streamSid": "MZ0001", "stop": {"accountSid": "AC0001", "callSid": "CA0001"}}


@pytest.fixture
def line() -> Iterator[Line]:
    dialogue, sink = RecordingDialogue(), MemoryEvidenceSink()
    runtime = VoiceRuntime(SilentAsr(), ToneTts(), dialogue, sink,
                           VoiceConfig(start_message="/start", hangup_tail=0.05), id_key=KEY)
    config = TwilioVoiceConfig(auth_token=TOKEN, public_url=PUBLIC)
    tokens = MemoryStreamTokens()
    app = FastAPI()
    app.include_router(create_twilio_voice_router(config, runtime, tokens))
    with TestClient(app) as client:
        yield Line(client, config, runtime, dialogue, sink, tokens)


def refused(client: TestClient, path: str, headers: dict[str, str] | None = None) -> bool:
    """The handshake is refused (closed before it is accepted: HTTP 403 to the caller, close code 1008)."""
    try:
        with client.websocket_connect(path, headers=headers or {}):
            return False
    except WebSocketDisconnect as exc:
        return exc.code == 1008


def call(line: Line, stream_url: str, call_sid: str = "CA0001", **custom: str) -> None:
    """A whole (short) call over the stream: start, the bot's greeting, stop."""
    with line.client.websocket_connect(line.path(stream_url),
                                       headers={"X-Twilio-Signature": sign(stream_url, {})}) as ws:
        ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        ws.send_json(start_message(call_sid, **custom))
        deadline = time.monotonic() + 20
        while not any(text == "/start" for _, text, _ in line.dialogue.calls):
            assert time.monotonic() < deadline, "the session never started"
            time.sleep(0.02)
        ws.send_json(STOP)
        with pytest.raises(WebSocketDisconnect):
            while True:
                ws.receive_text()  # the bot's audio, until the server closes the stream


# ---- no auth token: nothing is served ------------------------------------------------------------


def test_without_an_auth_token_every_voice_route_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    """Attack: with TWILIO_AUTH_TOKEN unset the HMAC key is empty, so anyone can compute a "valid" signature."""
    runtime = VoiceRuntime(SilentAsr(), ToneTts(), RecordingDialogue(), id_key=KEY)
    config = TwilioVoiceConfig(auth_token="", public_url=PUBLIC)
    app = FastAPI()
    with caplog.at_level(logging.ERROR, "duebot.channels.twilio_voice.router"):
        app.include_router(create_twilio_voice_router(config, runtime, MemoryStreamTokens()))
    assert any("TWILIO_AUTH_TOKEN is not set" in r.getMessage() for r in caplog.records)
    form = {"CallSid": "CA0001", "From": CALLER, "To": "+15559870000"}
    with TestClient(app) as client:
        answer = client.post("/twilio/voice/twiml", data=form,
                             headers={"X-Twilio-Signature": sign(config.twiml_url, form, key="")})
        assert answer.status_code == 503 and "TWILIO_AUTH_TOKEN" in answer.text
        for path, url in (("/twilio/voice/stream", config.stream_url),
                          ("/twilio/voice/stream/abc", config.stream_url_for("abc"))):
            assert refused(client, path, {"X-Twilio-Signature": sign(url, {}, key="")})
    with pytest.raises(RuntimeError, match="TWILIO_AUTH_TOKEN"):
        TwilioDialer(config, runtime, client=object())


def test_the_web_service_starts_without_the_token_and_refuses_voice(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    from duebot import clients, web

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("DUEBOT_TWILIO_VOICE", "1")
    monkeypatch.setenv("DUEBOT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DUEBOT_DB_URL", f"sqlite:///{tmp_path / 'duebot.sqlite3'}")
    monkeypatch.setattr(clients, "evidence_inbox", lambda client=None: None)  # no Redis here
    monkeypatch.setattr(VoiceRuntime, "from_env", classmethod(
        lambda cls, evidence=None, **_: cls(SilentAsr(), ToneTts(), RecordingDialogue(), id_key=KEY)))
    with TestClient(web.create_app()) as client:
        assert client.get("/health").status_code == 200
        form = {"CallSid": "CA0001", "From": CALLER}
        forged = sign("http://127.0.0.1:8080/twilio/voice/twiml", form, key="")
        assert client.post("/twilio/voice/twiml", data=form, headers={"X-Twilio-Signature": forged}).status_code == 503


# ---- the stream token --------------------------------------------------------------------------------


def test_the_old_fixed_url_signature_opens_no_stream(line: Line) -> None:
    """Attack: the handshake signature used to cover only the fixed /stream URL, so one captured handshake opened
    streams forever. Neither the bare URL nor a token URL signed as the bare one is accepted now."""
    bare = {"X-Twilio-Signature": sign(line.config.stream_url, {})}
    assert refused(line.client, "/twilio/voice/stream", bare)
    stream_url = line.twiml({"CallSid": "CA0001", "From": CALLER})
    assert refused(line.client, line.path(stream_url), bare)
    assert refused(line.client, line.path(stream_url))  # unsigned
    call(line, stream_url)  # the token was not spent by the refused attempts: Twilio's own handshake works


def test_a_replayed_stream_handshake_is_refused(line: Line) -> None:
    """Attack: replay a captured, correctly signed handshake (Twilio signatures carry no nonce)."""
    stream_url = line.twiml({"CallSid": "CA0001", "From": CALLER})
    call(line, stream_url)
    headers = {"X-Twilio-Signature": sign(stream_url, {})}
    assert refused(line.client, line.path(stream_url), headers)
    # replaying the signed webhook too mints a fresh token, whose URL the captured signature does not cover
    fresh = line.twiml({"CallSid": "CA0001", "From": CALLER})
    assert fresh != stream_url
    assert refused(line.client, line.path(fresh), headers)
    assert [text for _, text, _ in line.dialogue.calls].count("/start") == 1  # one call, never a second session


def test_an_expired_stream_token_is_refused(line: Line) -> None:
    line.tokens.clock = lambda: time.time() + line.config.stream_token_ttl + 1
    stream_url = line.twiml({"CallSid": "CA0001", "From": CALLER})
    assert refused(line.client, line.path(stream_url), {"X-Twilio-Signature": sign(stream_url, {})})


def test_a_token_minted_for_another_call_is_refused(line: Line) -> None:
    """Attack: a stream signed and minted for call A carries the `start` of call B (another caller's audio, or a
    session that would talk as A's subscriber to B)."""
    stream_url = line.twiml({"CallSid": "CA-A", "From": CALLER})
    with line.client.websocket_connect(line.path(stream_url),
                                       headers={"X-Twilio-Signature": sign(stream_url, {})}) as ws:
        ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        ws.send_json(start_message("CA-B"))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1008
    assert line.dialogue.calls == [] and line.sink.records == []  # no session was ever created


def test_stream_tokens_in_redis_are_single_use_and_expire(redis_client: redis.Redis) -> None:
    tokens = RedisStreamTokens(redis_client)
    grant = StreamGrant("CA0001", "inbound", "voice-abc", time.time() + 120)
    token = tokens.mint(grant)
    assert not any(token.encode() in key for key in redis_client.keys("*"))  # stored by its hash only
    assert tokens.take(token) == grant
    assert tokens.take(token) is None  # single use
    short = tokens.mint(StreamGrant("CA0002", "inbound", "voice-abc", time.time() + 0.05))
    time.sleep(0.2)
    assert tokens.take(short) is None


# ---- who the call is with --------------------------------------------------------------------------


def test_a_forged_sender_in_the_stream_is_ignored_for_the_signed_from(line: Line) -> None:
    """Attack: the stream's `start` names another number (and direction) in its customParameters, to have the
    session talk to the bot as that subscriber. The session takes who the call is with from the signed webhook."""
    stream_url = line.twiml({"CallSid": "CA0001", "From": CALLER, "To": "+15559870000"})
    call(line, stream_url, sender=FORGED, direction="outbound", From=FORGED)
    signed = conversation_id_for(CALLER, KEY)
    assert {sender for sender, _, _ in line.dialogue.calls} == {signed}
    assert signed != conversation_id_for(FORGED, KEY)
    (record,) = line.sink.bodies("voice_call")
    assert record["sender"] == signed and record["direction"] == "inbound" and record["call_id"] == "CA0001"
    assert not re.search(r"\d", signed)  # the id holds no digit at all, so none of the caller's


def test_outbound_calls_name_neither_number_in_any_url(line: Line) -> None:
    placed: list[dict[str, Any]] = []

    class Calls:
        def create(self, **kwargs: Any) -> Any:
            placed.append(kwargs)
            return type("Call", (), {"sid": "CA0002"})()

    dialer = TwilioDialer(line.config, line.runtime, client=type("Client", (), {"calls": Calls()})())
    dialer.call(CALLER)
    dialer.call(CALLER, sender="voice:A-1")
    queries = [p["url"].split("?", 1)[1] for p in placed]
    assert queries == ["direction=outbound", "direction=outbound&sender=voice%3AA-1"]
    # the webhook of the outbound call takes the callee from the signed To
    stream_url = line.twiml({"CallSid": "CA0002", "From": "+15557654321", "To": CALLER}, query="direction=outbound")
    call(line, stream_url, call_sid="CA0002")
    (record,) = line.sink.bodies("voice_call")
    assert record["sender"] == conversation_id_for(CALLER, KEY) and record["direction"] == "outbound"


@pytest.mark.parametrize("spelling", [CALLER, "+1 (555) 123-0000", "15551230000", "tel:+15551230000",
                                      "sip:+15551230000@carrier.example"])
def test_a_voice_conversation_id_holds_no_digit_of_the_number(spelling: str) -> None:
    """However a carrier spells the caller (SIP passes its From user as the sender), the session, its Rasa sender id
    and every evidence record go by an opaque id: never a digit of the number."""
    runtime = VoiceRuntime(SilentAsr(), ToneTts(), RecordingDialogue(), id_key=KEY)
    for session in (runtime.session("c1", MemoryTransport(), direction="inbound", sender=spelling),
                    runtime.session("c2", MemoryTransport(), direction="inbound", caller=spelling)):
        assert session.sender.startswith("voice-") and not re.search(r"\d", session.sender)
        assert session.recorder.sender == session.sender
    assert runtime.conversation_id(caller=spelling) == runtime.conversation_id(caller=CALLER)  # stable per number
    assert runtime.conversation_id(sender="voice:A-1") == "voice:A-1"  # a carrier's own opaque id is kept
