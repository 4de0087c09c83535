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

# Mandarin transcripts carry amounts and dates in digits (Whisper) or in characters (Vosk, with spaces).
_ZH_NUM = r"[零〇一二两三四五六七八九十百千万亿点]"
_ZH_SMALL = r"(?:\d{1,2}|[一二三四五六七八九十]{1,3})"
_ZH_AMOUNT = re.compile(
    rf"(?:[¥￥$]|人民币)\s?\d[\d,]*(?:\.\d+)?(?:\s?[万亿])?(?:\s?元)?|"
    rf"\d[\d,]*(?:\.\d+)?\s?(?:[万亿]\s?)?(?:元|块|美元)(?:\s?{_ZH_NUM}\s?[角毛分])*|"
    rf"{_ZH_NUM}(?:\s?{_ZH_NUM})*\s?(?:元|块|美元)(?:\s?{_ZH_NUM}+\s?[角毛分])*")
_ZH_DATE = re.compile(
    rf"(?:\d{{4}}\s?年\s?)?{_ZH_SMALL}\s?月\s?{_ZH_SMALL}\s?[日号]|\d{{4}}-\d{{1,2}}-\d{{1,2}}|"
    rf"(?:下\s?个?\s?|这\s?个?\s?|本\s?)?(?:周|星期|礼拜)\s?[一二三四五六日天1-7]|"
    rf"大后天|后天|明天|月底|月末|月初|(?:下\s?个?\s?月\s?)?{_ZH_SMALL}\s?[日号]")
# Words holding 是/对/不 that answer nothing: "sorry", "is it or not", "or", "but", "if".
_ZH_NEITHER = re.compile(r"对不起|不好意思|是不是|对不对|还是|可是|但是|要是")
_ZH_NO = re.compile(r"不是|不对|不正确|错了|说错|不要|不行|不可以|^\W*(?:不|没有|没)\W*$")
_ZH_YES = re.compile(r"是|对|没错|正确|好的|嗯|可以|确认|没问题")

YES_NO_GRAMMAR = ["yes", "no", "that's right", "that's wrong"]
YES_NO_GRAMMARS = {"en": YES_NO_GRAMMAR, "zh": ["是", "不是", "对", "不对", "是的", "没错"]}


def needs_confirmation(text: str, language: str = "en") -> str | None:
    """The amount or date span worth reading back, if the transcript has one."""
    amount, when = (_ZH_AMOUNT, _ZH_DATE) if language == "zh" else (_AMOUNT, _DATE)
    match = amount.search(text) or when.search(text)
    return match.group(0).strip() if match else None


def confirmation_question(span: str, language: str = "en") -> str:
    if language != "en":  # the span as heard; the TTS stage normalises it (230.5元 is spoken 二百三十元五角)
        return prompt("did_you_say", language, spoken=span)
    spoken = normalize_for_speech(span)
    if _DATE.fullmatch(span.strip()) and not spoken.lower().startswith(("the", "next", "tomorrow", "end")):
        spoken = spoken if not re.match(r"\d", span) else f"the {spoken}"
    return prompt("did_you_say", language, spoken=spoken)


def yes_or_no(text: str, language: str = "en") -> bool | None:
    no, yes = (_ZH_NO, _ZH_YES) if language == "zh" else (_NO, _YES)
    if language == "zh":
        text = _ZH_NEITHER.sub("", text)
    if no.search(text):  # first: 不是 holds 是, "not right" holds "right"
        return False
    if yes.search(text):
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
        return YES_NO_GRAMMARS.get(self.language, YES_NO_GRAMMAR) if self.pending else None

    def step(self, text: str, meta: dict[str, Any], confidence: float | None) -> Ask | Forward:
        """`confidence` is the ASR's (None for keyed input, which needs no read-back)."""
        if self.pending:
            original, original_meta = self.pending
            answer = ({"1": True, "2": False}.get(text) if meta["input"] == "dtmf"
                      else yes_or_no(text, self.language))
            if answer is None:
                return Ask(prompt("say_yes_or_no", self.language))
            self.pending = None
            if answer:
                return Forward(original, {**original_meta, "confirmed": True})
            return Ask(prompt("say_again", self.language))
        if confidence is not None and confidence < self.confirm_below:
            span = needs_confirmation(text, self.language)
            if span:
                self.pending = (text, meta)
                return Ask(confirmation_question(span, self.language))
        return Forward(text, meta)
