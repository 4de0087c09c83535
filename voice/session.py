"""One call, carrier-independent: the session orchestrates the stages and owns nothing else.

caller audio → Endpointer → Listener (ASR) → ReadBack → Dialogue → Speaker (TTS, player) → carrier;
keys → DtmfCollector; outbound calls open with answering-machine detection (amd.py); CallRecorder keeps the record.

The carrier adapter (SIP, Twilio) owns the wire: it calls `feed_audio` / `feed_dtmf` / `remote_hangup` on the event
loop and implements `CallTransport` for the way back. Every stage's failure (`StageError`) takes one way out:
an apology, then the call ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from duebot.voice.amd import AnsweredBy, detect_answering_machine, leave_voicemail, machine_phrases
from duebot.voice.asr import AsrEngine
from duebot.voice.audio import FRAME_BYTES_PCM, ulaw_to_pcm
from duebot.voice.confirm import Ask, ReadBack
from duebot.voice.dialogue import Dialogue
from duebot.voice.dtmf import DtmfCollector
from duebot.voice.errors import DialogueError, StageError, TtsError
from duebot.voice.event_queue import CallEventQueue
from duebot.voice.events import (
    BotReply,
    CallEnded,
    CallEvent,
    DtmfDigit,
    DtmfEntry,
    Interrupted,
    SpeechEnded,
    SpeechPaused,
    SpeechStarted,
    StageFailed,
    Transcript,
)
from duebot.voice.evidence import EvidenceSink
from duebot.voice.listener import Listener
from duebot.voice.prompts import check_language, prompt
from duebot.voice.recorder import CallRecorder, TurnRecord
from duebot.voice.speaker import Speaker
from duebot.voice.transport import CallTransport
from duebot.voice.tts import TtsEngine
from duebot.voice.vad import Endpointer, EndpointerConfig

log = logging.getLogger(__name__)


@dataclass
class VoiceConfig:
    start_message: str = "/greet"  # what the dialogue receives when the call connects
    endpointer: EndpointerConfig = field(default_factory=EndpointerConfig)
    barge_in_min_speech: float = 0.35  # voiced seconds before caller speech stops the bot (not a cough)
    min_utterance: float = 0.2  # shorter voiced bursts (a cough, a click) never reach the ASR
    dtmf_interdigit_timeout: float = 1.0  # digits are sent together after this pause or '#'
    detect_voicemail: bool = True  # outbound calls only
    amd_timeout: float = 4.0  # no greeting within this: treat as a person who waits silently
    # None: the call language's neutral prompt (voice/prompts.yml); a policy pack's own must never name the debt
    voicemail_message: str | None = None
    voicemail_wait_silence: float = 1.0  # wait for the greeting (and beep) to end before speaking
    confirm_below: float = 0.75  # ASR confidence under which amounts/dates are read back
    max_call_seconds: float = 900.0
    # Silence before BYE: the phone's jitter buffer still holds the last word when the bot's audio has left.
    hangup_tail: float = 0.6


class CallSession:
    def __init__(self, call_id: str, transport: CallTransport, asr: AsrEngine, tts: TtsEngine, dialogue: Dialogue,
                 evidence: EvidenceSink, config: VoiceConfig | None = None, *, direction: str = "inbound",
                 sender: str | None = None, metadata: dict[str, Any] | None = None, language: str = "en",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.call_id = call_id
        self.sender = sender or call_id
        self.transport = transport
        self.dialogue = dialogue
        self.config = config or VoiceConfig()
        self.direction = direction
        self.metadata = dict(metadata or {})
        self.language = check_language(language)  # of the prompts the pipeline itself speaks
        if direction == "outbound" and self.config.detect_voicemail:
            machine_phrases()  # loaded (once) as the call is set up: a missing phrase file fails now, not mid-call
        self.clock = clock
        self.events = CallEventQueue()
        self.endpointer = Endpointer(self.config.endpointer)
        self.listener = Listener(asr, self.config.min_utterance)
        self.read_back = ReadBack(self.config.confirm_below, language)
        self.dtmf = DtmfCollector(self.events.put, self.config.dtmf_interdigit_timeout, clock)
        self.recorder = CallRecorder(evidence, call_id, self.sender, direction, clock)
        self.speaker = Speaker(tts, transport, self.recorder, hang_up=self._bot_hangup,
                               on_error=self._speaker_failed, hangup_tail=self.config.hangup_tail,
                               language=self.language)
        self.player = self.speaker.player
        self.heard: list[Transcript] = []
        self.interruptions: list[Interrupted] = []
        self.answered_by: AnsweredBy | None = None
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.error: StageError | None = None  # the first stage failure; it ended the call
        self._closing = False  # the bot's last words are due: caller input is no longer answered
        self._eos: float | None = None  # end of the caller input the next reply answers

    # ---- what tests, benchmarks and the demo read -----------------------------------------------------
    @property
    def turns(self) -> list[TurnRecord]:
        return self.recorder.turns

    @property
    def dtmf_received(self) -> list[str]:
        return self.dtmf.received

    @property
    def speaking(self) -> bool:
        """The bot is talking, or synthesising the rest of a reply."""
        return self.speaker.busy

    @property
    def speculation_hits(self) -> int:
        return self.listener.speculation_hits

    @property
    def speculation_misses(self) -> int:
        return self.listener.speculation_misses

    # ---- carrier → session (call on the event loop) -------------------------------------------------
    def feed_audio(self, ulaw: bytes) -> None:
        pcm = ulaw_to_pcm(ulaw)
        self.recorder.caller_audio += pcm
        now = self.clock()
        for i in range(0, len(pcm) - FRAME_BYTES_PCM + 1, FRAME_BYTES_PCM):
            for event in self.endpointer.process(pcm[i:i + FRAME_BYTES_PCM], now):
                if isinstance(event, SpeechPaused):  # acted on at once: the loop may be busy with a turn
                    self.listener.on_pause(event, self.endpointer.voiced_seconds, self.read_back.grammar)
                else:
                    self.events.put(event)
        if self.endpointer.in_speech and self.endpointer.voiced_seconds >= self.config.barge_in_min_speech:
            self._barge_in("speech")

    def feed_dtmf(self, digit: str) -> None:
        self.events.put(DtmfDigit(digit, self.clock()))
        self._barge_in("dtmf")

    def remote_hangup(self, reason: str = "remote hangup") -> None:
        self.events.put(CallEnded(self.clock(), reason))

    def _barge_in(self, reason: str) -> None:
        cut = self.speaker.cut()
        if cut:
            log.info("barge-in (%s) cut %s", reason, [u.text[:30] for u in cut])
            self.interruptions.append(Interrupted(self.clock(), reason))

    # ---- main loop ----------------------------------------------------------------------------------
    async def run(self) -> None:
        self.speaker.start(f"player-{self.call_id}")
        try:
            async with asyncio.timeout(self.config.max_call_seconds):
                await self._guarded(self._open())
                while not self.ended.is_set():
                    await self._guarded(self._handle(await self.events.get()))
        except TimeoutError:
            self.end_reason = "max call duration"
            await self._hangup()
        finally:
            self.dtmf.close()
            await self.speaker.stop()
            self.recorder.call(self.player, answered_by=self.answered_by, end_reason=self.end_reason,
                               dtmf="".join(self.dtmf_received), interruptions=len(self.interruptions),
                               error=self.error.code if self.error else None)

    async def _guarded(self, step: Awaitable[None]) -> None:
        try:
            await step
        except StageError as error:
            await self._fail(error)

    async def _open(self) -> None:
        """Outbound calls listen first: a machine gets only the voicemail message. Then the dialogue starts."""
        if self.direction == "outbound" and self.config.detect_voicemail:
            detection = await detect_answering_machine(
                self.events, timeout=self.config.amd_timeout, still_speaking=lambda: self.endpointer.in_speech,
                recognize=self.listener.recognize)
            self.answered_by = detection.answered_by
            if detection.greeting is not None and detection.transcript is not None:
                greeting, transcript = detection.greeting, detection.transcript
                self.heard.append(transcript)
                self.recorder.caller(transcript.text, "speech", transcript.confidence, greeting.pcm,
                                     greeting.t_start, greeting.t_end, amd=True)
            if self.answered_by == "machine":
                await self._leave_voicemail()
                return
        else:
            self.answered_by = "human"
        await self._turn(self.config.start_message, {"input": "call_start"})

    async def _handle(self, event: CallEvent) -> None:
        match event:
            case CallEnded(reason=reason):
                self.end_reason = reason
                self.ended.set()
            case StageFailed(error=error):
                await self._fail(error)
            case _ if self._closing:
                pass
            case SpeechStarted():
                pass
            case SpeechEnded() as speech:
                log.debug("speech %.2f-%.2f voiced %.2fs", speech.t_start, speech.t_end, speech.voiced_seconds)
                await self._on_speech(speech)
            case DtmfDigit(digit=digit):
                self.dtmf.key(digit)
            case DtmfEntry(digits=digits, t=t):
                await self._on_caller_text(digits, {"input": "dtmf"}, None, None, t)

    # ---- caller → dialogue --------------------------------------------------------------------------
    async def _on_speech(self, speech: SpeechEnded) -> None:
        transcript = await self.listener.hear(speech, self.read_back.grammar)
        if transcript is None or not transcript.text:
            return  # noise, a cough, a breath: nothing to answer
        self.heard.append(transcript)
        log.debug("heard %r (%.2f)", transcript.text, transcript.confidence)
        meta = {"input": "speech", "asr_confidence": round(transcript.confidence, 3), "asr_engine": transcript.engine}
        await self._on_caller_text(transcript.text, meta, transcript, speech.pcm, speech.t_end, speech.t_start)

    async def _on_caller_text(self, text: str, meta: dict[str, Any], transcript: Transcript | None,
                              pcm: bytes | None, t_end: float, t_start: float | None = None) -> None:
        confidence = transcript.confidence if transcript else None
        self.recorder.caller(text, meta["input"], confidence, pcm, t_start if t_start is not None else t_end, t_end)
        self._eos = t_end
        step = self.read_back.step(text, meta, confidence)
        if isinstance(step, Ask):
            await self._say([BotReply(step.prompt)])
        else:
            await self._turn(step.text, step.meta)

    async def _turn(self, text: str, meta: dict[str, Any]) -> None:
        metadata = {**self.metadata, **meta, "channel": "voice", "call_id": self.call_id}
        try:
            replies = await self.dialogue.respond(self.sender, text, metadata)
        except Exception as exc:
            raise DialogueError(repr(exc)) from exc
        await self._say(replies)

    async def _say(self, replies: list[BotReply]) -> None:
        await self.speaker.say(replies, self._eos)
        self._eos = None

    # ---- the way out --------------------------------------------------------------------------------
    async def _leave_voicemail(self) -> None:
        self._closing = True
        message = self.config.voicemail_message or prompt("voicemail", self.language)

        async def say_whole(reply: BotReply) -> None:
            await self._say([reply])
            await self.speaker.finished()

        await leave_voicemail(message, wait_silence=self.config.voicemail_wait_silence,
                              still_speaking=lambda: self.endpointer.in_speech, clock=self.clock, say=say_whole)
        if self.ended.is_set():  # the message played whole and the bot hung up
            self.recorder.voicemail(message)

    def _speaker_failed(self, error: TtsError) -> None:
        self.events.put(StageFailed(self.clock(), error))

    async def _fail(self, error: StageError) -> None:
        """Any stage failing ends the call the same way: an apology that cannot be cut off, then the hang-up."""
        log.error("%s stage failed on call %s (%s)", error.stage, self.call_id, error.code, exc_info=error)
        if self._closing:  # the last words themselves could not be said: nothing is left but to hang up
            self.error = self.error or error
            self.end_reason = self.error.code
            await self._hangup()
            return
        self.error, self._closing = error, True
        await self._say([BotReply(prompt("technical_trouble", self.language), uninterruptible=True, hangup=True)])

    async def _bot_hangup(self) -> None:
        self.end_reason = "bot hangup"
        await self._hangup()

    async def _hangup(self) -> None:
        if not self.ended.is_set():
            self.ended.set()
            self.events.put(CallEnded(self.clock(), self.end_reason))
            await self.transport.hangup()
