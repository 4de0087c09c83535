"""The session's stages one by one, and the one way out when any of them fails (fake engines: no models loaded)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import numpy as np
import pytest

from duebot.evidence.records import validate
from duebot.voice.confirm import Ask, Forward, ReadBack
from duebot.voice.dtmf import DtmfCollector
from duebot.voice.errors import AsrError, DialogueError, TtsError
from duebot.voice.event_queue import CallEventQueue
from duebot.voice.events import BotReply, CallEnded, DtmfEntry, SpeechStarted, StageFailed, Transcript
from duebot.voice.evidence import InboxEvidenceSink, MemoryEvidenceSink
from duebot.voice.player import Player, Utterance
from duebot.voice.prompts import KINDS, load_prompts, prompt
from duebot.voice.recorder import CallRecorder
from duebot.voice.session import CallSession, VoiceConfig
from tests.voice.conftest import flite_pcm
from tests.voice.line import CallerLine, MemoryTransport, wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.anyio]
GREETING = "Hello, this is a test call."


class ToneTts:
    """A TTS that says every sentence as a short tone; `fail_on` sentences (or all) raise like a broken voice."""

    name = "tone"

    def __init__(self, fail_on: set[str] | None = None, fail_all: bool = False) -> None:
        self.fail_on = fail_on or set()
        self.fail_all = fail_all
        self.said: list[str] = []

    def sentence(self, sentence: str) -> bytes:
        if self.fail_all or sentence in self.fail_on:
            raise RuntimeError("voice model crashed")
        self.said.append(sentence)
        t = np.arange(int(8000 * 0.15)) / 8000
        return (np.sin(2 * np.pi * 440 * t) * 3000).astype(np.int16).tobytes()


class _Stream:
    def __init__(self, text: str | None) -> None:
        self.text = text

    def accept(self, pcm: bytes) -> Transcript | None:
        return None

    def finish(self) -> Transcript:
        if self.text is None:
            raise RuntimeError("recognizer crashed")
        return Transcript(self.text, 0.9, True, "fake")


class FakeAsr:
    """Hears `text` in every utterance, or fails when `text` is None."""

    name = "fake-asr"

    def __init__(self, text: str | None) -> None:
        self.text = text

    def stream(self, grammar: list[str] | None = None) -> _Stream:
        return _Stream(self.text)


class FakeDialogue:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.messages: list[str] = []

    async def respond(self, sender: str, text: str, metadata: dict[str, Any]) -> list[BotReply]:
        if self.fail:
            raise ConnectionError("Rasa is down")
        self.messages.append(text)
        return [BotReply(GREETING)] if text == "/start" else [BotReply("I heard you.")]


def session_for(tts: ToneTts, asr: FakeAsr, dialogue: FakeDialogue, **kwargs: Any) -> tuple[CallSession, Any, Any]:
    transport, sink = MemoryTransport(), MemoryEvidenceSink()
    config = VoiceConfig(start_message="/start", hangup_tail=0.05, amd_timeout=0.5, voicemail_wait_silence=0.2)
    return CallSession("call-t", transport, asr, tts, dialogue, sink, config, **kwargs), transport, sink


def bot_texts(session: CallSession) -> list[str]:
    return [t.text for t in session.turns if t.speaker == "bot"]


def heard_whole(session: CallSession, text: str) -> bool:
    """The bot turn went out on the wire, and all of it."""
    return any(t.speaker == "bot" and t.text == text and t.audio_sha256 and not t.interrupted for t in session.turns)


# ---- one way out ------------------------------------------------------------------------------------

async def test_a_failing_asr_ends_the_call_with_the_apology() -> None:
    dialogue = FakeDialogue()
    session, transport, sink = session_for(ToneTts(), FakeAsr(None), dialogue)
    async with CallerLine(session) as line:
        run = asyncio.create_task(session.run())
        await wait_until(lambda: heard_whole(session, GREETING) and not session.speaking)
        await line.say(flite_pcm("I can pay on Friday"))
        await asyncio.wait_for(transport.hung_up.wait(), 20)
        await asyncio.wait_for(run, 10)
    assert bot_texts(session) == [GREETING, prompt("technical_trouble")]
    assert heard_whole(session, prompt("technical_trouble"))
    assert dialogue.messages == ["/start"], "what the ASR could not hear never reaches the dialogue"
    assert isinstance(session.error, AsrError)
    call = sink.bodies("voice_call")[0]
    assert (call["error"], call["end_reason"]) == ("asr_failed", "bot hangup")


async def test_a_tts_failure_mid_call_is_apologised_for_and_the_call_ends() -> None:
    tts = ToneTts(fail_on={GREETING})  # this sentence breaks the voice; the apology still synthesises
    session, transport, sink = session_for(tts, FakeAsr("hello"), FakeDialogue())
    await asyncio.wait_for(session.run(), 20)
    assert transport.hung_up.is_set()
    assert bot_texts(session) == [GREETING, prompt("technical_trouble")]
    assert heard_whole(session, prompt("technical_trouble")) and not heard_whole(session, GREETING)
    call = sink.bodies("voice_call")[0]
    assert (call["error"], call["end_reason"]) == ("tts_failed", "bot hangup")


async def test_a_broken_tts_ends_the_call_cleanly_with_the_error_recorded() -> None:
    session, transport, sink = session_for(ToneTts(fail_all=True), FakeAsr("hello"), FakeDialogue())
    await asyncio.wait_for(session.run(), 20)
    assert transport.hung_up.is_set() and session.ended.is_set()
    assert transport.frames == [], "nothing could be said"
    assert isinstance(session.error, TtsError) and session.error.code == "tts_failed"
    call = sink.bodies("voice_call")[0]
    assert (call["error"], call["end_reason"]) == ("tts_failed", "tts_failed")


async def test_a_dialogue_outage_is_apologised_for_in_the_call_language() -> None:
    session, transport, sink = session_for(ToneTts(), FakeAsr("hello"), FakeDialogue(fail=True), language="zh")
    await asyncio.wait_for(session.run(), 20)
    apology = prompt("technical_trouble", "zh")
    assert re.search(r"[\u4e00-\u9fff]", apology)
    assert bot_texts(session) == [apology] and heard_whole(session, apology)
    assert isinstance(session.error, DialogueError)
    assert (sink.bodies("voice_call")[0]["error"], session.end_reason) == ("dialogue_failed", "bot hangup")


async def test_voicemail_with_a_broken_tts_hangs_up_and_claims_no_message_was_left() -> None:
    session, transport, sink = session_for(ToneTts(fail_all=True), FakeAsr("please leave a message after the tone"),
                                           FakeDialogue(), direction="outbound")
    async with CallerLine(session) as line:
        run = asyncio.create_task(session.run())
        await line.say(flite_pcm("You have reached the voice mailbox of Sam please leave a message after the tone"))
        await asyncio.wait_for(run, 20)
    assert session.answered_by == "machine" and transport.hung_up.is_set()
    assert sink.bodies("voice_voicemail") == []
    assert sink.bodies("voice_call")[0]["error"] == "tts_failed"


# ---- the stages -------------------------------------------------------------------------------------

async def test_system_events_jump_the_queue_and_the_rest_keep_their_order() -> None:
    queue = CallEventQueue()
    failed = StageFailed(3.0, TtsError())
    for event in (SpeechStarted(1.0), DtmfEntry("12", 2.0), failed, CallEnded(4.0, "remote hangup")):
        queue.put(event)
    got = [await queue.get() for _ in range(4)]
    assert got[0] is failed
    assert [type(e) for e in got[1:]] == [SpeechStarted, DtmfEntry, CallEnded]


async def test_keyed_digits_become_one_entry_at_hash_or_after_a_pause() -> None:
    entries: list[DtmfEntry] = []
    dtmf = DtmfCollector(entries.append, 0.1, time.monotonic)
    for digit in "4472#":
        dtmf.key(digit)
    assert [e.digits for e in entries] == ["4472"]
    dtmf.key("1")
    await asyncio.sleep(0.2)
    assert [e.digits for e in entries] == ["4472", "1"]
    dtmf.key("2")
    dtmf.close()  # the call ended: the half-keyed entry is dropped
    await asyncio.sleep(0.2)
    assert len(entries) == 2 and dtmf.received == list("4472#12")


def test_read_back_holds_a_doubtful_amount_until_the_caller_says_yes() -> None:
    stage = ReadBack(confirm_below=0.75)
    assert stage.step("I can pay $50", {"input": "speech"}, 0.9) == Forward("I can pay $50", {"input": "speech"})
    assert stage.step("I can pay $50", {"input": "speech"}, 0.5) == Ask("Did you say fifty dollars?")
    assert stage.grammar is not None
    assert stage.step("hmm", {"input": "speech"}, 0.9) == Ask(prompt("say_yes_or_no"))
    assert stage.step("1", {"input": "dtmf"}, None) == Forward("I can pay $50", {"input": "speech", "confirmed": True})
    assert stage.grammar is None
    zh = ReadBack(confirm_below=0.75, language="zh")
    assert zh.step("$50", {"input": "speech"}, 0.5) == Ask(prompt("did_you_say", "zh", spoken="$50"))
    assert zh.step("2", {"input": "dtmf"}, None) == Ask(prompt("say_again", "zh"))


def test_every_language_has_every_prompt_with_the_same_placeholders() -> None:
    prompts = load_prompts()
    for kind in KINDS:
        en, zh = prompts["en"][kind], prompts["zh"][kind]
        assert set(re.findall(r"{(\w+)}", en)) == set(re.findall(r"{(\w+)}", zh)), kind
        assert re.search(r"[\u4e00-\u9fff]", zh) and not re.search(r"[A-Za-z]{3}", re.sub(r"{\w+}", "", zh)), kind
    assert "debt" not in prompt("voicemail").lower()


def test_records_carry_the_evidence_logs_own_kinds_and_payload_names() -> None:
    submitted: list[tuple[str, dict[str, Any], str | None, dict[str, bytes] | None]] = []

    class Inbox:
        def submit(self, kind: str, body: dict[str, Any], *, conversation_id: str | None = None,
                   payloads: dict[str, bytes] | None = None) -> None:
            validate(kind, body, conversation_id)  # the log's own check: unknown kinds are refused
            submitted.append((kind, body, conversation_id, payloads))

    recorder = CallRecorder(InboxEvidenceSink(Inbox()), "call-r", "voice:A-1", "inbound", time.monotonic)
    recorder.caller("hello", "speech", 0.9, b"\x01\x00" * 800, 0.0, 0.1)
    recorder.bot(Utterance("Hi.", False, pcm=bytearray(b"\x01\x00" * 800), first_frame_at=time.monotonic()), None)
    recorder.voicemail("call us")
    recorder.call(Player(MemoryTransport().send_audio), answered_by="machine", end_reason="bot hangup", dtmf="",
                  interruptions=0, error=None)
    assert [kind for kind, *_ in submitted] == ["voice_turn", "voice_turn", "voice_voicemail", "voice_call"]
    # the Rasa sender id is the conversation (the voicemail record, carrying no sender, files under the call id)
    assert [conversation for _, _, conversation, _ in submitted] == ["voice:A-1"] * 2 + ["call-r", "voice:A-1"]
    assert [set(payloads or {}) for *_, payloads in submitted] == [{"audio_wav"}] * 2 + [set(), {"caller_wav",
                                                                                             "bot_wav"}]
