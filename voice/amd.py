"""Answering-machine detection on outbound calls, and the voicemail left when a machine answered.

Nothing about the debt is said before the detection: a person answers with a short "Hello?" / "喂？" and waits; a
voicemail greeting or a carrier's announcement talks for seconds or says so (the phrases, per language, are data:
voice/amd_phrases.yml). The message left on a machine is the neutral voicemail prompt.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import yaml

from duebot.voice.event_queue import CallEventQueue
from duebot.voice.events import BotReply, CallEnded, DtmfDigit, SpeechEnded, StageFailed, Transcript

AnsweredBy = Literal["human", "machine"]

PHRASES = Path(__file__).resolve().parent / "amd_phrases.yml"
# Languages written without spaces: their phrases are matched on the transcript with spaces and punctuation removed.
_UNSPACED = {"zh"}
# Traditional characters of the Mandarin phrases, as multilingual Whisper sometimes writes them.
_SIMPLIFIED = str.maketrans("撥電話暫時無關機戶號碼後請語聽務區聲嗶將記錄轉來開設經箱書祕秘幫應態",
                            "拨电话暂时无关机户号码后请语听务区声哔将记录转来开设经箱书秘秘帮应态")


@dataclass(frozen=True)
class MachinePhrase:
    language: str
    kind: str  # "voicemail" or "network" (the carrier's announcement)
    pattern: re.Pattern[str]


@cache
def machine_phrases(path: Path = PHRASES) -> tuple[MachinePhrase, ...]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    phrases = []
    for language, kinds in data.items():
        for kind, patterns in kinds.items():
            for pattern in patterns:
                try:
                    phrases.append(MachinePhrase(language, kind, re.compile(pattern, re.IGNORECASE)))
                except re.error as exc:
                    raise ValueError(f"{path}: {language}/{kind}: bad pattern {pattern!r} ({exc})") from exc
    return tuple(phrases)


def _unspaced(text: str) -> str:
    return re.sub(r"[\W_]+", "", text).translate(_SIMPLIFIED)


def greeting_phrase(text: str) -> MachinePhrase | None:
    """The recorded-greeting phrase `text` says, in any language (voice/amd_phrases.yml), or None."""
    unspaced = _unspaced(text)
    for phrase in machine_phrases():
        if phrase.pattern.search(unspaced if phrase.language in _UNSPACED else text):
            return phrase
    return None


def classify_greeting(voiced_seconds: float, text: str, long_greeting: float = 2.2) -> AnsweredBy:
    if greeting_phrase(text) is not None:
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
