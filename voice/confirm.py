"""Amounts and dates heard with low confidence are confirmed back before they reach the dialogue.

`ReadBack` is the stage between the listener and the dialogue: it holds a doubtful transcript until the caller
says yes (or keys 1), and decides what is said meanwhile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from duebot.voice.normalize import MONTHS, normalize_for_speech
from duebot.voice.prompts import prompt

_NUM_WORDS = (r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
              r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
              r"hundred|thousand|and|-|\s)+")
_AMOUNT = re.compile(r"[$¥€£]\s?\d[\d,]*(?:\.\d+)?|\b\d[\d,]*(?:\.\d+)?\s?(?:dollars?|yuan|euros?|pounds?)\b|"
                     rf"\b{_NUM_WORDS}\s?(?:dollars?|yuan|euros?|pounds?)\b", re.IGNORECASE)
_MONTH = "|".join(MONTHS)
_DATE = re.compile(
    rf"\b(?:(?:the\s)?\d{{1,2}}(?:st|nd|rd|th)?\s(?:of\s)?(?:{_MONTH})|(?:{_MONTH})\s(?:the\s)?\d{{1,2}}(?:st|nd|rd|th)?|"
    rf"(?:next\s)?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
    rf"(?:the\s)?\d{{1,2}}(?:st|nd|rd|th)|tomorrow|end of (?:the )?month)\b", re.IGNORECASE)
_YES = re.compile(r"\b(yes|yeah|yep|yup|correct|right|exactly|sure|that's it)\b", re.IGNORECASE)
_NO = re.compile(r"\b(no|nope|not|wrong|incorrect)\b", re.IGNORECASE)

YES_NO_GRAMMAR = ["yes", "no", "that's right", "that's wrong"]


def needs_confirmation(text: str) -> str | None:
    """The amount or date span worth reading back, if the transcript has one."""
    match = _AMOUNT.search(text) or _DATE.search(text)
    return match.group(0).strip() if match else None


def confirmation_question(span: str, language: str = "en") -> str:
    if language != "en":  # the normaliser spells English words; other languages read the span as heard
        return prompt("did_you_say", language, spoken=span)
    spoken = normalize_for_speech(span)
    if _DATE.fullmatch(span.strip()) and not spoken.lower().startswith(("the", "next", "tomorrow", "end")):
        spoken = spoken if not re.match(r"\d", span) else f"the {spoken}"
    return prompt("did_you_say", language, spoken=spoken)


def yes_or_no(text: str) -> bool | None:
    if _NO.search(text):
        return False
    if _YES.search(text):
        return True
    return None


@dataclass(frozen=True)
class Ask:
    """Say this to the caller; nothing reaches the dialogue."""

    prompt: str


@dataclass(frozen=True)
class Forward:
    """Send this to the dialogue."""

    text: str
    meta: dict[str, Any]


class ReadBack:
    def __init__(self, confirm_below: float, language: str = "en") -> None:
        self.confirm_below = confirm_below
        self.language = language
        self.pending: tuple[str, dict[str, Any]] | None = None  # the transcript waiting for the caller's yes

    @property
    def grammar(self) -> list[str] | None:
        """What the recogniser should expect next: a yes or no while a read-back waits."""
        return YES_NO_GRAMMAR if self.pending else None

    def step(self, text: str, meta: dict[str, Any], confidence: float | None) -> Ask | Forward:
        """`confidence` is the ASR's (None for keyed input, which needs no read-back)."""
        if self.pending:
            original, original_meta = self.pending
            answer = {"1": True, "2": False}.get(text) if meta["input"] == "dtmf" else yes_or_no(text)
            if answer is None:
                return Ask(prompt("say_yes_or_no", self.language))
            self.pending = None
            if answer:
                return Forward(original, {**original_meta, "confirmed": True})
            return Ask(prompt("say_again", self.language))
        if confidence is not None and confidence < self.confirm_below:
            span = needs_confirmation(text)
            if span:
                self.pending = (text, meta)
                return Ask(confirmation_question(span, self.language))
        return Forward(text, meta)
