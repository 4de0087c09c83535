"""Amounts and dates heard with low confidence are confirmed back before they reach the dialogue."""

from __future__ import annotations

import re

from duebot.voice.normalize import MONTHS, normalize_for_speech

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


def confirmation_question(span: str) -> str:
    spoken = normalize_for_speech(span)
    if _DATE.fullmatch(span.strip()) and not spoken.lower().startswith(("the", "next", "tomorrow", "end")):
        spoken = spoken if not re.match(r"\d", span) else f"the {spoken}"
    return f"Did you say {spoken}?"


def yes_or_no(text: str) -> bool | None:
    if _NO.search(text):
        return False
    if _YES.search(text):
        return True
    return None
