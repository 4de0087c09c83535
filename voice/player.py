"""Bot audio out: 20 ms µ-law frames sent at the real-time pace, so barge-in can stop them at once.

Only `lead` seconds of audio are ever ahead of the wire clock; flushing the local queue (plus the
carrier's `clear`) therefore silences the bot within one frame.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from duebot.voice.audio import FRAME_BYTES_PCM, FRAME_S, pcm_to_ulaw, split_frames

SendFrame = Callable[[bytes], Awaitable[None]]


@dataclass(eq=False)
class Utterance:
    """One bot message as it is played; `done` resolves when it finished or was cut off."""

    text: str
    uninterruptible: bool
    pcm: bytearray = field(default_factory=bytearray)  # what was actually sent
    queued_frames: int = 0
    sent_frames: int = 0
    first_frame_at: float | None = None
    last_frame_at: float | None = None
    complete: bool = False  # no more audio will be added
    interrupted: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class QueuedFrame(NamedTuple):
    pcm: bytes  # 20 ms, kept for the turn's recording
    ulaw: bytes  # the same frame as it goes on the wire
    utterance: Utterance


class Player:
    def __init__(self, send: SendFrame, lead: float = 0.06) -> None:
        self._send = send
        self.lead = lead
        self._queue: deque[QueuedFrame] = deque()
        self._wakeup = asyncio.Event()
        self.current: Utterance | None = None
        self.late_frames = 0  # frames sent more than one frame period late: an audible underrun
        self.frames_sent = 0
        self.sent_log: list[tuple[float, bytes]] = []  # (time, µ-law frame) for the call recording

    def enqueue(self, utterance: Utterance, pcm: bytes) -> None:
        if utterance.interrupted:
            return
        for frame in split_frames(pcm, FRAME_BYTES_PCM):
            self._queue.append(QueuedFrame(frame, pcm_to_ulaw(frame), utterance))
            utterance.queued_frames += 1
        self._wakeup.set()

    def finish(self, utterance: Utterance) -> None:
        utterance.complete = True
        self._settle(utterance)
        self._wakeup.set()

    def _settle(self, utterance: Utterance) -> None:
        if utterance.complete and utterance.sent_frames >= utterance.queued_frames:
            utterance.done.set()

    @property
    def busy(self) -> bool:
        return bool(self._queue) or (self.current is not None and not self.current.done.is_set())

    @property
    def protected(self) -> bool:
        """True while an uninterruptible message is on the wire."""
        return self.current is not None and self.current.uninterruptible and not self.current.done.is_set()

    def flush(self) -> list[Utterance]:
        """Drop queued audio of interruptible messages; return the messages that were cut off."""
        cut: list[Utterance] = []
        kept: deque[QueuedFrame] = deque()
        for item in self._queue:
            if item.utterance.uninterruptible:
                kept.append(item)
            elif item.utterance not in cut and not item.utterance.interrupted:
                cut.append(item.utterance)
        self._queue = kept
        if self.current is not None and not self.current.uninterruptible and self.current not in cut \
                and not self.current.done.is_set():
            cut.append(self.current)
        for utterance in cut:
            utterance.interrupted = True
            utterance.done.set()
        return cut

    async def run(self) -> None:
        deadline = time.monotonic()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                deadline = max(deadline, time.monotonic())  # restart the clock after a gap
                continue
            pcm, ulaw, utterance = self._queue.popleft()
            now = time.monotonic()
            if now - deadline > FRAME_S:
                self.late_frames += 1
                deadline = now
            if deadline - now > self.lead:
                await asyncio.sleep(deadline - now - self.lead)
            if utterance.interrupted:
                continue
            await self._send(ulaw)
            sent_at = time.monotonic()
            self.current = utterance
            if utterance.first_frame_at is None:
                utterance.first_frame_at = sent_at
            utterance.last_frame_at = sent_at
            utterance.sent_frames += 1
            utterance.pcm += pcm
            self.frames_sent += 1
            self.sent_log.append((deadline, ulaw))
            deadline += FRAME_S
            self._settle(utterance)
