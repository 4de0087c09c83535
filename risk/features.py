"""What the risk score may look at, what it must not, and how a row becomes numbers.

One parse for every source: a labelled history row (training), an operator's history row (scoring) and an
account in the store all become the same `Inputs` mapping, read by `parse_inputs` from plain field names. Only
the names in `INPUTS` are read: any other column (name, phone, gender, region…) never reaches the model, and
`duebot risk check` shows it (docs/risk.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from duebot.accounts.importer import LINE_TYPES, SEGMENTS
from duebot.accounts.models import AmountError, parse_amount

AGE_BANDS = ("18-30", "31-50", "51+")
UNKNOWN = "unknown"
MAX_COUNT = 999
MAX_DAYS = 36500
MAX_TENURE_MONTHS = 1200

# Every field `parse_inputs` reads. account_id is read for keys and duplicates only, never as a feature.
INPUTS = ("days_overdue", "amount", "segment", "broken_promises", "kept_promises", "disputes", "partial_payments",
          "late_bills_12m", "contact_attempts", "right_party_contacts", "wrong_number", "tenure_months",
          "line_type", "age_band")

# What the score never uses, and why. `duebot risk check` varies each of these that a data file holds and shows
# the score does not move. Reasons cite seed 000 where it speaks.
EXCLUDED: dict[str, str] = {
    "name": "identifies the person; says nothing lawful about paying (data minimisation, seed 000 §1.3.2)",
    "phone": "identifies the person (data minimisation, seed 000 §1.3.2)",
    "id_last4": "part of an ID number (data minimisation, seed 000 §1.3.2, §5.2)",
    "id_number": "an ID number (data minimisation, seed 000 §1.3.2, §5.2)",
    "birth_date": "read only as an age band, and only where lawful (DUEBOT_RISK_AGE_BAND)",
    "gender": "a protected attribute",
    "sex": "a protected attribute",
    "ethnicity": "a protected attribute",
    "race": "a protected attribute",
    "nationality": "a protected attribute",
    "religion": "a protected attribute",
    "marital_status": "a protected attribute in many jurisdictions",
    "disability": "a protected attribute",
    "region": "where someone lives: a proxy for ethnicity and income (seed 000 §1.1.1 ties arrears to region; "
              "scoring by it would score people by neighbourhood)",
    "timezone": "where someone lives (a proxy, as region)",
    "phone_zones": "where someone lives (a proxy, as region)",
    "language": "a proxy for ethnicity and national origin (seed 000 §6.2: minority-language users)",
    "income": "not held; seed 000 §4.1 warns of algorithmic bias against low-income users",
    "social_relations": "seed 000 §3.3 lists social relations; §4.1 calls their unauthorised use a compliance "
                        "risk: never collected, never used",
    "consent_ai_voice": "exercising a right (refusing AI calls) must not lower a score",
    "consent_sms": "exercising a right must not lower a score",
    "opted_out": "exercising a right (opting out) must not lower a score",
    "complaints": "complaining must not lower a score",
}
AGE_BAND_REASON = ("off by default (DUEBOT_RISK_AGE_BAND): seed 000 §4.1 warns of algorithmic bias against the "
                   "elderly, and many jurisdictions forbid age in credit decisions")

SEGMENT_WORDS = {
    "malicious": "in the deliberate-evasion segment",
    "cash_flow": "in the cash-flow-trouble segment",
    "dispute": "in the bill-dispute segment",
    "forgot": "in the forgot-to-pay segment",
    "legacy": "a legacy debt (over 2 years old)",
    "new_business": "a new-business line (5G, IoT, enterprise)",
}
LINE_WORDS = {"mobile": "a mobile line", "landline": "a landline", UNKNOWN: "line type not known"}


class InputError(ValueError):
    """A field that cannot be read; the message names it."""


Inputs = dict[str, object]  # field → int | float | str | bool | None (None: not known)


def _text(row: Mapping[str, object], name: str) -> str:
    value = row.get(name)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _int(row: Mapping[str, object], name: str, high: int) -> int | None:
    text = _text(row, name)
    if not text:
        return None
    if text.endswith(".0"):
        text = text[:-2]
    if not (text.isascii() and text.isdigit()) or int(text) > high:
        raise InputError(f"{name}: expected a whole number from 0 to {high}, got {text[:40]!r}")
    return int(text)


def _flag(row: Mapping[str, object], name: str) -> bool | None:
    text = _text(row, name).lower()
    if not text:
        return None
    if text in ("1", "true", "yes", "y"):
        return True
    if text in ("0", "false", "no", "n"):
        return False
    raise InputError(f"{name}: expected true/false, got {text[:40]!r}")


def _choice(row: Mapping[str, object], name: str, allowed: tuple[str, ...]) -> str | None:
    text = _text(row, name)
    if not text:
        return None
    if text not in allowed:
        raise InputError(f"{name}: one of {', '.join(allowed)}, got {text[:40]!r}")
    return text


def parse_inputs(row: Mapping[str, object], *, require: bool = True) -> Inputs:
    """The fields of INPUTS from one row, checked. `require`: days_overdue, amount and segment must be given
    (training, and every account in the store); an operator's history row for scoring may give any subset."""
    out: Inputs = {}
    out["days_overdue"] = _int(row, "days_overdue", MAX_DAYS)
    amount = _text(row, "amount")
    if amount:
        try:
            out["amount"] = float(parse_amount(amount.replace(",", ""), "amount"))
        except AmountError as exc:
            raise InputError(str(exc)) from None
    else:
        out["amount"] = None
    out["segment"] = _choice(row, "segment", SEGMENTS)
    if require:
        missing = [name for name in ("days_overdue", "amount", "segment") if out[name] is None]
        if missing:
            raise InputError(f"missing {', '.join(missing)}")
    for name in ("broken_promises", "kept_promises", "disputes", "partial_payments", "contact_attempts",
                 "right_party_contacts"):
        out[name] = _int(row, name, MAX_COUNT)
    out["late_bills_12m"] = _int(row, "late_bills_12m", 12)
    attempts, reached = out["contact_attempts"], out["right_party_contacts"]
    if reached is not None and (attempts is None or reached > attempts):  # type: ignore[operator]
        raise InputError("right_party_contacts: more than contact_attempts")
    out["wrong_number"] = _flag(row, "wrong_number")
    out["tenure_months"] = _int(row, "tenure_months", MAX_TENURE_MONTHS)
    out["line_type"] = _choice(row, "line_type", LINE_TYPES)
    out["age_band"] = _choice(row, "age_band", AGE_BANDS)
    return out


