"""Endpointing: energy VAD with an adaptive noise floor, 20 ms frames at 8 kHz.

Cheap enough to run on every frame of 20+ calls; the ASR only ever sees whole utterances.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from duebot.voice.audio import FRAME_S, level_dbfs
from duebot.voice.events import SpeechEnded, SpeechPaused, SpeechStarted


@dataclass
class EndpointerConfig:
    above_floor_db: float = 12.0  # a frame is voiced this far above the running noise floor...
    min_level_dbfs: float = -42.0  # ...and above this absolute level
    start_frames: int = 3  # 60 ms of voice opens an utterance
    end_silence: float = 0.30  # this much silence closes it ("end of speech" = last voiced frame)
    # After this much silence the utterance so far is offered for speculative recognition (SpeechPaused), so
    # the transcript is mostly ready when end_silence confirms the end; None turns speculation off.
    pause_silence: float | None = 0.12
    pre_roll: float = 0.20  # audio kept before the opening so the first phoneme is not clipped
    max_utterance: float = 15.0


class Endpointer:
    def __init__(self, config: EndpointerConfig | None = None) -> None:
        self.config = config or EndpointerConfig()
        self.floor_db = -60.0
        self.in_speech = False
        self._run = 0  # consecutive voiced frames while idle
        self._pre: deque[bytes] = deque(maxlen=max(1, round(self.config.pre_roll / FRAME_S)))
        self._buffer = bytearray()
        self._t_start = 0.0
        self._t_last_voiced = 0.0
        self._silence = 0.0
        self.voiced_seconds = 0.0

    def _voiced(self, pcm: bytes) -> bool:
        level = level_dbfs(pcm)
        voiced = level > max(self.floor_db + self.config.above_floor_db, self.config.min_level_dbfs)
        if not voiced:  # track the floor only on non-speech, slowly, so speech does not raise it
            self.floor_db = 0.95 * self.floor_db + 0.05 * max(level, -80.0)
        return voiced

    def process(self, pcm: bytes, t: float) -> list[SpeechStarted | SpeechPaused | SpeechEnded]:
        """Feed one 20 ms frame that arrived at monotonic time `t`."""
        voiced = self._voiced(pcm)
        events: list[SpeechStarted | SpeechPaused | SpeechEnded] = []
        if not self.in_speech:
            self._pre.append(pcm)
            self._run = self._run + 1 if voiced else 0
            if self._run >= self.config.start_frames:
                self.in_speech = True
                self._t_start = t - (self._run - 1) * FRAME_S
                self._t_last_voiced = t
                self._buffer = bytearray(b"".join(self._pre))
                self._silence = 0.0
                self.voiced_seconds = self._run * FRAME_S
                events.append(SpeechStarted(self._t_start))
            return events
        self._buffer += pcm
        if voiced:
            self._t_last_voiced = t
            self._silence = 0.0
            self.voiced_seconds += FRAME_S
        else:
            was = self._silence
            self._silence += FRAME_S
            pause = self.config.pause_silence
            if pause is not None and was < pause <= self._silence < self.config.end_silence:
                events.append(SpeechPaused(self._t_start, self._t_last_voiced, bytes(self._buffer)))
        too_long = t - self._t_start >= self.config.max_utterance
        if self._silence >= self.config.end_silence or too_long:
            events.append(self._close())
        return events

    def _close(self) -> SpeechEnded:
        keep_tail = round(min(self._silence, 0.15) / FRAME_S) * len(self._pre[0]) if self._pre else 0
        drop = round(self._silence / FRAME_S) * (len(self._pre[0]) if self._pre else 320) - keep_tail
        pcm = bytes(self._buffer[: len(self._buffer) - max(drop, 0)])
        ended = SpeechEnded(self._t_start, self._t_last_voiced, pcm, self.voiced_seconds)
        self.in_speech = False
        self._run = 0
        self._pre.clear()
        self._buffer = bytearray()
        self.voiced_seconds = 0.0
        return ended
