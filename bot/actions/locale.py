"""How values are written inside the bot's sentences, per conversation language (data in bot/locales/<lang>.yml).

The sentences are Rasa responses (bot/domain.yml, one variation per language); the actions fill their
{variables} with dates, amounts and schedules written here, so a Chinese sentence gets 11月28日（星期五） and
230.50元 where the English one gets Friday 28 November and $230.50.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from duebot.settings import LANGUAGES, PROJECT_ROOT

LOCALES = PROJECT_ROOT / "bot" / "locales"
REQUIRED = ("weekdays", "months", "day", "money", "schedule_item", "schedule_separator", "plan_option",
            "account_holder")


@dataclass(frozen=True)
class Locale:
    language: str
    data: dict[str, Any]

    def day(self, date: dt.date) -> str:
        return self.data["day"].format(weekday=self.data["weekdays"][date.weekday()], day=date.day,
                                       month=self.data["months"][date.month - 1])

    def money(self, amount: Decimal, currency: str) -> str:
        formats = self.data["money"]
        return formats.get(currency, formats["other"]).format(amount=f"{amount:,.2f}", currency=currency)

    def schedule(self, parts: Iterable[tuple[dt.date, str]]) -> str:
        """`parts`: (due date, amount already written with `money`)."""
        return self.data["schedule_separator"].join(self.data["schedule_item"].format(date=self.day(d), amount=a)
                                                    for d, a in parts)

    @property
    def plan_option(self) -> str:
        return str(self.data["plan_option"])

    def dispute_words(self) -> dict[str, list[str]]:
        return {reason: list(words) for reason, words in (self.data.get("dispute_reasons") or {}).items()}

    def strategy_value(self, strategy: dict[str, Any], key: str) -> Any:
        """A strategy value as said in this language: the strategy's `localized.<lang>.<key>`, else this
        locale's own default, else the strategy's value (English)."""
        localized = ((strategy.get("localized") or {}).get(self.language) or {})
        if key in localized:
            return localized[key]
        if self.language != "en" and key in self.data:
            return self.data[key]
        return strategy[key]


@lru_cache(maxsize=len(LANGUAGES))
def load_locale(language: str, directory: Path = LOCALES) -> Locale:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: expected one of {', '.join(LANGUAGES)}")
    path = directory / f"{language}.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    if len(data["weekdays"]) != 7 or len(data["months"]) != 12 or "other" not in data["money"]:
        raise ValueError(f"{path}: needs 7 weekdays, 12 months and a money format for 'other' currencies")
    return Locale(language, data)
