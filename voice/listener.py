"""The ASR stage: caller utterances to transcripts, recognised in worker threads (the engines block).

Recognition starts speculatively at a pause: if no voice follows, the transcript is (nearly) ready when the end
of speech is certain. Any engine failure leaves this stage as an `AsrError`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from duebot.voice.asr import AsrEngine
from duebot.voice.errors import AsrError
from duebot.voice.events import SpeechEnded, SpeechPaused, Transcript

CHUNK_BYTES = 3200  # 200 ms of 8 kHz 16-bit PCM per `accept`, as a streaming engine would get it


@dataclass(frozen=True)
class _Guess:
    t_end: float  # the last voiced frame the guess heard
    grammar: list[str] | None
    transcript: asyncio.Future[Transcript]


class Listener:
    def __init__(self, asr: AsrEngine, min_utterance: float) -> None:
        self.asr = asr
        self.min_utterance = min_utterance  # shorter voiced bursts (a cough, a click) are not recognised
        self._guess: _Guess | None = None
        self.speculation_hits = 0
        self.speculation_misses = 0

    def on_pause(self, pause: SpeechPaused, voiced_seconds: float, grammar: list[str] | None) -> None:
        """Start recognising what was said up to this pause (call on the event loop)."""
        if voiced_seconds < self.min_utterance:
            return
        future = asyncio.get_running_loop().run_in_executor(None, self._recognize, pause.pcm, grammar)
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # a dropped guess's error is not news
        self._guess = _Guess(pause.t_end, grammar, future)

    async def hear(self, speech: SpeechEnded, grammar: list[str] | None) -> Transcript | None:
        """The transcript of a finished utterance; None when it was too short to be speech."""
        guess, self._guess = self._guess, None
        if speech.voiced_seconds < self.min_utterance:
            return None
        if guess is not None and guess.t_end == speech.t_end and guess.grammar == grammar:
            # Same voiced audio (only silence followed the pause): the guess is the answer.
            self.speculation_hits += 1
            return await guess.transcript
        self.speculation_misses += guess is not None
        return await self.recognize(speech.pcm, grammar)

    async def recognize(self, pcm: bytes, grammar: list[str] | None = None) -> Transcript:
        return await asyncio.to_thread(self._recognize, pcm, grammar)

    def _recognize(self, pcm: bytes, grammar: list[str] | None) -> Transcript:
        try:
            stream = self.asr.stream(grammar)
            for i in range(0, len(pcm), CHUNK_BYTES):
                stream.accept(pcm[i:i + CHUNK_BYTES])
            return stream.finish()
        except Exception as exc:
            raise AsrError(f"{getattr(self.asr, 'name', 'asr')}: {exc!r}") from exc
