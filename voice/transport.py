"""The carrier's side of a call, as the session sees it: where bot audio goes (SIP, Twilio, a test line)."""

from __future__ import annotations

from typing import Protocol


class CallTransport(Protocol):
    async def send_audio(self, ulaw: bytes) -> None:
        """Send one 20 ms frame of 8 kHz µ-law."""

    async def clear(self) -> None:
        """Drop whatever bot audio the carrier still has queued (barge-in)."""

    async def hangup(self) -> None: ...


class MarkingTransport(CallTransport, Protocol):
    async def mark(self, name: str) -> None:
        """Ask the carrier to report when playback reaches this point (Twilio `mark`)."""
