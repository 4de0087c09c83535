"""Answering-machine detection on outbound calls, and the voicemail left when a machine answered.

Nothing about the debt is said before the detection: a person answers with a short "Hello?" and waits; a
voicemail greeting talks for seconds or says so. The message left on a machine is the neutral voicemail prompt.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from duebot.voice.event_queue import CallEventQueue
from duebot.voice.events import BotReply, CallEnded, DtmfDigit, SpeechEnded, StageFailed, Transcript

AnsweredBy = Literal["human", "machine"]

_MACHINE_PHRASES = re.compile(
    r"leave (a |your )?(message|name|number)|not available|unavailable|after the (tone|beep)|voice ?mail|"
    r"mailbox|can'?t (come to|take) the phone|get back to you|at the tone|record your message",
    re.IGNORECASE)


def classify_greeting(voiced_seconds: float, text: str, long_greeting: float = 2.2) -> AnsweredBy:
    if _MACHINE_PHRASES.search(text):
        return "machine"
    return "machine" if voiced_seconds >= long_greeting else "human"


@dataclass(frozen=True)
class Detection:
    answered_by: AnsweredBy
    greeting: SpeechEnded | None = None  # the callee's first utterance, when the verdict came from it
    transcript: Transcript | None = None


async def detect_answering_machine(events: CallEventQueue, *, timeout: float, still_speaking: Callable[[], bool],
                                   recognize: Callable[[bytes], Awaitable[Transcript]]) -> Detection:
    """Judge the callee's first utterance; `recognize` may raise the ASR stage's error."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                event = await events.get()
                if isinstance(event, CallEnded | StageFailed):
                    events.put(event)  # the session ends the call
                    return Detection("human")
                if isinstance(event, DtmfDigit):
                    return Detection("human")
                if isinstance(event, SpeechEnded):
                    break
    except TimeoutError:
        if not still_speaking():
            return Detection("human")  # silent answer: a person waiting for us to speak
        return Detection("machine")  # still talking after the timeout: a recorded greeting
    transcript = await recognize(event.pcm)
    return Detection(classify_greeting(event.voiced_seconds, transcript.text), event, transcript)


async def leave_voicemail(message: str, *, wait_silence: float, still_speaking: Callable[[], bool],
                          clock: Callable[[], float], say: Callable[[BotReply], Awaitable[None]]) -> None:
    """Wait for the rest of the greeting (and the beep) to end, then say `message` whole and hang up."""
    quiet_since = clock()
    while clock() - quiet_since < wait_silence:
        await asyncio.sleep(0.05)
        if still_speaking():
            quiet_since = clock()
    await say(BotReply(message, uninterruptible=True, hangup=True, custom={"voicemail": True}))
