"""Mandarin dates, amounts and ID digits (bot/actions/parsing_zh.py), on fixed days so every case is exact."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from duebot.actions.parsing_zh import parse_amount, parse_date, parse_digits

TUESDAY = dt.date(2026, 11, 24)
FRIDAY = dt.date(2026, 11, 27)
DECEMBER_END = dt.date(2026, 12, 30)


@pytest.mark.parametrize(("text", "expected"), [
    ("周五", dt.date(2026, 11, 27)),
    ("星期五", dt.date(2026, 11, 27)),
    ("我礼拜五还", dt.date(2026, 11, 27)),
    ("下周五", dt.date(2026, 12, 4)),           # Friday of next week, not the coming Friday
    ("我下周五能还上", dt.date(2026, 12, 4)),
    ("下下周一", dt.date(2026, 12, 7)),
    ("周末", dt.date(2026, 11, 28)),
    ("明天", dt.date(2026, 11, 25)),
    ("后天吧", dt.date(2026, 11, 26)),
    ("三天后", dt.date(2026, 11, 27)),
    ("两周后", dt.date(2026, 12, 8)),
    ("15号", dt.date(2026, 12, 15)),            # the next 15th
    ("十五号", dt.date(2026, 12, 15)),
    ("24号", dt.date(2026, 11, 24)),            # today still counts
    ("下个月15号", dt.date(2026, 12, 15)),
    ("12月15日", dt.date(2026, 12, 15)),
    ("十二月十五号", dt.date(2026, 12, 15)),
    ("1月3日", dt.date(2027, 1, 3)),            # a month-day already past this year is next year's
    ("月底", dt.date(2026, 11, 30)),
    ("这个月底前", dt.date(2026, 11, 30)),
    ("下个月底", dt.date(2026, 12, 31)),
    ("下个月初", dt.date(2026, 12, 10)),        # a span means its last day: 上旬 ends on the 10th
    ("月初", dt.date(2026, 12, 10)),            # this month's beginning is over: next month's
    ("年底", dt.date(2026, 12, 31)),
    ("2026年12月20日", dt.date(2026, 12, 20)),
])
def test_dates(text: str, expected: dt.date) -> None:
    parsed = parse_date(text, TUESDAY)
    assert parsed.date == expected and not parsed.past, parsed


def test_weekday_said_on_that_day_is_today_and_this_weeks_can_be_past() -> None:
    assert parse_date("周五", FRIDAY).date == FRIDAY
    monday = parse_date("这周一", TUESDAY)
    assert monday.date == dt.date(2026, 11, 23) and monday.past


def test_month_ends_and_spans_across_the_year() -> None:
    assert parse_date("下个月底", DECEMBER_END).date == dt.date(2027, 1, 31)
    assert parse_date("下个月初", DECEMBER_END).date == dt.date(2027, 1, 10)
    assert parse_date("31号", dt.date(2026, 11, 24)).date == dt.date(2026, 12, 31)  # November has no 31st


@pytest.mark.parametrize("text", ["到底多少钱", "随便", "我没钱", "2月30日", ""])
def test_no_date(text: str) -> None:
    assert parse_date(text, TUESDAY).date is None


def test_dates_of_birth() -> None:
    for text in ("1984年5月17日", "八四年五月十七号", "一九八四年五月十七日"):
        assert parse_date(text, TUESDAY, future=False).date == dt.date(1984, 5, 17), text


@pytest.mark.parametrize(("text", "expected"), [
    ("五十块", "50"),
    ("200元", "200"),
    ("两百五", "250"),
    ("¥80", "80"),
    ("5块5", "5.5"),
    ("一百块五毛", "100.5"),
    ("一万二", "12000"),
    ("1,200元", "1200"),
    ("我先还三百，剩下的月底还", "300"),
    ("我15号先还100", "100"),                 # 15号 is a date, not an amount
    ("下周五还两百", "200"),
    ("先还一半吧", "105.00"),                 # half of the 210.00 balance
    ("全部还清", "210.00"),
])
def test_amounts(text: str, expected: str) -> None:
    assert parse_amount(text, Decimal("210.00")) == Decimal(expected)


def test_no_amount_and_half_needs_a_balance() -> None:
    for text in ("我今天只能先还一部分", "先还一点", "我先还一些", "一次性还清"):  # 一 that is no number
        assert parse_amount(text, Decimal("210.00")) is None and parse_digits(text) == "", text
    assert parse_amount("随便") is None
    assert parse_amount("下周五") is None
    assert parse_amount("一半") is None


@pytest.mark.parametrize(("text", "expected"), [
    ("四四七二", "4472"), ("4472", "4472"), ("４４７２", "4472"), ("四千四百七十二", "4472"),
    ("幺二三四", "1234"), ("后四位是四四七二", "4472"), ("我的身份证后四位是4472", "4472"), ("尾号4472", "4472"),
    ("4 4 7 2", "4472"), ("不告诉你", ""),
])
def test_id_digits(text: str, expected: str) -> None:
    assert parse_digits(text) == expected
