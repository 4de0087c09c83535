"""Keyed digits become one entry for the dialogue: a code like 4472 is one message, not four.

An entry ends at '#' (which is not part of it) or when no key follows within the inter-digit timeout.

A phone has no X key, and a Chinese resident ID number may end in X: as Chinese IVRs ask ("末位是X的请按星号键"),
the caller keys '*' for it, and an entry of 17 digits and '*' reaches the dialogue as the ID it is (…X).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from duebot.voice.events import DtmfEntry

TERMINATOR = "#"
ID_X_KEY = "*"
_RESIDENT_ID_KEYED = re.compile(r"\d{17}" + re.escape(ID_X_KEY))


def entry_text(keys: str) -> str:
    """What the dialogue receives for the keys of one entry."""
    if _RESIDENT_ID_KEYED.fullmatch(keys):
        return keys[:-1] + "X"
    return keys


class DtmfCollector:
    def __init__(self, emit: Callable[[DtmfEntry], None], interdigit_timeout: float,
                 clock: Callable[[], float]) -> None:
        self._emit = emit
        self.interdigit_timeout = interdigit_timeout
        self._clock = clock
        self.received: list[str] = []  # every key pressed, '#' included, for the call record
        self._buffer = ""
        self._timer: asyncio.TimerHandle | None = None

    def key(self, digit: str) -> None:
        """One key from the caller (call on the event loop)."""
        self.received.append(digit)
        self.close()
        if digit == TERMINATOR:
            self._flush()
            return
        self._buffer += digit
        self._timer = asyncio.get_running_loop().call_later(self.interdigit_timeout, self._flush)

    def _flush(self) -> None:
        digits, self._buffer = self._buffer, ""
        if digits:
            self._emit(DtmfEntry(entry_text(digits), self._clock()))

    def close(self) -> None:
        """Stop the pending flush (the next key restarts it, the end of the call drops it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
