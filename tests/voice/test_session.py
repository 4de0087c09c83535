"""A whole call through the real pipeline (real Whisper, real Piper, real HTTP dialogue), carrier in memory."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from duebot.channels.rasa_client import RasaUnavailable
from duebot.voice.dialogue import RasaRestDialogue
from duebot.voice.evidence import MemoryEvidenceSink, sha256
from duebot.voice.prompts import prompt
from duebot.voice.session import CallSession, VoiceConfig
from tests.voice.conftest import flite_pcm
from tests.voice.line import CallerLine, MemoryTransport, wait_until
from tests.voice.scripted_dialogue import DISCLOSURE, GREETING, IDENTITY, MENU

pytestmark = [pytest.mark.timeout(120), pytest.mark.anyio]


def bot_turn(session: CallSession, text: str):  # noqa: ANN201
    return next((t for t in session.turns if t.speaker == "bot" and t.text == text), None)


def cough() -> bytes:
    rng = np.random.default_rng(7)
    burst = rng.normal(0, 6000, 1200).astype(np.int16)  # 150 ms of loud broadband noise
    return burst.tobytes()


async def test_inbound_call_disclosure_barge_in_dtmf_and_evidence(whisper, piper, scripted_rasa) -> None:
    transport, sink = MemoryTransport(), MemoryEvidenceSink()
    dialogue = RasaRestDialogue(scripted_rasa.url)
    session = CallSession("call-in-1", transport, whisper, piper, dialogue, sink, sender="sub-42")
    async with CallerLine(session) as line:
        run = asyncio.create_task(session.run())
        # The caller talks over the legally required disclosure: it keeps playing.
        await wait_until(lambda: session.player.protected, timeout=30)
        await line.say(flite_pcm("Who is calling me"))
        await wait_until(lambda: bot_turn(session, DISCLOSURE) is not None)
        assert not bot_turn(session, DISCLOSURE).interrupted
        assert session.interruptions == []
        # The over-talk is still answered, after the prompts (the scripted bot says "I heard you.").
        await wait_until(lambda: bot_turn(session, "I heard you.") is not None and not session.player.busy, timeout=30)

        await line.say(flite_pcm("Yes it is me"))
        await wait_until(lambda: session.player.current is not None and session.player.current.text == MENU)
        await asyncio.sleep(1.0)
        await line.say(cough())  # a cough is not a barge-in
        await asyncio.sleep(0.5)
        assert session.interruptions == []
        speech_start = asyncio.get_running_loop().time()
        said_end = await line.say(flite_pcm("I would like to talk to an agent please."))
        assert len(session.interruptions) == 1 and session.interruptions[0].reason == "speech"
        cut_at = session.interruptions[0].t
        assert cut_at - speech_start < 0.8, "bot audio must stop while the caller is still speaking"
        assert transport.clears and transport.clears[0] >= cut_at
        assert transport.audio_between(cut_at + 0.1, said_end) == b"", "no bot audio after the barge-in"
        await wait_until(lambda: bot_turn(session, MENU) is not None)
        assert bot_turn(session, MENU).interrupted
        await wait_until(lambda: sum(t.text == "I heard you." for t in session.turns) == 2, timeout=30)

        session.feed_dtmf("1")  # a menu choice, sent after the inter-digit pause
        await wait_until(lambda: bot_turn(session, "You chose option 1.") is not None)
        for digit in "4472#":  # a verification code, terminated by '#'
            session.feed_dtmf(digit)
            await asyncio.sleep(0.15)
        await wait_until(lambda: bot_turn(session, "Thank you, code 4472 is confirmed.") is not None)

        await line.say(flite_pcm("Okay goodbye"))
        await asyncio.wait_for(transport.hung_up.wait(), 30)
        await asyncio.wait_for(run, 10)
    await dialogue.aclose()

    messages = scripted_rasa.messages("sub-42")
    assert messages[0] == "/greet"
    assert "call" in messages[1].lower()
    assert "yes" in messages[2].lower()
    assert "agent" in messages[3].lower()
    assert messages[4:6] == ["1", "4472"]
    assert "bye" in messages[6].lower()
    meta = scripted_rasa.requests[2]["metadata"]
    assert meta["input"] == "speech" and 0 < meta["asr_confidence"] <= 1 and meta["channel"] == "voice"
    assert scripted_rasa.requests[4]["metadata"]["input"] == "dtmf"
    assert session.dtmf_received == list("14472#")
    # Utterances followed by silence were recognised from the pause, before end of speech was certain.
    assert session.speculation_hits >= 1, (session.speculation_hits, session.speculation_misses)

    turns = [(body, payloads) for kind, body, payloads in sink.records if kind == "voice_turn"]
    caller = [b for b, _ in turns if b["speaker"] == "caller"]
    bot = [b for b, _ in turns if b["speaker"] == "bot"]
    assert [b["text"] for b in bot][:3] == [GREETING, DISCLOSURE, IDENTITY]
    assert bot[2]["uninterruptible"] is False and bot[1]["uninterruptible"] is True
    assert all(b["asr_confidence"] is not None for b in caller if b["input"] == "speech")
    for body, payloads in turns:
        if body["audio_sha256"]:
            assert sha256(payloads["audio_wav"]) == body["audio_sha256"]
        assert body["ended_at"] >= body["started_at"] >= 0
    menu = next(b for b in bot if b["text"] == MENU)  # answered while the bot was idle
    assert 0 < menu["latency_ms"] < 3000, menu["latency_ms"]
    print("latencies ms:", [(b["text"][:20], b["latency_ms"]) for b in bot if b["latency_ms"] is not None])
    call = sink.bodies("voice_call")[0]
    assert call["dtmf"] == "14472#" and call["interruptions"] == 1 and call["end_reason"] == "bot hangup"
    _, _, payloads = next(r for r in sink.records if r[0] == "voice_call")
    assert len(payloads["caller_wav"]) > 8000 * 2 * 5 and len(payloads["bot_wav"]) > 8000 * 2 * 5


async def test_low_confidence_amount_is_confirmed_back(whisper, piper, scripted_rasa) -> None:
    transport, sink = MemoryTransport(), MemoryEvidenceSink()
    dialogue = RasaRestDialogue(scripted_rasa.url)
    # confirm_below above 1.0: every amount or date counts as low confidence, so the path always runs.
    config = VoiceConfig(start_message="/short", confirm_below=1.01)
    session = CallSession("call-confirm", transport, whisper, piper, dialogue, sink, config)
    async with CallerLine(session) as line:
        run = asyncio.create_task(session.run())
        await wait_until(lambda: bot_turn(session, "I heard you.") is not None and not session.player.busy)
        await line.say(flite_pcm("I can pay fifty dollars."))
        await wait_until(lambda: any(t.text.startswith("Did you say") for t in session.turns if t.speaker == "bot"))
        question = next(t.text for t in session.turns if t.speaker == "bot" and t.text.startswith("Did you say"))
        assert "fifty" in question.lower() or "fifteen" in question.lower()
        assert len(scripted_rasa.requests) == 1, "nothing reaches the dialogue before the caller confirms"
        await wait_until(lambda: not session.player.busy)
        await line.say(flite_pcm("Yes."))
        await wait_until(lambda: len(scripted_rasa.requests) == 2)
        session.remote_hangup()
        await asyncio.wait_for(run, 10)
    await dialogue.aclose()
    confirmed = scripted_rasa.requests[1]
    assert "pay" in confirmed["message"].lower() and confirmed["metadata"]["confirmed"] is True


async def test_outbound_voicemail_gets_only_the_neutral_message(whisper, piper, scripted_rasa) -> None:
    transport, sink = MemoryTransport(), MemoryEvidenceSink()
    dialogue = RasaRestDialogue(scripted_rasa.url)
    session = CallSession("call-vm", transport, whisper, piper, dialogue, sink, direction="outbound")
    async with CallerLine(session) as line:
        run = asyncio.create_task(session.run())
        await asyncio.sleep(0.3)
        await line.say(flite_pcm("Hi, you have reached Sam. I can't come to the phone right now. "
                                 "Please leave a message after the tone."))
        await asyncio.wait_for(transport.hung_up.wait(), 40)
        await asyncio.wait_for(run, 10)
    await dialogue.aclose()
    assert session.answered_by == "machine"
    assert scripted_rasa.requests == [], "the dialogue (and so the debt) is never reached on a voicemail"
    bot = [t for t in session.turns if t.speaker == "bot"]
    assert [t.text for t in bot] == [prompt("voicemail", "en")] and not bot[0].interrupted
    assert "debt" not in bot[0].text.lower() and "$" not in bot[0].text
    assert sink.bodies("voice_voicemail") and sink.bodies("voice_call")[0]["answered_by"] == "machine"


async def test_outbound_person_answering_starts_the_dialogue(whisper, piper, scripted_rasa) -> None:
    transport, sink = MemoryTransport(), MemoryEvidenceSink()
    dialogue = RasaRestDialogue(scripted_rasa.url)
    session = CallSession("call-human", transport, whisper, piper, dialogue, sink, direction="outbound")
    async with CallerLine(session) as line:
        run = asyncio.create_task(session.run())
        await asyncio.sleep(0.3)
        await line.say(flite_pcm("Who is calling me"))
        await wait_until(lambda: bot_turn(session, GREETING) is not None)
        session.remote_hangup()
        await asyncio.wait_for(run, 10)
    await dialogue.aclose()
    assert session.answered_by == "human"
    assert scripted_rasa.messages()[0] == "/greet"


async def test_dialogue_retries_once_when_rasa_closed_the_connection_unanswered() -> None:
    """The keep-alive race: the server drops a connection without answering; the turn is sent again once."""
    connections: list[int] = []
    answered = b'[{"recipient_id": "s", "text": "Hello."}]'

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        if len(connections) == 1 or fail_always:
            writer.close()  # closed with no response
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(answered), answered))
        await writer.drain()
        writer.close()

    fail_always = False
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    dialogue = RasaRestDialogue(url)
    try:
        replies = await dialogue.respond("s", "hi", {})
        assert [r.text for r in replies] == ["Hello."] and len(connections) == 2
        fail_always, connections[:] = True, []
        with pytest.raises(RasaUnavailable):  # one retry only; the session then ends the call politely
            await dialogue.respond("s", "hi", {})
        assert len(connections) == 2
    finally:
        await dialogue.aclose()
        server.close()
