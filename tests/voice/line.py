"""A caller's phone line for session tests: a 20 ms frame clock like RTP, speech injected on demand."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from duebot.voice.audio import FRAME_BYTES_PCM, pcm_to_ulaw, split_frames, ulaw_to_pcm
from duebot.voice.session import CallSession


def comfort_noise(frames: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 25, frames * FRAME_BYTES_PCM // 2)).astype(np.int16).tobytes()


class MemoryTransport:
    """The carrier side of the session: what went out on the wire, and when."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, bytes]] = []
        self.clears: list[float] = []
        self.hung_up = asyncio.Event()

    async def send_audio(self, ulaw: bytes) -> None:
        self.frames.append((time.monotonic(), ulaw))

    async def clear(self) -> None:
        self.clears.append(time.monotonic())

    async def hangup(self) -> None:
        self.hung_up.set()

    def audio_between(self, start: float, end: float) -> bytes:
        return b"".join(ulaw_to_pcm(f) for t, f in self.frames if start <= t < end)


class CallerLine:
    """Feeds the session one frame every 20 ms: comfort noise, or speech queued with `say`."""

    def __init__(self, session: CallSession) -> None:
        self.session = session
        self._pending: list[bytes] = []
        self._task: asyncio.Task[None] | None = None
        self.spoke: list[tuple[float, float]] = []  # (start, end of speech) per utterance

    async def __aenter__(self) -> CallerLine:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()

    async def say(self, pcm: bytes) -> float:
        """Speak (in real time) and return the moment the speech ended."""
        frames = split_frames(pcm, FRAME_BYTES_PCM)
        start = time.monotonic()
        self._pending.extend(frames)
        while self._pending:
            await asyncio.sleep(0.01)
        end = time.monotonic()
        self.spoke.append((start, end))
        return end

    async def _run(self) -> None:
        noise = split_frames(comfort_noise(50), FRAME_BYTES_PCM)
        deadline = time.monotonic()
        i = 0
        while True:
            frame = self._pending.pop(0) if self._pending else noise[i % len(noise)]
            i += 1
            self.session.feed_audio(pcm_to_ulaw(frame))
            deadline += 0.02
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))


async def wait_until(predicate, timeout: float = 20.0, poll: float = 0.02) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(poll)