def age_band(age_years: int | None) -> str | None:
    if age_years is None or age_years < 18:
        return None
    return "18-30" if age_years <= 30 else "31-50" if age_years <= 50 else "51+"


# ------------------------------------------------------------------ features

def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{'no' if n == 0 else n} {one if n == 1 else (many or one + 's')}"


def _money(value: float) -> str:
    return f"{Decimal(str(value)).quantize(Decimal('0.01')):,}"


@dataclass(frozen=True)
class Feature:
    """One model input. `value` turns Inputs into a number (None: not known, the training median is used);
    a category feature has `categories` and one column each. `words` says the account's value plainly."""

    name: str
    doc: str
    categories: tuple[str, ...] = ()

    @property
    def is_category(self) -> bool:
        return bool(self.categories)

    @property
    def reads(self) -> tuple[str, ...]:
        """The INPUTS fields this feature is computed from."""
        return ("contact_attempts", "right_party_contacts") if self.name == "contactability" else (self.name,)

    def value(self, inputs: Inputs) -> float | None:
        if self.name == "contactability":
            attempts = _number(inputs, "contact_attempts")
            if attempts is None:
                return None
            return ((_number(inputs, "right_party_contacts") or 0) + 1) / (attempts + 2)
        v = _number(inputs, self.name)
        if v is None:
            return None
        if self.name in LOG_SCALED:
            return math.log1p(v)
        return min(v, 20.0)  # counts: a 999th broken promise says no more than the 20th

    def category(self, inputs: Inputs) -> str:
        value = inputs.get(self.name)
        return str(value) if value is not None else UNKNOWN

    def words(self, inputs: Inputs) -> str:
        """The account's value in plain words (for a known value; unknown ones are never explained)."""
        n = 0 if self.is_category or self.name == "contactability" else int(_number(inputs, self.name) or 0)
        match self.name:
            case "days_overdue":
                return f"{_plural(n, 'day')} overdue" if n else "not overdue yet"
            case "amount":
                return f"{_money(float(inputs['amount']))} owed"  # type: ignore[arg-type]
            case "broken_promises":
                return _plural(n, "broken promise") + " to pay"
            case "kept_promises":
                return _plural(n, "promise") + " to pay kept"
            case "disputes":
                return _plural(n, "past bill dispute")
            case "partial_payments":
                return _plural(n, "part payment") + (" made" if n else " made yet")
            case "late_bills_12m":
                return f"{n} of the last 12 bills paid late" if n else "none of the last 12 bills paid late"
            case "contactability":
                attempts = int(_number(inputs, "contact_attempts") or 0)
                reached = int(_number(inputs, "right_party_contacts") or 0)
                return f"reached in {reached} of {_plural(attempts, 'call attempt')}" if attempts else "not called yet"
            case "wrong_number":
                return "number reported wrong" if inputs.get("wrong_number") else "number not reported wrong"
            case "tenure_months":
                return f"a customer for {_plural(n, 'month')}"
            case "segment":
                return SEGMENT_WORDS.get(self.category(inputs), f"segment {self.category(inputs)}")
            case "line_type":
                return LINE_WORDS.get(self.category(inputs), f"line type {self.category(inputs)}")
            case "age_band":
                return f"age band {self.category(inputs)}"
        return f"{self.name} {inputs.get(self.name)}"


