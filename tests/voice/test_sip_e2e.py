"""Real SIP calls on loopback: baresip (the subscriber's phone) ⇄ kamailio (registrar/proxy) ⇄ duebot (rfcvoip).

The phone plays a recorded reply (flite voice) and records what it hears; the test asserts both what the
bot heard and what the phone heard.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from duebot.channels.sip.channel import SipAgent, SipConfig
from duebot.voice.audio import read_wav_8k, wav_bytes
from duebot.voice.dialogue import RasaRestDialogue
from duebot.voice.evidence import MemoryEvidenceSink
from duebot.voice.runtime import VoiceRuntime
from duebot.voice.session import VoiceConfig
from tests.conftest import free_port
from tests.voice.conftest import flite_pcm
from tests.voice.scripted_dialogue import MENU
from tests.voice.sip_peers import Baresip, start_kamailio

pytestmark = pytest.mark.timeout(150)


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(8000 * seconds)


def script_wav(path: Path, parts: list[tuple[float, str]], total: float) -> Path:
    """Caller audio: each (start second, text) spoken by flite at that moment, silence elsewhere."""
    pcm = bytearray()
    for at, text in parts:
        pcm += silence(max(0.0, at - len(pcm) / 16000))
        pcm += flite_pcm(text)
    pcm += silence(max(0.0, total - len(pcm) / 16000))
    path.write_bytes(wav_bytes(bytes(pcm)))
    return path


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.fixture
def kamailio(tmp_path: Path) -> Iterator[int]:
    service, port = start_kamailio(tmp_path)
    try:
        yield port
    finally:
        from duebot.processes import stop

        stop(service, grace=3)


def make_agent(kamailio: int, loop, whisper, piper, scripted_rasa, sink, **config):  # noqa: ANN001, ANN003, ANN201
    runtime = VoiceRuntime(whisper, piper, RasaRestDialogue(scripted_rasa.url), sink,
                           VoiceConfig(start_message="/sip", **config))
    rtp = free_port() // 2 * 2
    agent = SipAgent(SipConfig("127.0.0.1", kamailio, "duebot", "none", local_port=free_port(), rtp_low=rtp,
                               rtp_high=rtp + 20), runtime, loop)
    agent.start()
    return agent


def heard_by_phone(whisper, phone: Baresip) -> str:  # noqa: ANN001
    return whisper.transcribe(read_wav_8k(str(phone.recording()))).text.lower()


def test_phone_calls_duebot_barge_in_and_dtmf(tmp_path: Path, kamailio: int, loop, whisper, piper,
                                              scripted_rasa) -> None:
    source = script_wav(tmp_path / "caller.wav",
                        [(4.5, "Yes it is me"), (12.0, "I would like to talk to an agent please")], total=40)
    sink = MemoryEvidenceSink()
    agent = make_agent(kamailio, loop, whisper, piper, scripted_rasa, sink)
    phone = Baresip(tmp_path, kamailio, source)
    try:
        phone.start()
        phone.wait_registered()
        phone.command("dial", f"sip:duebot@127.0.0.1:{kamailio}")
        phone.wait_event("CALL_ESTABLISHED", timeout=15)
        session = _wait_session(agent)
        _wait(lambda: any("agent" in m.lower() for m in scripted_rasa.messages()), 30)
        _wait(lambda: any(t.text == "I heard you." and t.speaker == "bot" for t in session.turns), 20)
        phone.command("sndcode", "1")
        _wait(lambda: "1" in scripted_rasa.messages(), 10)
        _wait(lambda: any(t.text == "You chose option 1." for t in session.turns), 15)
        phone.command("hangup")
        phone.wait_event("CALL_CLOSED", timeout=10)
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(session.ended.wait(), 10), loop).result(15)
    finally:
        phone.stop()
        agent.stop()
    messages = scripted_rasa.messages()
    assert messages[0] == "/sip"
    assert "yes" in messages[1].lower() and "agent" in messages[2].lower() and messages[3] == "1"
    assert [i.reason for i in session.interruptions] == ["speech"]
    menu = next(t for t in session.turns if t.text == MENU)
    assert menu.interrupted
    heard = heard_by_phone(whisper, phone)
    assert "who you are" in heard and "balance" in heard, heard
    assert "payment plan" not in heard, "the menu was cut off by the barge-in"
    assert sink.bodies("voice_call")[0]["dtmf"] == "1"


def test_duebot_calls_the_phone_and_both_hang_up(tmp_path: Path, kamailio: int, loop, whisper, piper,
                                                  scripted_rasa) -> None:
    source = script_wav(tmp_path / "callee.wav", [(0.6, "Hello who is this"), (7.0, "Okay goodbye")], total=30)
    sink = MemoryEvidenceSink()
    reserved: list[tuple[str, str]] = []
    agent = make_agent(kamailio, loop, whisper, piper, scripted_rasa, sink)
    agent.runtime.reserve_contact = lambda to, channel: reserved.append((to, channel)) or True
    phone = Baresip(tmp_path, kamailio, source, user="sub", auto_answer=True)
    try:
        phone.start()
        phone.wait_registered()
        future = asyncio.run_coroutine_threadsafe(agent.call("sub"), loop)
        session = future.result(20)
        phone.wait_event("CALL_CLOSED", timeout=40)  # duebot hangs up after "Goodbye."
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(session.ended.wait(), 10), loop).result(15)
    finally:
        phone.stop()
        agent.stop()
    assert reserved == [("sub", "voice")]
    assert session.answered_by == "human"
    assert session.end_reason == "bot hangup"
    assert "bye" in scripted_rasa.messages()[-1].lower()
    heard = heard_by_phone(whisper, phone)
    assert "who you are" in heard and "goodbye" in heard, heard


def _wait_session(agent: SipAgent, timeout: float = 15.0):  # noqa: ANN202
    _wait(lambda: bool(agent.sessions), timeout)
    return next(iter(agent.sessions.values()))


def _wait(predicate, timeout: float) -> None:  # noqa: ANN001
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
