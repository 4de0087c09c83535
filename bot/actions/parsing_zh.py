"""Dates, amounts and ID digits from what a subscriber said in Mandarin, in the subscriber's time zone.

cn2an turns Chinese numerals into Arabic ones (十五号 → 15号, 两百五 → 250, 四四七二 → 4472) and dateparser reads
what it knows in Chinese (明天, 后天, 3天后, 2周后, 2026年12月15日); this module adds what it does not: weekdays
(周五, 下周五, 这个星期三), days of the month (15号, 下个月15号, 12月15日), and spans (月底, 下个月初, 中旬, 年底).
A span means its last day, as "end of the month" does in English: a promise "by early next month" is a promise
by the 10th (上旬 ends on the 10th). A weekday without 下/这 is the next one (today when it is today).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import cn2an
import dateparser

from duebot.actions.parsing import ParsedDate

_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_WEEKDAY = re.compile(r"(下下|下个?|这个?|本)?(?:周|星期|礼拜)([一二三四五六日天末1-7])")
_MONTH_OFFSET = r"(下下个?月|下个?月|这个?月|本月)?"
_SPAN = re.compile(r"(?:(下下个?|下个?|这个?|本)月|月)(底|末|初|中)|(上|中|下)旬")  # not 到底 / 周末
_YEAR_END = re.compile(r"(今|明)?年(底|末)")
_FULL_DATE = re.compile(r"(\d{2,4})年(\d{1,2})月(\d{1,2})[日号]?")
_MONTH_DAY = re.compile(r"(\d{1,2})月(\d{1,2})[日号]")
_DAY_ONLY = re.compile(_MONTH_OFFSET + r"(\d{1,2})[日号]")
_SLASHED = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?![\d/])")
_TWO = re.compile(r"两(?=[个天周星礼月年])")
_RELATIVE = re.compile(r"今天|今日|明天|明日|大后天|后天|\d+\s*(?:天|日|周|个星期|个礼拜|个月)(?:以?后|之后)")

_YUAN = re.compile(r"[¥￥]\s*(\d+(?:\.\d{1,2})?)|(\d+(?:\.\d{1,2})?)\s*(?:元|块|圆|人民币|rmb)"
                   r"(?:\s*(\d)\s*(?:角|毛)?(?![\d元块]))?", re.I)
_NUMBER = re.compile(r"\d+(?:\.\d{1,2})?")
_DATE_NUMBERS = re.compile(r"\d+\s*(?:年|月|日|号|天|周|个星期|个礼拜|个月|点|时|分|位|期)|(?:周|星期|礼拜)\d")
_NOT_A_NUMBER = re.compile(r"一(?:部分|点儿?|点点|些|下子?|起|直|定|样|般|共|切|会儿?|次性|口气|时|旦|边|块儿)")
_HALF = re.compile(r"一半|半数|1半")
_ALL = re.compile(r"全部|全额|所有|都还")
_ID_WORDS = re.compile(r"(?:最?后|末|尾)\s*[四4]\s*位|尾号|身份证号?码?")


def _to_arabic(text: str) -> str:
    try:
        return cn2an.transform(_TWO.sub("2", text), "cn2an")
    except (ValueError, KeyError):  # cn2an refuses some malformed numerals; keep the text as it was
        return text


def normalise(text: str) -> str:
    """Full-width digits and letters to ASCII (４４７２ → 4472), Chinese numerals to Arabic, except the 一 of
    words that are no number (一部分, 一点, 一下, 一次性…)."""
    folded = unicodedata.normalize("NFKC", text)
    parts = _NOT_A_NUMBER.split(folded)
    words = _NOT_A_NUMBER.findall(folded)
    return "".join(_to_arabic(part) + (words[i] if i < len(words) else "") for i, part in enumerate(parts))


def _last_day(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _month_offset(word: str | None) -> int:
    if not word or word.startswith(("这", "本")):
        return 0
    return 2 if word.startswith("下下") else 1


def _next_day_of_month(day: int, today: dt.date, months_ahead: int = 0) -> dt.date | None:
    year, month = _add_months(today.year, today.month, months_ahead)
    for _ in range(13):
        if day <= calendar.monthrange(year, month)[1]:
            candidate = dt.date(year, month, day)
            if candidate >= today:
                return candidate
        year, month = _add_months(year, month, 1)
    return None


def _weekday(match: re.Match[str], today: dt.date) -> dt.date:
    prefix, name = match.group(1) or "", match.group(2)
    target = int(name) - 1 if name.isdigit() else _WEEKDAYS[name]
    monday = today - dt.timedelta(days=today.weekday())
    if prefix.startswith("下下"):
        return monday + dt.timedelta(days=14 + target)
    if prefix.startswith("下"):
        return monday + dt.timedelta(days=7 + target)
    if prefix:  # 这周五 / 本周五: this week's, even when it has passed
        return monday + dt.timedelta(days=target)
    return today + dt.timedelta(days=(target - today.weekday()) % 7)


def _span(match: re.Match[str], today: dt.date) -> dt.date:
    part = match.group(2) or {"上": "初", "中": "中", "下": "底"}[match.group(3)]
    last = {"初": 10, "中": 20}.get(part)  # 上旬 ends on the 10th, 中旬 on the 20th, 下旬/月底 with the month
    offset = _month_offset(match.group(1))
    if not match.group(1) and last is not None and today.day > last:
        offset = 1  # "月初" said once the beginning of this month has passed means next month's
    year, month = _add_months(today.year, today.month, offset)
    return _last_day(year, month) if last is None else dt.date(year, month, last)


def _year(raw: str, today: dt.date) -> int:
    year = int(raw)
    if year < 100:  # 84年 → 1984, 26年 → 2026
        year += 2000 if 2000 + year <= today.year + 10 else 1900
    return year


def _explicit(text: str, today: dt.date, future: bool) -> dt.date | None:
    if match := _FULL_DATE.search(text):
        return dt.date(_year(match.group(1), today), int(match.group(2)), int(match.group(3)))
    if match := _MONTH_DAY.search(text):
        date = dt.date(today.year, int(match.group(1)), int(match.group(2)))
        return date.replace(year=today.year + 1) if future and date < today else date
    if match := _SLASHED.search(text):  # Chinese writes month/day
        date = dt.date(today.year, int(match.group(1)), int(match.group(2)))
        return date.replace(year=today.year + 1) if future and date < today else date
    return None


def parse_date(text: str, today: dt.date, *, future: bool = True) -> ParsedDate:
    """Find the date in `text`. `future=False` is for dates of birth."""
    text = normalise(text)
    try:
        explicit = _explicit(text, today, future)
    except ValueError:  # 2月30日
        return ParsedDate()
    result = explicit
    if result is None and future:
        if match := _WEEKDAY.search(text):
            result = _weekday(match, today)
        elif match := _YEAR_END.search(text):
            result = dt.date(today.year + (1 if match.group(1) == "明" else 0), 12, 31)
        elif match := _SPAN.search(text):
            result = _span(match, today)
        elif match := _DAY_ONLY.search(text):
            result = _next_day_of_month(int(match.group(2)), today, _month_offset(match.group(1)))
            if result is None:
                return ParsedDate()
    if result is None:
        phrase = _RELATIVE.search(text)
        candidate = phrase.group(0) if phrase else text
        base = dt.datetime.combine(today, dt.time(12))
        settings = {"PREFER_DATES_FROM": "future" if future else "past", "RELATIVE_BASE": base,
                    "RETURN_AS_TIMEZONE_AWARE": False}
        parsed = dateparser.parse(candidate, languages=["zh", "en"], settings=settings)
        if parsed is None:
            return ParsedDate()
        result = parsed.date()
    if future and result < today:
        return ParsedDate(result, past=True)
    return ParsedDate(result)


def _decimal(raw: str) -> Decimal | None:
    try:
        return Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return None


def parse_amount(text: str, balance: Decimal | None = None) -> Decimal | None:
    """The first money amount in `text` (五十块, 200元, 两百五, ¥80, 5块5), or a share of `balance` (一半, 全部)."""
    folded = unicodedata.normalize("NFKC", text)
    if balance is not None and _HALF.search(folded):
        return (balance / 2).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if balance is not None and _ALL.search(folded):
        return balance
    digits = re.sub(r"(?<=\d),(?=\d{3})", "", normalise(_HALF.sub(" ", folded)))  # no balance: 一半 is no number
    if match := _YUAN.search(digits):
        whole = match.group(1) or match.group(2)
        amount = _decimal(whole)
        if amount is not None and match.group(3) and "." not in whole:  # 5块5 = 5.50
            amount += Decimal(match.group(3)) / 10
        return amount
    # no currency word: the first number that is not part of a date, a time or "后四位"
    for number in _NUMBER.finditer(_DATE_NUMBERS.sub(" ", digits)):
        return _decimal(number.group(0))
    return None


def parse_digits(text: str) -> str:
    """All digits spoken or typed (四四七二, 4472, 四千四百七十二, ４４７２) as one string."""
    return "".join(re.findall(r"\d", normalise(_ID_WORDS.sub(" ", unicodedata.normalize("NFKC", text)))))


def parse_id_characters(text: str) -> str:
    """Digits and a standalone X (a Chinese ID's check character: 447X, ４４７Ｘ), upper-cased."""
    said = normalise(_ID_WORDS.sub(" ", unicodedata.normalize("NFKC", text)))
    return "".join(re.findall(r"\d|(?<![A-Za-z])[xX](?![A-Za-z])", said)).upper()
