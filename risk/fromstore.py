"""An account in the store and its history → the model's Inputs (read only; the store is not this package's).

From the store: days overdue (today − due date), amount still owed, segment, line type, wrong-number flag,
promises broken and kept, disputes ever opened, payments made towards the debt, and call attempts with how many
reached the subscriber (campaign attempts). The store does not hold tenure or the last 12 bills: an operator's
history file (`duebot risk score --history FILE`, same columns as the training file) supplies them, and any
column it gives overrides the store's value; otherwise the training median stands in and the factor is not
explained. The age band is read from birth_date only when the model uses it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

from sqlalchemy import func, select

from duebot.accounts.models import Account, Attempt, Campaign, CampaignAccount, Dispute, Payment, Promise
from duebot.accounts.store import AccountStore
from duebot.risk.features import INPUTS, Inputs, age_band

CHUNK = 1000


def _age(born: object, today: dt.date) -> int | None:
    if not born:
        return None
    day = born if isinstance(born, dt.date) else dt.date.fromisoformat(str(born))
    return today.year - day.year - ((today.month, today.day) < (day.month, day.day))


def _grouped(s, column, *where) -> dict[str, int]:  # noqa: ANN001 - a session and a column
    return {k: int(n) for k, n in s.execute(select(column, func.count()).where(*where).group_by(column)).all()}


def account_ids(store: AccountStore, statuses: Sequence[str] | None) -> list[str]:
    """Accounts to score: every one with one of `statuses` (None: all), in id order."""
    query = select(Account.id).order_by(Account.id)
    if statuses is not None:
        query = query.where(Account.status.in_(list(statuses)))
    with store.session() as s:
        return list(s.scalars(query))


def inputs_for(store: AccountStore, ids: Sequence[str], today: dt.date, *, with_age: bool = False,
               overrides: dict[str, Inputs] | None = None) -> Iterator[tuple[str, Inputs]]:
    """(account id, Inputs) for each known id, in `CHUNK`-sized queries."""
    overrides = overrides or {}
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start:start + CHUNK])
        with store.session() as s:
            accounts = {a.id: a for a in s.scalars(select(Account).where(Account.id.in_(chunk)))}
            broken = _grouped(s, Promise.account_id, Promise.account_id.in_(chunk), Promise.status == "broken")
            kept = _grouped(s, Promise.account_id, Promise.account_id.in_(chunk), Promise.status == "kept")
            disputes = _grouped(s, Dispute.account_id, Dispute.account_id.in_(chunk))
            payments = _grouped(s, Payment.account_id, Payment.account_id.in_(chunk))
            calls = (Attempt.account_id.in_(chunk), Attempt.channel == "voice",
                     Attempt.state.in_(("done", "unknown")))
            attempts = _grouped(s, Attempt.account_id, *calls)
            reached = _grouped(s, Attempt.account_id, *calls, Attempt.right_party.is_(True))
            for account_id in chunk:
                a = accounts.get(account_id)
                if a is None:
                    continue
                inputs: Inputs = {
                    "days_overdue": max(0, (today - a.due_date).days),
                    "amount": float(a.amount_due),
                    "segment": a.segment,
                    "broken_promises": broken.get(account_id, 0),
                    "kept_promises": kept.get(account_id, 0),
                    "disputes": disputes.get(account_id, 0),
                    "partial_payments": payments.get(account_id, 0),
                    "late_bills_12m": None,
                    "contact_attempts": attempts.get(account_id, 0),
                    "right_party_contacts": reached.get(account_id, 0),
                    "wrong_number": bool(a.wrong_number),
                    "tenure_months": None,
                    "line_type": a.line_type,
                    "age_band": age_band(_age(a.birth_date, today)) if with_age else None,
                }
                for name, value in overrides.get(account_id, {}).items():
                    if name in INPUTS and value is not None:
                        inputs[name] = value
                yield account_id, inputs


def active_in_campaigns(store: AccountStore, ids: Sequence[str]) -> set[str]:
    """Accounts still being worked by a running or paused campaign: their schedule was chosen with the score they
    had, so re-scoring them would move them to another schedule mid-way (the step index would then point into it)."""
    out: set[str] = set()
    with store.session() as s:
        for start in range(0, len(ids), CHUNK):
            chunk = list(ids[start:start + CHUNK])
            out |= set(s.scalars(
                select(CampaignAccount.account_id).join(Campaign, Campaign.id == CampaignAccount.campaign_id)
                .where(CampaignAccount.account_id.in_(chunk), CampaignAccount.state == "active",
                       Campaign.status.in_(("running", "paused")))))
    return out
