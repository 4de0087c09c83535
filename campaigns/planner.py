"""Scheduling decisions: an account's schedule, its first due time, and where it goes after an attempt.

Pure but for one read: when the strategy has score bands, an account's risk score (risk/scores.py, the table
`duebot risk score` writes); a strategy without score bands never asks, and an unscored account gets its
segment's schedule as before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from duebot.accounts.models import Account
from duebot.campaigns.repo import Advance
from duebot.campaigns.strategy import Step, Strategy
from duebot.policies.timezones import zone

FINISHED_STATUSES = ("paid", "closed", "legal", "human_review")  # collection by campaign no longer applies


def account_zone(timezone: str | None, phone_zones: str | None) -> ZoneInfo | None:
    """The record's zone, else the number's first zone: only for the day-of-month rhythm (the gate checks every
    candidate zone for quiet hours itself)."""
    for name in (timezone, *(phone_zones or "").split("|")):
        if name:
            z = zone(name)
            if z is not None:
                return z
    return None


def _stored_score(account_id: str) -> int | None:
    from duebot.risk.scores import stored_score

    return stored_score(account_id)


# Where the planner reads an account's risk score (None: unscored). Replaceable for tests and other stores.
score_of: Callable[[str], float | None] = _stored_score
_UNSET = object()


def schedule_for(strategy: Strategy, account: Account, today: dt.date,
                 score: float | None | object = _UNSET) -> tuple[Step, ...]:
    """The account's steps: by score band when the strategy has them and the account has a matching score, else
    by segment and age band. `score` given (a number or None) saves the lookup."""
    if score is _UNSET:
        score = score_of(account.id) if strategy.score_bands else None
    return strategy.schedule(account.segment, strategy.band(account.birth_date, today), score)  # type: ignore[arg-type]


def first_due(strategy: Strategy, account: Account, now: float) -> float:
    steps = schedule_for(strategy, account, dt.date.today())
    if not steps:
        return now
    return strategy.due_at(steps[0], None, now, account_zone(account.timezone, account.phone_zones))


def after_attempt(strategy: Strategy, account: Account, schedule: tuple[Step, ...], step: int,
                  result: str | None, started_at: float, now: float) -> Advance:
    if result is not None and result in strategy.stop_on:
        return Advance(step + 1, now, "stopped", result)
    nxt = step + 1
    if nxt >= len(schedule):
        return Advance(nxt, now, "finished")
    zone_ = account_zone(account.timezone, account.phone_zones)
    return Advance(nxt, strategy.due_at(schedule[nxt], started_at, now, zone_))


def after_denial(step: int, reasons: list[str], next_allowed_at: float | None, now: float) -> Advance:
    """Waiting can lift the block (quiet hours, caps): retry then. It cannot (opt-out, dispute, consent): the
    account is blocked with the first reason, and a resume or a new campaign re-checks it."""
    if next_allowed_at is None:
        return Advance(step, now, "blocked", reasons[0] if reasons else "DENIED")
    return Advance(step, max(next_allowed_at, now + 1.0))
