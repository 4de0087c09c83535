"""Answering-machine detection from the callee's first utterance, before anything about the debt is said.

A person answers with a short "Hello?" and waits; a voicemail greeting talks for seconds or says so.
"""

from __future__ import annotations

import re
from typing import Literal

AnsweredBy = Literal["human", "machine"]

_MACHINE_PHRASES = re.compile(
    r"leave (a |your )?(message|name|number)|not available|unavailable|after the (tone|beep)|voice ?mail|"
    r"mailbox|can'?t (come to|take) the phone|get back to you|at the tone|record your message",
    re.IGNORECASE)


def classify_greeting(voiced_seconds: float, text: str, long_greeting: float = 2.2) -> AnsweredBy:
    if _MACHINE_PHRASES.search(text):
        return "machine"
    return "machine" if voiced_seconds >= long_greeting else "human"
