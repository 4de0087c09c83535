"""Typed events that flow between the stages of a call (carrier-independent).

inbound audio → Endpointer (SpeechStarted / SpeechPaused / SpeechEnded) → Listener (Transcript) → read-back →
Dialogue (BotReply) → Speaker (normaliser, TTS, Player; Interrupted on barge-in) → carrier.
Keys: DtmfDigit → DtmfCollector → DtmfEntry. `CallEvent` is what the session's queue carries (voice/event_queue.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from duebot.voice.errors import StageError


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    t: float


@dataclass(frozen=True, slots=True)
class SpeechPaused:
    """The caller paused long enough that this may be the end: recognition can start before it is certain."""

    t_start: float
    t_end: float  # the last voiced frame so far; the utterance ends here if no voice follows
    pcm: bytes


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    t_start: float
    t_end: float  # arrival time of the caller's last voiced frame: "end of speech"
    pcm: bytes  # 8 kHz 16-bit mono, with a little padding either side
    voiced_seconds: float


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    confidence: float  # 0..1
    final: bool
    engine: str
    words: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    digit: str
    t: float


@dataclass(frozen=True, slots=True)
class DtmfEntry:
    """Keyed digits that go to the dialogue as one message (ended by '#' or a pause, voice/dtmf.py)."""

    digits: str
    t: float  # when the entry was complete: the caller's "end of input"


@dataclass(frozen=True, slots=True)
class BotReply:
    """One message from the dialogue manager; `uninterruptible` marks legally required text."""

    text: str
    uninterruptible: bool = False
    hangup: bool = False
    custom: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Interrupted:
    t: float
    reason: str  # "speech" or "dtmf"


@dataclass(frozen=True, slots=True)
class CallEnded:
    t: float
    reason: str


@dataclass(frozen=True, slots=True)
class StageFailed:
    """A stage running outside the session's loop (the Speaker's TTS) failed: the call is to end."""

    t: float
    error: StageError


# System events are taken off the queue before caller input already waiting there (Pipecat's SystemFrame):
# once a stage failed, answering what the caller said before would only fail again.
SystemEvent: TypeAlias = StageFailed
CallEvent: TypeAlias = SpeechStarted | SpeechEnded | DtmfDigit | DtmfEntry | CallEnded | StageFailed
