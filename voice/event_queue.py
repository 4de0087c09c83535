"""The call session's inbox: typed `CallEvent`s only, system events first.

What must not wait for the session's loop never enters it: barge-in and a pause worth recognising early are acted
on in `CallSession.feed_audio` as they arise. Of what is queued, system events (a failed stage) jump ahead of
caller input; everything else keeps its order. A hang-up is not a system event: the caller's last words before it
still reach the dialogue and the record (Pipecat's EndFrame, not its CancelFrame).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from duebot.voice.events import CallEvent, SystemEvent

_SYSTEM, _IN_ORDER = 0, 1


@dataclass(order=True, frozen=True, slots=True)
class _Entry:
    lane: int
    arrival: int  # keeps each lane in order; never equal, so events themselves are never compared
    event: CallEvent = field(compare=False)


class CallEventQueue:
    def __init__(self) -> None:
        self._queue: asyncio.PriorityQueue[_Entry] = asyncio.PriorityQueue()
        self._arrivals = itertools.count()

    def put(self, event: CallEvent) -> None:
        lane = _SYSTEM if isinstance(event, SystemEvent) else _IN_ORDER
        self._queue.put_nowait(_Entry(lane, next(self._arrivals), event))

    async def get(self) -> CallEvent:
        return (await self._queue.get()).event

    def empty(self) -> bool:
        return self._queue.empty()
