"""Typed events that flow between the stages of a call (carrier-independent).

inbound audio → Endpointer (SpeechStarted / SpeechPaused / SpeechEnded) → Recognizer (Transcript) → Dialogue (BotReply)
→ normaliser → TTS (BotAudio) → Player (FirstAudioOut, PlaybackDone, Interrupted) → carrier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
