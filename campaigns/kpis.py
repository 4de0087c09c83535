"""Campaign results and the seed's KPIs (seed 000 §2.4), from the attempts table plus what conversations wrote
to the account store (promises, plans, disputes, payments, opt-outs, complaints, handoffs). Targets are data
(campaigns/kpi_targets.yml, shared with the money KPIs by branch and period in campaigns/money.py).

self_service_repayment_rate: accounts that paid since the launch with no person involved before their first
payment (no human-queue step or agent-handled contact, no handoff, callback or legal-track event) ÷ accounts that
paid since the launch. (It used to subtract only the campaign's human attempts, which never pay in the same step,
so it was 1.0 whatever happened.)"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from duebot.accounts.store import AccountStore
from duebot.campaigns.money import HUMAN_EVENTS, load_targets, opt_out_rows
from duebot.campaigns.repo import CampaignRepo

SETTLED = ("payment", "promise", "plan")
# The campaign report's KPIs that have a seed target (values in campaigns/kpi_targets.yml).
TARGETED = ("answer_rate", "first_contact_success", "automated_share", "self_service_repayment_rate")


@dataclass
class CampaignData:
    accounts: dict[str, str]  # account id → segment
    attempts: list[dict[str, Any]]
    promises: list[tuple[str, Decimal, float]]  # account, amount, created (epoch)
    plans: set[str]
    disputes: set[str]
    payments: dict[str, list[tuple[Decimal, float]]]
    opted_out: set[str]
    complaints: int
    launched_at: float | None
    human_accounts: set[str] = field(default_factory=set)
    human_from: dict[str, float] = field(default_factory=dict)  # account → first time a person took part


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        import datetime as dt
        stamp = dt.datetime.fromisoformat(value)
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)).timestamp()
    return value.timestamp()


def load(store: AccountStore, campaign_id: str) -> CampaignData:
    campaign = CampaignRepo(store).get(campaign_id)
    if campaign is None:
        raise KeyError(campaign_id)
    since = campaign.launched_at or 0.0
    members = "SELECT account_id FROM campaign_accounts WHERE campaign_id = :c"
    p = {"c": campaign_id}
    with store.engine.connect() as c:
        accounts = dict(c.execute(text(f"SELECT id, segment FROM accounts WHERE id IN ({members})"), p).all())
        cols = ("account_id", "step", "step_name", "channel", "state", "started_at", "outcome", "right_party",
                "result", "handled_by", "duration", "reasons")
        attempts = [dict(zip(cols, r, strict=True)) for r in c.execute(text(
            f"SELECT {', '.join(cols)} FROM campaign_attempts WHERE campaign_id = :c ORDER BY started_at"), p)]
        for a in attempts:  # raw SQL returns the JSON column as text
            if isinstance(a["reasons"], str):
                a["reasons"] = json.loads(a["reasons"])
        promises = [(a, Decimal(str(amt)), _epoch(at)) for a, amt, at in c.execute(text(
            f"SELECT account_id, amount, created_at FROM promises WHERE account_id IN ({members})"), p)
            if _epoch(at) >= since]
        plans = {a for a, at in c.execute(text(
            f"SELECT account_id, created_at FROM installment_plans WHERE account_id IN ({members})"), p)
            if _epoch(at) >= since}
        disputes = {a for a, at in c.execute(text(
            f"SELECT account_id, opened_at FROM disputes WHERE account_id IN ({members})"), p) if _epoch(at) >= since}
        payments: dict[str, list[tuple[Decimal, float]]] = defaultdict(list)
        for a, amt, at in c.execute(text(
                f"SELECT account_id, amount, paid_at FROM payments WHERE account_id IN ({members})"), p):
            if _epoch(at) >= since:
                payments[a].append((Decimal(str(amt)), _epoch(at)))
        with store.session() as s:  # opt-outs are per number: matched through its blind index
            opted = {a for a, out, at in opt_out_rows(store, s, accounts) if out and _epoch(at) >= since}
        complaints = sum(1 for (at,) in c.execute(text(
            f"SELECT at FROM account_events WHERE kind = 'complaint' AND account_id IN ({members})"), p)
            if _epoch(at) >= since)
        kinds = ", ".join(f"'{k}'" for k in HUMAN_EVENTS)
        people = [(a, _epoch(at)) for a, at in c.execute(text(
            f"SELECT account_id, at FROM account_events WHERE kind IN ({kinds}) AND account_id IN ({members})"), p)]
    data = CampaignData(accounts, attempts, promises, plans, disputes, dict(payments), opted, complaints,
                        campaign.launched_at)
    data.human_accounts = {a["account_id"] for a in attempts
                           if a["handled_by"] == "human" or a["channel"] == "human"}
    human = people + [(a["account_id"], a["started_at"]) for a in attempts
                      if (a["handled_by"] == "human" or a["channel"] == "human") and a["started_at"] is not None]
    for account, at in human:
        data.human_from[account] = min(at, data.human_from.get(account, at))
    return data


def self_service_payers(data: CampaignData) -> set[str]:
    """Accounts whose first payment (since the launch) came before any person took part."""
    return {a for a, pays in data.payments.items()
            if a not in data.human_from or data.human_from[a] > min(at for _, at in pays)}


def _rate(num: int | float, den: int | float) -> float | None:
    return round(num / den, 4) if den else None


def compute(data: CampaignData) -> dict[str, Any]:
    contacts = [a for a in data.attempts if a["channel"] in ("sms", "voice") and a["state"] in ("done", "unknown")]
    calls = [a for a in contacts if a["channel"] == "voice"]
    answered = [a for a in calls if a["outcome"] in ("answered", "conversation")]
    attempted = {a["account_id"] for a in contacts}
    reached = {a["account_id"] for a in contacts if a["outcome"] in ("answered", "conversation")
               or (a["channel"] == "sms" and a["outcome"] == "delivered")}
    rpc_attempts = [a for a in contacts if a["right_party"]]
    rpc = {a["account_id"] for a in rpc_attempts}
    first_rpc: dict[str, dict[str, Any]] = {}
    for a in rpc_attempts:
        first_rpc.setdefault(a["account_id"], a)
    first_success = sum(1 for a in first_rpc.values() if a["result"] in SETTLED)
    promised = {a for a, _, _ in data.promises}
    kept = sum(1 for a, amount, at in data.promises
               if sum(x for x, paid_at in data.payments.get(a, []) if paid_at >= at - 1) >= amount)
    paid = set(data.payments)
    settled = {a["account_id"] for a in contacts if a["result"] in SETTLED} | promised | data.plans | paid
    handled = [a for a in data.attempts if a["right_party"] or a["channel"] == "human"]
    by_bot = sum(1 for a in handled if a["handled_by"] == "bot")
    durations = [a["duration"] for a in contacts if a["duration"] and a["outcome"] in ("conversation", "answered")]
    resolution_hours = []
    first_at: dict[str, float] = {}
    for a in contacts:
        first_at.setdefault(a["account_id"], a["started_at"])
        if a["result"] in SETTLED and a["account_id"] in first_at:
            resolution_hours.append((a["started_at"] - first_at[a["account_id"]]) / 3600 + (a["duration"] or 0) / 3600)
    denials = Counter(r for a in data.attempts if a["state"] == "denied" for r in (a["reasons"] or []))
    kpis = {
        "accounts": len(data.accounts),
        "accounts_attempted": len(attempted),
        "contact_attempts": len(contacts),
        "sms_sent": len(contacts) - len(calls),
        "calls": len(calls),
        "answer_rate": _rate(len(answered), len(calls)),
        "contact_rate": _rate(len(reached), len(attempted)),
        "right_party_contact_rate": _rate(len(rpc), len(attempted)),
        "first_contact_success": _rate(first_success, len(rpc)),
        "promise_rate": _rate(len(promised), len(rpc)),
        "plan_rate": _rate(len(data.plans), len(rpc)),
        "kept_promise_rate": _rate(kept, len(data.promises)),
        "dispute_rate": _rate(len(data.disputes), len(attempted)),
        "opt_out_rate": _rate(len(data.opted_out), len(attempted)),
        "automated_share": _rate(by_bot, len(handled)),
        "self_service_repayment_rate": _rate(len(self_service_payers(data)), len(paid)),
        "settled_accounts": len(settled),
        "paid_accounts": len(paid),
        "complaints": data.complaints,
        "complaints_per_1000_contacts": round(1000 * data.complaints / len(contacts), 2) if contacts else None,
        "handling_seconds_mean": round(statistics.fmean(durations), 1) if durations else None,
        "hours_to_resolution_median": round(statistics.median(resolution_hours), 2) if resolution_hours else None,
        "outcome_unknown_attempts": sum(1 for a in contacts if a["state"] == "unknown"),
        "gate_denials": dict(denials.most_common()),
    }
    targets = load_targets().kpis
    kpis["targets"] = {k: {"target": targets[k].target, "met": targets[k].met(kpis[k])}
                       for k in TARGETED if k in targets}
    return kpis


def funnel(data: CampaignData) -> list[tuple[str, int]]:
    contacts = [a for a in data.attempts if a["channel"] in ("sms", "voice") and a["state"] in ("done", "unknown")]
    reached = {a["account_id"] for a in contacts if a["outcome"] in ("answered", "conversation", "delivered")}
    rpc = {a["account_id"] for a in contacts if a["right_party"]}
    settled = {a["account_id"] for a in contacts if a["result"] in SETTLED} | {a for a, _, _ in data.promises} \
        | data.plans | set(data.payments)
    return [("accounts", len(data.accounts)), ("contacted", len({a["account_id"] for a in contacts})),
            ("reached", len(reached)), ("right party", len(rpc)), ("settled", len(settled)),
            ("paid", len(data.payments))]


def final_outcome(data: CampaignData) -> dict[str, str]:
    """One label per account, most decisive first."""
    out = {}
    last_result: dict[str, str] = {}
    for a in data.attempts:
        if a["result"]:
            last_result[a["account_id"]] = a["result"]
    promised = {a for a, _, _ in data.promises}
    for account in data.accounts:
        if account in data.payments:
            label = "paid"
        elif account in data.plans:
            label = "plan"
        elif account in promised:
            label = "promise"
        elif account in data.disputes:
            label = "dispute"
        elif account in data.opted_out:
            label = "opt_out"
        elif account in data.human_accounts:
            label = "human_queue"
        elif account in last_result:
            label = "other"
        else:
            label = "no_settlement"
        out[account] = label
    return out


def outcomes_by_segment(data: CampaignData) -> dict[str, Counter]:
    table: dict[str, Counter] = defaultdict(Counter)
    for account, label in final_outcome(data).items():
        table[data.accounts[account]][label] += 1
    return dict(table)


def outcomes_over_time(data: CampaignData, max_buckets: int = 48) -> tuple[float, list[tuple[float, Counter]]]:
    """(bucket seconds, [(bucket start, outcome counts)]) with a bucket size that fits the campaign's span."""
    contacts = [a for a in data.attempts if a["channel"] in ("sms", "voice") and a["started_at"]]
    if not contacts:
        return 3600.0, []
    start, end = contacts[0]["started_at"], contacts[-1]["started_at"]
    size = next((s for s in (1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400) if (end - start) / s <= max_buckets),
                86400 * 7)
    buckets: dict[float, Counter] = defaultdict(Counter)
    for a in contacts:
        b = start + size * int((a["started_at"] - start) // size)
        buckets[b][a["outcome"] or "unknown"] += 1
    return float(size), sorted(buckets.items())
