"""Text normaliser for speech: what Piper must say, not what it would guess.

Piper reads "$1,200.00" as "dollar one thousand two hundred point zero zero" and "4472" as a number,
so money, dates, times and digit strings are spelled out before synthesis.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
         "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((1_000_000_000, "billion"), (1_000_000, "million"), (1000, "thousand"))
_ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                      "nine": "ninth", "twelve": "twelfth"}
MONTHS = ["January", "February", "March", "April", "May", "June",
          "July", "August", "September", "October", "November", "December"]
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "¥": ("yuan", "yuan", "fen", "fen"),
               "€": ("euro", "euros", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence")}


def number_words(n: int) -> str:
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_words(rest)}" if rest else "")
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return f"{number_words(head)} {name}" + (f" {number_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def ordinal_words(n: int) -> str:
    words = number_words(n)
    head, sep, last = words.rpartition("-") if "-" in words.split(" ")[-1] else words.rpartition(" ")
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head}{sep}{last}"


def year_words(year: int) -> str:
    if 2000 <= year < 2010:
        return number_words(year)
    high, low = divmod(year, 100)
    return f"{number_words(high)} {'hundred' if low == 0 else ('oh ' + _ONES[low] if low < 10 else number_words(low))}"


def money_words(amount: str, symbol: str = "$") -> str:
    unit, units, sub, subs = _CURRENCIES.get(symbol, _CURRENCIES["$"])
    whole, _, frac = amount.replace(",", "").partition(".")
    major = int(whole or "0")
    minor = int((frac + "00")[:2]) if frac else 0
    parts = [f"{number_words(major)} {unit if major == 1 else units}"] if major or not minor else []
    if minor:
        parts.append(f"{number_words(minor)} {sub if minor == 1 else subs}")
    return " and ".join(parts)


def date_words(value: date, with_year: bool = True) -> str:
    text = f"the {ordinal_words(value.day)} of {MONTHS[value.month - 1]}"
    return f"{text}, {year_words(value.year)}" if with_year else text


def digits_words(digits: str) -> str:
    return " ".join(_ONES[int(d)] for d in digits if d.isdigit())


_MONEY = re.compile(r"([$¥€£])\s?(\d[\d,]*(?:\.\d{1,2})?)")
_MONEY_SUFFIX = re.compile(r"\b(\d[\d,]*(?:\.\d{1,2})?)\s?(yuan|RMB|CNY|USD|dollars?)\b", re.IGNORECASE)
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_TIME = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")
_YEAR_AFTER_WORD = re.compile(r"\b(in|year|of|since|" + "|".join(MONTHS) + r")(,?) ((?:19|20)\d\d)\b")
_ORDINAL = re.compile(r"\b(\d{1,2})(st|nd|rd|th)\b")
_DIGIT_STRING = re.compile(r"\b\d{4,}\b|\b\d+(?:[ -]\d+){2,}\b")  # account, phone, verification codes
_NUMBER = re.compile(r"\b\d{1,9}\b")
_PERCENT = re.compile(r"\b(\d+(?:\.\d+)?)\s?%")


def _time_words(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    suffix = "a.m." if hour < 12 else "p.m."
    hour12 = hour % 12 or 12
    if minute == 0:
        return f"{number_words(hour12)} {suffix}"
    mins = f"oh {number_words(minute)}" if minute < 10 else number_words(minute)
    return f"{number_words(hour12)} {mins} {suffix}"


def _iso_date(match: re.Match[str]) -> str:
    try:
        return date_words(date(int(match.group(1)), int(match.group(2)), int(match.group(3))))
    except ValueError:
        return digits_words(match.group(0))


def _money_suffix(match: re.Match[str]) -> str:
    unit = match.group(2).lower()
    symbol = "$" if unit in ("usd", "dollar", "dollars") else "¥"
    return money_words(match.group(1), symbol)


def normalize_for_speech(text: str) -> str:
    """Rewrite money, dates, times, percentages and digit strings as words Piper reads correctly."""
    text = _MONEY.sub(lambda m: money_words(m.group(2), m.group(1)), text)
    text = _MONEY_SUFFIX.sub(_money_suffix, text)
    text = _ISO_DATE.sub(_iso_date, text)
    text = _TIME.sub(_time_words, text)
    text = _PERCENT.sub(lambda m: f"{m.group(1)} percent", text)
    text = _YEAR_AFTER_WORD.sub(lambda m: f"{m.group(1)}{m.group(2)} {year_words(int(m.group(3)))}", text)
    text = _ORDINAL.sub(lambda m: ordinal_words(int(m.group(1))), text)
    text = _DIGIT_STRING.sub(lambda m: digits_words(m.group(0)), text)
    text = _NUMBER.sub(lambda m: number_words(int(m.group(0))), text)
    text = text.replace("..", ".")
    return re.sub(r"\s{2,}", " ", text).strip()


def split_sentences(text: str) -> list[str]:
    """Sentences for streaming TTS: the first one can play while the next is synthesised."""
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", text.strip())
    return [p for p in (part.strip() for part in parts) if p]


@dataclass(frozen=True)
class SpeechNormaliser:
    """What a call's TTS stage does to a reply before synthesis, in the call's language."""

    language: str
    normalize_for_speech: Callable[[str], str]
    split_sentences: Callable[[str], list[str]]


def speech_normaliser(language: str = "en") -> SpeechNormaliser:
    """English (this module) or Mandarin (voice/normalize_zh.py): the same two functions."""
    from duebot.voice import normalize_zh

    if language == "en":
        return SpeechNormaliser("en", normalize_for_speech, split_sentences)
    if language == "zh":
        return SpeechNormaliser("zh", normalize_zh.normalize_for_speech, normalize_zh.split_sentences)
    raise ValueError(f"no speech normaliser for {language!r}")
