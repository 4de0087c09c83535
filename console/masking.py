"""The one masking module: pages, exports and logs all go through `Masker`.

Four categories of personal data (seed 000 §1.3.2/§5.2): names, ID numbers (incl. dates of birth used as a
verification factor), phone numbers and amounts. Free text is masked two ways: the values the account store
knows about the conversation's subscriber (exact name, phone, ID digits, birth date, amount), and patterns
that catch what the store does not know (any phone-like number, currency amounts, long digit runs, a name
introduced with "my name is"). A role sees a category only when the role needs it, or after a logged unmask.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

CATEGORIES = ("name", "id_number", "phone", "amount")
TOKEN = {c: f"[{c.replace('_', ' ')}]" for c in CATEGORIES}

_DATE = r"\b\d{4}-\d{2}-\d{2}(?:T[\d:.]+Z?)?\b"
_PHONE = r"(?<![\w.])\+\d[\d ().-]{6,18}\d\b|\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b|\b1\d{10}\b"
_AMOUNT = (r"(?:[$¥￥€£]|\b(?:USD|CNY|RMB|EUR)\s?)\s?\d[\d,]*(?:\.\d{1,2})?"
           r"|\b\d[\d,]*(?:\.\d{1,2})?\s?(?:元|块|美元|dollars?\b|yuan\b|USD\b|CNY\b|RMB\b|EUR\b)")
_ID = r"\b\d{17}[\dXx]\b|\b\d{4,16}\b"
_INTRO = r"(?i:\b(?:my name is|i am|i'm|name's|call me)\s+)(?P<name>[A-Z][a-z]+(?:\s[A-Z][a-z]+)?)"
# One pass, first alternative wins: a date is not an ID number, a phone number is not an amount.
_PATTERN = re.compile(rf"(?P<date>{_DATE})|(?P<phone>{_PHONE})|(?P<amount>{_AMOUNT})|(?P<id_number>{_ID})"
                      rf"|{_INTRO}")


@dataclass(frozen=True)
class Known:
    """What the account store knows about a conversation's subscriber: masked wherever it appears."""

    names: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()  # ID digits and birth dates
    amounts: tuple[str, ...] = ()

    @classmethod
    def of_account(cls, account: object | None) -> Known:
        if account is None:
            return cls()
        name = str(getattr(account, "name", "") or "")
        names = tuple({name, *[part for part in name.split() if len(part) >= 2]} - {""})
        phone = str(getattr(account, "phone", "") or "")
        phones = (phone, phone.lstrip("+"), phone[-10:]) if phone else ()
        ids = tuple(str(v) for v in (getattr(account, "id_last4", None), getattr(account, "birth_date", None)) if v)
        amount = getattr(account, "amount_due", None)
        amounts = _amount_forms(amount) if amount is not None else ()
        return cls(names, tuple(p for p in phones if len(p) >= 7), ids, amounts)


def _amount_forms(amount: Decimal | str) -> tuple[str, ...]:
    value = Decimal(str(amount))
    forms = {f"{value:.2f}", f"{value:,.2f}"}
    if value == value.to_integral_value():
        forms |= {f"{int(value)}", f"{int(value):,}"}
    return tuple(sorted(forms, key=len, reverse=True))


@dataclass
class Masker:
    """Masks every category not in `visible`. `Masker.everything()` is for logs: nothing personal shows."""

    visible: frozenset[str] = frozenset()
    known: Known = field(default_factory=Known)

    @classmethod
    def everything(cls) -> Masker:
        return cls(frozenset())

    def masks(self, category: str) -> bool:
        return category not in self.visible

    def value(self, category: str, value: object) -> str:
        """A single field whose category is known (a phone column, an amount cell)."""
        text = "" if value is None else str(value)
        return TOKEN[category] if text and self.masks(category) else text

    def text(self, text: str | None) -> str:
        if not text:
            return text or ""
        if self.visible >= set(CATEGORIES):
            return text
        # patterns first, so "$210.00" becomes one token rather than "$" and a known amount
        return self._known(_PATTERN.sub(self._replace, text))

    def _known(self, text: str) -> str:
        k = self.known
        for category, values in (("phone", k.phones), ("id_number", k.ids), ("amount", k.amounts),
                                 ("name", k.names)):
            if not self.masks(category):
                continue
            for value in sorted(values, key=len, reverse=True):
                if category == "name":
                    text = re.sub(rf"(?i)\b{re.escape(value)}\b", TOKEN[category], text)
                else:
                    text = re.sub(rf"(?<![\d.]){re.escape(value)}(?![\d])", TOKEN[category], text)
        return text

    def _replace(self, m: re.Match[str]) -> str:
        kind = m.lastgroup
        if kind == "id_number" and m.group(0) in self.known.amounts:
            kind = "amount"  # a bare "1210" that is this subscriber's balance is an amount, not an ID
        if kind == "date" or kind is None:
            return m.group(0)
        if not self.masks(kind):
            return m.group(0)
        if kind == "name":  # keep the introduction ("my name is"), mask only the name itself
            start, end = m.span("name")
            return m.group(0)[: start - m.start()] + TOKEN["name"] + m.group(0)[end - m.start():]
        return TOKEN[kind]

    def rows(self, texts: Iterable[str]) -> list[str]:
        return [self.text(t) for t in texts]


class MaskingFilter(logging.Filter):
    """Log lines of the console never carry personal data: the formatted message is masked in place."""

    def __init__(self) -> None:
        super().__init__()
        self.masker = Masker.everything()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.masker.text(record.getMessage())
        record.args = None
        return True


def console_logger() -> logging.Logger:
    logger = logging.getLogger("duebot.console")
    if not any(isinstance(f, MaskingFilter) for f in logger.filters):
        logger.addFilter(MaskingFilter())
    return logger
