"""One call, carrier-independent: caller audio and keys in, bot audio out, every turn to the evidence log.

The carrier adapter (SIP, Twilio) owns the wire: it calls `feed_audio` / `feed_dtmf` / `remote_hangup`
on the event loop and implements `CallTransport` for the way back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from duebot.voice.amd import AnsweredBy, classify_greeting
from duebot.voice.asr import AsrEngine
from duebot.voice.audio import FRAME_BYTES_PCM, ulaw_to_pcm, wav_bytes
from duebot.voice.confirm import YES_NO_GRAMMAR, confirmation_question, needs_confirmation, yes_or_no
from duebot.voice.dialogue import Dialogue
from duebot.voice.events import (
    BotReply,
    CallEnded,
    DtmfDigit,
    Interrupted,
    SpeechEnded,
    SpeechPaused,
    SpeechStarted,
    Transcript,
)
from duebot.voice.evidence import EvidenceSink, sha256
from duebot.voice.normalize import normalize_for_speech, split_sentences
from duebot.voice.player import Player, Utterance
from duebot.voice.tts import PiperTts
from duebot.voice.vad import Endpointer, EndpointerConfig

log = logging.getLogger(__name__)

DEFAULT_VOICEMAIL_MESSAGE = ("Hello, this is an automated message from your phone service provider. "
                             "Please call us back at your convenience. Thank you, goodbye.")


class CallTransport(Protocol):
    async def send_audio(self, ulaw: bytes) -> None:
        """Send one 20 ms frame of 8 kHz µ-law."""

    async def clear(self) -> None:
        """Drop whatever bot audio the carrier still has queued (barge-in)."""

    async def hangup(self) -> None: ...


class MarkingTransport(CallTransport, Protocol):
    async def mark(self, name: str) -> None:
        """Ask the carrier to report when playback reaches this point (Twilio `mark`)."""


@dataclass
class VoiceConfig:
    start_message: str = "/greet"  # what the dialogue receives when the call connects
    endpointer: EndpointerConfig = field(default_factory=EndpointerConfig)
    barge_in_min_speech: float = 0.35  # voiced seconds before caller speech stops the bot (not a cough)
    min_utterance: float = 0.2  # shorter voiced bursts (a cough, a click) never reach the ASR
    dtmf_interdigit_timeout: float = 1.0  # digits are sent together after this pause or '#'
    detect_voicemail: bool = True  # outbound calls only
    amd_timeout: float = 4.0  # no greeting within this: treat as a person who waits silently
    voicemail_message: str = DEFAULT_VOICEMAIL_MESSAGE  # neutral: never the debt (from the policy pack)
    voicemail_wait_silence: float = 1.0  # wait for the greeting (and beep) to end before speaking
    confirm_below: float = 0.75  # ASR confidence under which amounts/dates are read back
    max_call_seconds: float = 900.0
    # Silence before BYE: the phone's jitter buffer still holds the last word when the bot's audio has left.
    hangup_tail: float = 0.6


@dataclass
class TurnRecord:
    speaker: Literal["caller", "bot"]
    text: str
    started_at: float
    ended_at: float
    channel_input: str = "speech"
    asr_confidence: float | None = None
    latency: float | None = None  # caller's end of speech → first bot frame on the wire
    interrupted: bool = False
    audio_sha256: str = ""


class CallSession:
    def __init__(self, call_id: str, transport: CallTransport, asr: AsrEngine, tts: PiperTts, dialogue: Dialogue,
                 evidence: EvidenceSink, config: VoiceConfig | None = None, *, direction: str = "inbound",
                 sender: str | None = None, metadata: dict[str, Any] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.call_id = call_id
        self.sender = sender or call_id
        self.transport = transport
        self.asr = asr
        self.tts = tts
        self.dialogue = dialogue
        self.evidence = evidence
        self.config = config or VoiceConfig()
        self.direction = direction
        self.metadata = dict(metadata or {})
        self.clock = clock
        self.endpointer = Endpointer(self.config.endpointer)
        self.player = Player(self._send_frame)
        self.events: asyncio.Queue[object] = asyncio.Queue()
        self.turns: list[TurnRecord] = []
        self.heard: list[Transcript] = []
        self.dtmf_received: list[str] = []
        self.interruptions: list[Interrupted] = []
        self.answered_by: AnsweredBy | None = None
        self.ended = asyncio.Event()
        self.end_reason = ""
        self._caller_audio = bytearray()
        self._dtmf_buffer = ""
        self._dtmf_task: asyncio.Task[None] | None = None
        self._speaking: asyncio.Task[None] | None = None
        self._pending_confirmation: tuple[str, dict[str, Any]] | None = None
        self._eos: float | None = None  # end of the caller speech the next reply answers
        # (end of voice, grammar, recognition) started at a pause; used if the utterance ends right there
        self._speculation: tuple[float, list[str] | None, asyncio.Future[Transcript]] | None = None
        self.speculation_hits = 0
        self.speculation_misses = 0
        self._started_at = clock()

    # ---- carrier → session (call on the event loop) -------------------------------------------------
    def feed_audio(self, ulaw: bytes) -> None:
        pcm = ulaw_to_pcm(ulaw)
        self._caller_audio += pcm
        now = self.clock()
        for i in range(0, len(pcm) - FRAME_BYTES_PCM + 1, FRAME_BYTES_PCM):
            for event in self.endpointer.process(pcm[i:i + FRAME_BYTES_PCM], now):
                if isinstance(event, SpeechPaused):
                    self._speculate(event)
                else:
                    self.events.put_nowait(event)
        if self.endpointer.in_speech and self.endpointer.voiced_seconds >= self.config.barge_in_min_speech:
            self._barge_in("speech")

    def feed_dtmf(self, digit: str) -> None:
        self.events.put_nowait(DtmfDigit(digit, self.clock()))
        self._barge_in("dtmf")

    def remote_hangup(self, reason: str = "remote hangup") -> None:
        self.events.put_nowait(CallEnded(self.clock(), reason))

    # ---- barge-in -----------------------------------------------------------------------------------
    def _barge_in(self, reason: str) -> None:
        if not self.player.busy or self.player.protected:
            return  # nothing playing, or the legally required disclosure: it is not interruptible
        cut = self.player.flush()
        if self._speaking and not self._speaking.done() and not any(u.uninterruptible for u in cut):
            self._speaking.cancel()  # stop synthesising the rest of the reply
        if cut:
            log.info("barge-in (%s) cut %s", reason, [u.text[:30] for u in cut])
            event = Interrupted(self.clock(), reason)
            self.interruptions.append(event)
            asyncio.get_running_loop().create_task(self.transport.clear())

    async def _send_frame(self, ulaw: bytes) -> None:
        await self.transport.send_audio(ulaw)

    # ---- main loop ----------------------------------------------------------------------------------
    async def run(self) -> None:
        player = asyncio.create_task(self.player.run(), name=f"player-{self.call_id}")
        try:
            async with asyncio.timeout(self.config.max_call_seconds):
                if self.direction == "outbound" and self.config.detect_voicemail:
                    self.answered_by = await self._detect_answering_machine()
                    if self.answered_by == "machine":
                        await self._leave_voicemail()
                        return
                else:
                    self.answered_by = "human"
                await self._turn(self.config.start_message, {"input": "call_start"}, record=False)
                while not self.ended.is_set():
                    event = await self.events.get()
                    await self._handle(event)
        except TimeoutError:
            self.end_reason = "max call duration"
            await self._hangup()
        finally:
            if self._dtmf_task:
                self._dtmf_task.cancel()
            if self._speaking and not self._speaking.done():
                self._speaking.cancel()
            player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await player
            self._record_call()

    async def _handle(self, event: object) -> None:
        match event:
            case CallEnded(reason=reason):
                self.end_reason = reason
                self.ended.set()
            case SpeechStarted():
                pass
            case SpeechEnded() as speech:
                log.debug("speech %.2f-%.2f voiced %.2fs", speech.t_start, speech.t_end, speech.voiced_seconds)
                await self._on_speech(speech)
            case DtmfDigit(digit=digit):
                self.dtmf_received.append(digit)
                self._on_digit(digit)
            case ("dtmf_flush", digits):
                await self._on_caller_text(digits, {"input": "dtmf"}, None, None, self.clock())

    def _speculate(self, pause: SpeechPaused) -> None:
        """Start recognising at a pause: if no voice follows, the transcript is (nearly) ready at end of speech."""
        if self.endpointer.voiced_seconds < self.config.min_utterance:
            return
        grammar = YES_NO_GRAMMAR if self._pending_confirmation else None
        future = asyncio.get_running_loop().run_in_executor(None, self._recognize, pause.pcm, grammar)
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # a dropped guess's error is not news
        self._speculation = (pause.t_end, grammar, future)

    async def _on_speech(self, speech: SpeechEnded) -> None:
        speculation, self._speculation = self._speculation, None
        if speech.voiced_seconds < self.config.min_utterance:
            return
        grammar = YES_NO_GRAMMAR if self._pending_confirmation else None
        if speculation is not None and speculation[0] == speech.t_end and speculation[1] == grammar:
            # Same voiced audio (only silence followed the pause): the guess is the answer.
            self.speculation_hits += 1
            transcript = await speculation[2]
        else:
            self.speculation_misses += speculation is not None
            transcript = await asyncio.to_thread(self._recognize, speech.pcm, grammar)
        if not transcript.text:
            return  # noise, a cough, a breath: nothing to answer
        self.heard.append(transcript)
        log.debug("heard %r (%.2f)", transcript.text, transcript.confidence)
        meta = {"input": "speech", "asr_confidence": round(transcript.confidence, 3), "asr_engine": transcript.engine}
        await self._on_caller_text(transcript.text, meta, transcript, speech.pcm, speech.t_end, speech.t_start)

    def _recognize(self, pcm: bytes, grammar: list[str] | None) -> Transcript:
        stream = self.asr.stream(grammar)
        for i in range(0, len(pcm), 3200):
            stream.accept(pcm[i:i + 3200])
        return stream.finish()

    def _on_digit(self, digit: str) -> None:
        if self._dtmf_task:
            self._dtmf_task.cancel()
        if digit == "#":
            digits, self._dtmf_buffer = self._dtmf_buffer, ""
            if digits:
                self.events.put_nowait(("dtmf_flush", digits))
            return
        self._dtmf_buffer += digit

        async def flush_later() -> None:
            await asyncio.sleep(self.config.dtmf_interdigit_timeout)
            digits, self._dtmf_buffer = self._dtmf_buffer, ""
            if digits:
                self.events.put_nowait(("dtmf_flush", digits))

        self._dtmf_task = asyncio.get_running_loop().create_task(flush_later())

    async def _on_caller_text(self, text: str, meta: dict[str, Any], transcript: Transcript | None,
                              pcm: bytes | None, t_end: float, t_start: float | None = None) -> None:
        self._record_caller(text, meta, transcript, pcm, t_start if t_start is not None else t_end, t_end)
        self._eos = t_end
        if self._pending_confirmation:
            original, original_meta = self._pending_confirmation
            answer = {"1": True, "2": False}.get(text) if meta["input"] == "dtmf" else yes_or_no(text)
            if answer is None:
                await self._say([BotReply("Sorry, please say yes or no.")])
                return
            self._pending_confirmation = None
            if answer:
                await self._turn(original, {**original_meta, "confirmed": True})
            else:
                await self._say([BotReply("Sorry about that. Could you say it again, please?")])
            return
        if transcript is not None and transcript.confidence < self.config.confirm_below:
            span = needs_confirmation(text)
            if span:
                self._pending_confirmation = (text, meta)
                await self._say([BotReply(confirmation_question(span))])
                return
        await self._turn(text, meta)

    async def _turn(self, text: str, meta: dict[str, Any], record: bool = True) -> None:
        metadata = {**self.metadata, **meta, "channel": "voice", "call_id": self.call_id}
        try:
            replies = await self.dialogue.respond(self.sender, text, metadata)
        except Exception:  # noqa: BLE001 - a dialogue outage must not kill the call silently
            log.exception("dialogue failed for call %s", self.call_id)
            replies = [BotReply("Sorry, we are having technical trouble. We will call you back. Goodbye.",
                                hangup=True)]
        await self._say(replies)

    async def _say(self, replies: list[BotReply]) -> None:
        """Queue the replies' audio; synthesis streams sentence by sentence while earlier audio plays."""
        if self._speaking and not self._speaking.done():
            await asyncio.wait([self._speaking])
        self._speaking = asyncio.get_running_loop().create_task(self._speak(replies, self._eos))
        self._eos = None

    async def _speak(self, replies: list[BotReply], eos: float | None) -> None:
        hangup = False
        for reply in replies:
            hangup = hangup or reply.hangup
            if not reply.text:
                continue
            utterance = Utterance(reply.text, reply.uninterruptible)
            try:
                # Streamed: sentence n plays while sentence n+1 is synthesised.
                for sentence in split_sentences(normalize_for_speech(reply.text)):
                    pcm = await asyncio.to_thread(self.tts.sentence, sentence)
                    if utterance.interrupted:
                        break
                    self.player.enqueue(utterance, pcm)
                self.player.finish(utterance)
                await utterance.done.wait()
                if not utterance.interrupted and hasattr(self.transport, "mark"):
                    await self.transport.mark(f"bot-{len(self.turns)}")
            finally:
                self._record_bot(utterance, eos)
                eos = None
            if utterance.interrupted:
                return
        if hangup:
            await asyncio.sleep(self.player.lead + self.config.hangup_tail)
            self.end_reason = "bot hangup"
            await self._hangup()

    async def _hangup(self) -> None:
        if not self.ended.is_set():
            self.ended.set()
            self.events.put_nowait(CallEnded(self.clock(), self.end_reason))
            await self.transport.hangup()

    # ---- voicemail ----------------------------------------------------------------------------------
    async def _detect_answering_machine(self) -> AnsweredBy:
        try:
            async with asyncio.timeout(self.config.amd_timeout):
                while True:
                    event = await self.events.get()
                    if isinstance(event, CallEnded):
                        self.events.put_nowait(event)
                        return "human"
                    if isinstance(event, DtmfDigit):
                        return "human"
                    if isinstance(event, SpeechEnded):
                        break
        except TimeoutError:
            if not self.endpointer.in_speech:
                return "human"  # silent answer: a person waiting for us to speak
            return "machine"  # still talking after amd_timeout: a recorded greeting
        transcript = await asyncio.to_thread(self._recognize, event.pcm, None)
        self.heard.append(transcript)
        self._record_caller(transcript.text, {"input": "speech", "amd": True}, transcript, event.pcm,
                            event.t_start, event.t_end)
        return classify_greeting(event.voiced_seconds, transcript.text)

    async def _leave_voicemail(self) -> None:
        # Wait for the rest of the greeting (and the beep) to end.
        quiet_since = self.clock()
        while self.clock() - quiet_since < self.config.voicemail_wait_silence:
            await asyncio.sleep(0.05)
            if self.endpointer.in_speech:
                quiet_since = self.clock()
        await self._say([BotReply(self.config.voicemail_message, uninterruptible=True, hangup=True,
                                  custom={"voicemail": True})])
        if self._speaking:
            await asyncio.wait([self._speaking])
        self.evidence.append("voice.voicemail", {"call_id": self.call_id, "message": self.config.voicemail_message})

    # ---- evidence -----------------------------------------------------------------------------------
    def _record_caller(self, text: str, meta: dict[str, Any], transcript: Transcript | None, pcm: bytes | None,
                       t_start: float, t_end: float) -> None:
        audio = wav_bytes(pcm) if pcm else b""
        turn = TurnRecord("caller", text, t_start, t_end, meta.get("input", "speech"),
                          transcript.confidence if transcript else None, audio_sha256=sha256(audio) if audio else "")
        self.turns.append(turn)
        self._append_turn(turn, audio, extra={"amd": True} if meta.get("amd") else {})

    def _record_bot(self, utterance: Utterance, eos: float | None) -> None:
        audio = wav_bytes(bytes(utterance.pcm)) if utterance.pcm else b""
        started = utterance.first_frame_at or self.clock()
        latency = started - eos if eos is not None and utterance.first_frame_at else None
        turn = TurnRecord("bot", utterance.text, started, utterance.last_frame_at or started, "speech", None, latency,
                          utterance.interrupted, sha256(audio) if audio else "")
        self.turns.append(turn)
        self._append_turn(turn, audio, extra={"uninterruptible": utterance.uninterruptible})

    def _append_turn(self, turn: TurnRecord, audio: bytes, extra: dict[str, Any]) -> None:
        body = {"call_id": self.call_id, "sender": self.sender, "direction": self.direction,
                "speaker": turn.speaker, "text": turn.text, "input": turn.channel_input,
                "started_at": round(turn.started_at - self._started_at, 3),
                "ended_at": round(turn.ended_at - self._started_at, 3),
                "asr_confidence": None if turn.asr_confidence is None else round(turn.asr_confidence, 3),
                "latency_ms": None if turn.latency is None else round(turn.latency * 1000, 1),
                "interrupted": turn.interrupted, "audio_sha256": turn.audio_sha256, **extra}
        self.evidence.append("voice.turn", body, {"audio.wav": audio} if audio else None)

    def _record_call(self) -> None:
        """The whole call, both directions, for QA (bot audio placed at the time it went out)."""
        caller = bytes(self._caller_audio)
        bot = bytearray()
        if self.player.sent_log:
            t0 = self.player.sent_log[0][0]
            for t, ulaw in self.player.sent_log:
                offset = max(0, round((t - t0) * 8000)) * 2
                if offset > len(bot):
                    bot += b"\x00" * (offset - len(bot))
                bot[offset:offset + len(ulaw) * 2] = ulaw_to_pcm(ulaw)
        payloads = {"caller.wav": wav_bytes(caller), "bot.wav": wav_bytes(bytes(bot))}
        self.evidence.append("voice.call", {
            "call_id": self.call_id, "sender": self.sender, "direction": self.direction,
            "answered_by": self.answered_by, "end_reason": self.end_reason,
            "duration_s": round(self.clock() - self._started_at, 3), "dtmf": "".join(self.dtmf_received),
            "interruptions": len(self.interruptions), "late_frames": self.player.late_frames,
            "caller_audio_sha256": sha256(payloads["caller.wav"]), "bot_audio_sha256": sha256(payloads["bot.wav"]),
        }, payloads)
