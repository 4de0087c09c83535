"""Dates, amounts and digit strings from what the subscriber said, in the subscriber's time zone.

dateparser and number-parser do the language work; this module adds what collection needs on top:
dates are always in the future, "the 15th" means the next 15th, "end of the month" is understood, and
a numeric date that reads two ways (03/04) is reported as ambiguous so the bot asks again.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import dateparser
from dateparser.search import search_dates
from number_parser import parse as words_to_digits

_END_OF_MONTH = re.compile(r"\bend of (the |this )?(month)\b|\bend of next month\b", re.I)
_NEXT_MONTH_END = re.compile(r"\bend of next month\b", re.I)
_DAY_ONLY = re.compile(r"^\s*(on )?(the )?(\d{1,2})(st|nd|rd|th)?\s*$", re.I)
_NUMERIC = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2,4}))?\b")
_MONEY = re.compile(r"(?:[$€£¥]\s*)?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?")
# "two hundred fifty" → number-parser; "in two weeks"/"15th" are dates, not amounts
_DATE_WORDS = re.compile(r"\b(\d{1,2})(st|nd|rd|th)\b|\b(in|within) \d+ (days?|weeks?|months?)\b", re.I)


@dataclass(frozen=True)
class ParsedDate:
    date: dt.date | None = None
    ambiguous: tuple[dt.date, dt.date] | None = None
    past: bool = False


def _last_day(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _next_day_of_month(day: int, today: dt.date) -> dt.date | None:
    year, month = today.year, today.month
    for _ in range(13):
        if day <= calendar.monthrange(year, month)[1]:
            candidate = dt.date(year, month, day)
            if candidate >= today:
                return candidate
        month, year = (1, year + 1) if month == 12 else (month + 1, year)
    return None


def parse_date(text: str, today: dt.date, *, future: bool = True) -> ParsedDate:
    """Find the date in `text`. `future=False` is for dates of birth."""
    if future and (match := _END_OF_MONTH.search(text)):
        if _NEXT_MONTH_END.search(match.group(0)):
            month, year = (1, today.year + 1) if today.month == 12 else (today.month + 1, today.year)
            return ParsedDate(_last_day(year, month))
        return ParsedDate(_last_day(today.year, today.month))
    if future and (match := _DAY_ONLY.match(text)):
        return ParsedDate(_next_day_of_month(int(match.group(3)), today))
    numeric = _NUMERIC.search(text)
    if numeric and numeric.group(1) != numeric.group(2) and int(numeric.group(1)) <= 12 \
            and int(numeric.group(2)) <= 12:
        first, second = int(numeric.group(1)), int(numeric.group(2))
        year = int(numeric.group(3)) if numeric.group(3) else today.year
        year = year + 2000 if year < 100 else year
        try:
            return ParsedDate(ambiguous=(dt.date(year, first, second), dt.date(year, second, first)))
        except ValueError:
            pass
    base = dt.datetime.combine(today, dt.time(12))
    settings = {"PREFER_DATES_FROM": "future" if future else "past", "RELATIVE_BASE": base,
                "PREFER_DAY_OF_MONTH": "first", "RETURN_AS_TIMEZONE_AWARE": False}
    parsed = dateparser.parse(text, languages=["en"], settings=settings)
    if parsed is None:
        found = search_dates(text, languages=["en"], settings=settings) or []
        # search_dates also matches fragments like "now and the": keep phrases that carry a date word
        found = [(phrase, when) for phrase, when in found if re.search(r"\d|day|week|month|tomorrow|"
                 r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec", phrase, re.I)]
        if not found:
            return ParsedDate()
        phrase, parsed = found[-1]
        if future and (match := re.search(r"\b(\d{1,2})(st|nd|rd|th)\b", phrase)) and not re.search(
                r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec", phrase, re.I):
            return ParsedDate(_next_day_of_month(int(match.group(1)), today))
    result = parsed.date()
    if future and result < today:
        return ParsedDate(result, past=True)
    return ParsedDate(result)


def parse_amount(text: str) -> Decimal | None:
    """The first money amount in `text` ("$50", "fifty dollars", "1,200.50"), or None."""
    cleaned = _DATE_WORDS.sub(" ", words_to_digits(text))
    match = _MONEY.search(cleaned)
    if not match:
        return None
    whole = match.group(1).replace(",", "")
    cents = (match.group(2) or "0").ljust(2, "0")
    try:
        return Decimal(f"{whole}.{cents}")
    except InvalidOperation:
        return None


def parse_digits(text: str) -> str:
    """All digits spoken or typed ("four four seven two", "44 72") as one string."""
    return "".join(re.findall(r"\d", words_to_digits(text)))


ID_CHARACTER = re.compile(r"\d|(?<![^\W\d_])[xX](?![^\W\d_])")  # a digit, or an x not inside a word


def parse_id_characters(text: str) -> str:
    """Digits and a standalone X, upper-cased: the characters of an ID number as said or typed."""
    return "".join(ID_CHARACTER.findall(words_to_digits(unicodedata.normalize("NFKC", text)))).upper()