LOG_SCALED = ("days_overdue", "amount", "tenure_months")


def _number(inputs: Inputs, name: str) -> float | None:
    value = inputs.get(name)
    if value is None:
        return None
    return float(value)  # type: ignore[arg-type]


FEATURES: tuple[Feature, ...] = (
    Feature("days_overdue", "days since the bill was due (log scale)"),
    Feature("amount", "amount owed (log scale; one model per currency)"),
    Feature("segment", "the arrears segment (seed 000 §2.2)", SEGMENTS),
    Feature("broken_promises", "promises to pay not kept"),
    Feature("kept_promises", "promises to pay kept"),
    Feature("disputes", "bill disputes ever opened"),
    Feature("partial_payments", "payments already made towards this debt"),
    Feature("late_bills_12m", "of the last 12 bills, how many were paid late (payment history)"),
    Feature("contactability", "(calls that reached the subscriber + 1) / (call attempts + 2)"),
    Feature("wrong_number", "the number was reported as not the subscriber's"),
    Feature("tenure_months", "months as a customer (log scale)"),
    Feature("line_type", "mobile, landline or unknown", (*LINE_TYPES,)),
    Feature("age_band", "18-30, 31-50, 51+ (only with DUEBOT_RISK_AGE_BAND, where lawful)", (*AGE_BANDS, UNKNOWN)),
)
BY_NAME = {f.name: f for f in FEATURES}


def selected(use_age_band: bool, exclude: tuple[str, ...] = ()) -> tuple[Feature, ...]:
    """The features a model is trained on: all, less the age band unless enabled, less what the operator
    excludes (e.g. `disputes` where using the exercise of a dispute right against a subscriber is unlawful)."""
    unknown = [name for name in exclude if name not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown feature(s) to exclude: {', '.join(unknown)} (known: {', '.join(BY_NAME)})")
    chosen = tuple(f for f in FEATURES if f.name not in exclude and (use_age_band or f.name != "age_band"))
    if not chosen:
        raise ValueError("every feature is excluded")
    return chosen


def excluded_for(features: tuple[Feature, ...]) -> dict[str, str]:
    """EXCLUDED, plus the age band when the model does not use it."""
    out = dict(EXCLUDED)
    if "age_band" not in {f.name for f in features}:
        out["age_band"] = AGE_BAND_REASON
    return out
