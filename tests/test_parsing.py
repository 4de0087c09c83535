import datetime as dt
from decimal import Decimal

import pytest

from duebot.actions.parsing import parse_amount, parse_date, parse_digits

TODAY = dt.date(2026, 11, 24)  # a Tuesday


@pytest.mark.parametrize(("text", "expected"), [
    ("Friday", dt.date(2026, 11, 27)),
    ("I can pay on Friday", dt.date(2026, 11, 27)),
    ("the 15th", dt.date(2026, 12, 15)),         # the next 15th, not last week's
    ("on the 30th", dt.date(2026, 11, 30)),
    ("end of the month", dt.date(2026, 11, 30)),
    ("by the end of next month", dt.date(2026, 12, 31)),
    ("next week", dt.date(2026, 12, 1)),
    ("tomorrow", dt.date(2026, 11, 25)),
    ("December 3rd", dt.date(2026, 12, 3)),
    ("fifty now and the rest on the 15th", dt.date(2026, 12, 15)),
])
def test_future_dates(text, expected):
    assert parse_date(text, TODAY).date == expected


def test_two_way_numeric_date_is_ambiguous():
    parsed = parse_date("03/04", TODAY)
    assert parsed.date is None
    assert parsed.ambiguous == (dt.date(2026, 3, 4), dt.date(2026, 4, 3))


def test_past_and_missing_dates():
    assert parse_date("yesterday", TODAY).past
    assert parse_date("no idea", TODAY).date is None


def test_birth_dates_are_in_the_past():
    assert parse_date("May 17 1984", TODAY, future=False).date == dt.date(1984, 5, 17)


@pytest.mark.parametrize(("text", "expected"), [
    ("fifty dollars", Decimal("50.00")),
    ("I can pay $120.5 today", Decimal("120.50")),
    ("1,200", Decimal("1200.00")),
    ("one hundred and twenty five", Decimal("125.00")),
    ("pay on the 15th", None),
    ("nothing", None),
])
def test_amounts(text, expected):
    assert parse_amount(text) == expected


def test_digits_spoken_or_typed():
    assert parse_digits("four four seven two") == "4472"
    assert parse_digits("it's 44 72") == "4472"
