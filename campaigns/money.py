"""Money KPIs by branch and period (issue 22): what was owed, what came back, what went bad, how it was handled.

The book is read from the account store (accounts, payments, promises, plans, events, opt-outs, campaign attempts,
the branch side table) and, for compliance, the evidence log's three-elements assessments. Every KPI is computed
for a group of accounts (a branch, a segment, or all) and a period (an ISO week, a month, a quarter, a year) cut in
the KPI time zone (DUEBOT_KPI_TIMEZONE), and shown beside its seed target (campaigns/kpi_targets.yml).

Definitions (P = [start, end) of the period; an account is *overdue* from the start of the day after its due date;
a payment counts toward arrears only when made once the account is overdue):

* amount_due: what was owed during P: each overdue account's balance at the start of P (or when it fell due within
  P), accounts written off before P left out. opening_arrears + new_arrears.
* amount_recovered: payments made in P on those accounts (at most what each owed).
* recovery_rate_amount = amount_recovered ÷ amount_due; recovery_rate_accounts = accounts whose balance reached 0
  by a payment in P ÷ accounts owing during P.
* new_arrears_recovery_rate: of the arrears that fell due in P, the share paid by the report's as-of time.
* bad_debt_rate: of the arrears outstanding at the end of P, the share that is bad debt: written off (an account
  event `write_off`, or the account's status `written_off` / `closed` with a balance) or overdue more than
  `bad_debt_days`. new_bad_debt_rate (net): debt that became bad in P, less what was paid on bad debt in P, ÷
  amount_due.
* promise_kept_rate_amount: for promises whose deadline (end of the promised day + `promise_grace_days`) falls in P
  and has passed: the amount paid between the promise and its deadline (each payment used once, earliest promise
  first) ÷ the amount promised. Partial payments count by their amount.
* handling_hours_mean / _median: for accounts settled in P, hours from the first contact (an outbound SMS or call,
  or a conversation) to the settlement (the first payment, promise or plan after it).
* complaints (account events `complaint` in P), complaints_per_1000_contacts (÷ SMS and calls made in P × 1000),
  complaints_per_month (scaled to a 30.44-day month), complaints_change_yoy (against the same period a year before).
* compliance_rate: conversations with all three script elements (identity confirmed, amount, deadline: the
  evidence writer's latest `three_elements` assessment) ÷ conversations that reached disclosure (a `disclosure`
  event, or an assessment that found the amount stated) and were assessed; compliance_pending counts those not
  yet assessed. gate_pass_rate: SMS and calls made with the gate's reservation ÷ SMS and calls made.
  opt_out_honoured_rate: opt-outs in P stored when made (within a minute) and followed by no outbound contact
  while they held ÷ opt-outs in P.
* automated_share: of the contacts a party was handled in (right-party conversations, human-queue steps), the
  share the bot handled.
* self_service_repayment_rate: accounts that paid in P with no person involved before their first payment in P
  (no human-queue step or agent-handled contact, no handoff, callback or legal-track event) ÷ accounts that paid
  in P. self_service_share_of_reached divides the same count by the accounts reached in P.
* answer_rate (calls answered ÷ calls), first_contact_success (accounts whose first right-party contact, in P,
  ended in a payment, promise or plan ÷ accounts whose first right-party contact was in P).
"""

from __future__ import annotations

import bisect
import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import select

from duebot.accounts.models import (
    Account,
    Attempt,
    CampaignAccount,
    Event,
    InstallmentPlan,
    OptOut,
    Payment,
    Promise,
)
from duebot.accounts.store import AccountStore
from duebot.campaigns.branches import branches as stored_branches
from duebot.settings import load_settings

TARGETS_FILE = Path(__file__).resolve().parent / "kpi_targets.yml"
PERIODS = ("week", "month", "quarter", "year")
GROUPINGS = ("branch", "segment", "none")
ALL = "all"
NO_BRANCH = "(no branch)"
SETTLING = ("payment", "promise", "plan")
CONTACTED = ("done", "unknown")  # a contact made (unknown: outcome lost in a crash, never repeated)
STARTED = ("started", "done", "unknown")  # a contact begun: what an opt-out must stop
HUMAN_EVENTS = ("handoff", "callback", "legal_track")  # a person takes the case over
WRITE_OFF_STATUSES = ("written_off", "closed")
# The account events read: people taking over, complaints, disclosures, opt-outs, write-offs, and the other marks a
# conversation leaves (its first one is the account's first contact when no outbound contact came before).
EVENT_KINDS = (*HUMAN_EVENTS, "complaint", "disclosure", "opt_out", "write_off", "identity_verified",
               "verification_failed", "payment_link", "dispute", "hardship", "wrong_number", "third_party")
OPT_OUT_STORED_WITHIN = 60.0  # seconds between the opt-out and its row in opt_outs: "in the same turn"
ZERO = Decimal("0.00")
MONTH_DAYS = 30.4375
# The KPIs the console's cards and the /metrics gauges show, in this order.
HEADLINE = ("recovery_rate_amount", "recovery_rate_accounts", "new_arrears_recovery_rate", "bad_debt_rate",
            "promise_kept_rate_amount", "handling_hours_mean", "complaints_per_1000_contacts", "compliance_rate",
            "automated_share", "self_service_repayment_rate")


# ------------------------------------------------------------------------------------------------ targets

@dataclass(frozen=True)
class Target:
    key: str
    label: str
    unit: str
    target: float | None
    direction: str  # min: value >= target; max: value <= target
    source: str
    by_period: dict[str, float] = field(default_factory=dict)

    def for_period(self, kind: str | None) -> float | None:
        return self.by_period.get(kind, self.target) if kind else self.target

    def met(self, value: float | None, kind: str | None = None) -> bool | None:
        target = self.for_period(kind)
        if value is None or target is None:
            return None
        return value >= target if self.direction == "min" else value <= target

    def shown(self, kind: str | None = None) -> str:
        target = self.for_period(kind)
        if target is None:
            return "no seed target"
        sign = "≥" if self.direction == "min" else "≤"
        return f"{sign} {format_value(self.key, target, self.unit)}"


@dataclass(frozen=True)
class Targets:
    kpis: dict[str, Target]
    bad_debt_days: int = 90
    promise_grace_days: int = 0
    path: str = ""


class TargetsError(ValueError):
    pass


def load_targets(path: Path | str | None = None) -> Targets:
    """The targets file: `path`, else DUEBOT_KPI_TARGETS, else the packaged campaigns/kpi_targets.yml."""
    chosen = Path(path) if path else (load_settings().kpi.targets or TARGETS_FILE)
    return _targets(str(chosen.resolve()), chosen.stat().st_mtime_ns if chosen.exists() else 0)


@lru_cache(maxsize=8)
def _targets(path: str, _mtime: int) -> Targets:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TargetsError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("kpis"), dict):
        raise TargetsError(f"{path}: expected a mapping with `kpis`")
    kpis: dict[str, Target] = {}
    for key, spec in raw["kpis"].items():
        if not isinstance(spec, dict):
            raise TargetsError(f"{path}: kpis.{key} is not a mapping")
        direction = spec.get("direction", "min")
        if direction not in ("min", "max"):
            raise TargetsError(f"{path}: kpis.{key}.direction is min or max, not {direction!r}")
        target = spec.get("target")
        by_period = spec.get("by_period") or {}
        if unknown := set(by_period) - set(PERIODS):
            raise TargetsError(f"{path}: kpis.{key}.by_period: unknown period {', '.join(sorted(unknown))}")
        try:
            kpis[key] = Target(key, str(spec.get("label", key.replace("_", " "))), str(spec.get("unit", "rate")),
                               None if target is None else float(target), direction, str(spec.get("source", "")),
                               {k: float(v) for k, v in by_period.items()})
        except (TypeError, ValueError) as exc:
            raise TargetsError(f"{path}: kpis.{key}: {exc}") from exc
    params = raw.get("parameters") or {}
    return Targets(kpis, int(params.get("bad_debt_days", 90)), int(params.get("promise_grace_days", 0)), path)


def format_value(key: str, value: Any, unit: str | None = None) -> str:
    """A KPI value as people read it: rates as percentages, hours with one decimal, money with two."""
    if value is None:
        return "—"
    if isinstance(value, str | bool):
        return str(value)
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if unit is None:
        unit = ("rate" if any(word in key for word in ("rate", "share", "success", "_yoy", "gap"))
                else "hours" if "hours" in key else "number")
    if unit == "rate":
        return f"{value * 100:.2f}".rstrip("0").rstrip(".") + "%"
    if unit == "hours":
        return f"{value:.1f} h"
    if isinstance(value, float) and not (value.is_integer() and unit != "ratio"):
        return f"{value:,.2f}"
    return f"{int(value):,}"


# ------------------------------------------------------------------------------------------------ periods

@dataclass(frozen=True)
class Period:
    kind: str
    label: str
    start: float  # epoch seconds, inclusive
    end: float  # exclusive

    @property
    def days(self) -> float:
        return (self.end - self.start) / 86400

    def contains(self, t: float | None) -> bool:
        return t is not None and self.start <= t < self.end


def _first_day(day: dt.date, kind: str) -> dt.date:
    if kind == "week":
        return day - dt.timedelta(days=day.weekday())
    if kind == "month":
        return day.replace(day=1)
    if kind == "quarter":
        return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if kind == "year":
        return dt.date(day.year, 1, 1)
    raise ValueError(f"period is one of {', '.join(PERIODS)}, not {kind!r}")


def _next_first(first: dt.date, kind: str) -> dt.date:
    if kind == "week":
        return first + dt.timedelta(days=7)
    if kind == "year":
        return dt.date(first.year + 1, 1, 1)
    months = 1 if kind == "month" else 3
    month = first.month - 1 + months
    return dt.date(first.year + month // 12, month % 12 + 1, 1)


def _label(first: dt.date, kind: str) -> str:
    if kind == "week":
        year, week, _ = first.isocalendar()
        return f"{year}-W{week:02d}"
    if kind == "month":
        return f"{first.year}-{first.month:02d}"
    if kind == "quarter":
        return f"{first.year}-Q{(first.month - 1) // 3 + 1}"
    return str(first.year)


def day_start(day: dt.date, tz: ZoneInfo) -> float:
    return dt.datetime.combine(day, dt.time(0), tz).timestamp()


def period_of_day(day: dt.date, kind: str, tz: ZoneInfo) -> Period:
    first = _first_day(day, kind)
    return Period(kind, _label(first, kind), day_start(first, tz), day_start(_next_first(first, kind), tz))


def period_at(t: float, kind: str, tz: ZoneInfo) -> Period:
    return period_of_day(dt.datetime.fromtimestamp(t, tz).date(), kind, tz)


def periods_between(since: dt.date, until: dt.date, kind: str, tz: ZoneInfo) -> list[Period]:
    """The contiguous periods covering the days since..until (both included)."""
    out = []
    first = _first_day(since, kind)
    while first <= until:
        nxt = _next_first(first, kind)
        out.append(Period(kind, _label(first, kind), day_start(first, tz), day_start(nxt, tz)))
        first = nxt
    return out


def year_before(p: Period, tz: ZoneInfo) -> Period:
    """The same period a year earlier (a week: 52 weeks earlier, so weekdays line up)."""
    first = dt.datetime.fromtimestamp(p.start, tz).date()
    earlier = first - dt.timedelta(weeks=52) if p.kind == "week" else first.replace(year=first.year - 1)
    return period_of_day(earlier, p.kind, tz)


DEFAULT_SPAN = {"week": 13, "month": 12, "quarter": 8, "year": 3}  # periods shown when no start date is given


def default_since(until: dt.date, kind: str) -> dt.date:
    first = _first_day(until, kind)
    for _ in range(DEFAULT_SPAN[kind] - 1):
        first = _first_day(first - dt.timedelta(days=1), kind)
    return first


# ------------------------------------------------------------------------------------------------ the book

def _epoch(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


@dataclass
class AccountFacts:
    id: str
    branch: str
    segment: str
    overdue_at: float  # start of the day after the due date (KPI time zone)
    balance: Decimal  # owed now
    status: str
    pay_times: list[float] = field(default_factory=list)  # sorted
    pay_amounts: list[Decimal] = field(default_factory=list)
    paid_before: list[Decimal] = field(default_factory=list)  # prefix sums: paid_before[i] = sum(pay_amounts[:i])
    original: Decimal = ZERO
    write_off_at: float | None = None
    bad_at: float | None = None
    first_contact_at: float | None = None
    settled_at: float | None = None
    human_at: float | None = None  # first time a person took part
    first_rpc: tuple[float, str | None] | None = None  # first right-party contact: (started, result)

    def paid_until(self, t: float) -> Decimal:
        """Paid strictly before t."""
        return self.paid_before[bisect.bisect_left(self.pay_times, t)]

    def balance_at(self, t: float) -> Decimal:
        return max(ZERO, self.original - self.paid_until(t))

    def paid_between(self, start: float, end: float) -> Decimal:
        return self.paid_until(end) - self.paid_until(start)

    def first_payment_in(self, start: float, end: float) -> float | None:
        i = bisect.bisect_left(self.pay_times, start)
        return self.pay_times[i] if i < len(self.pay_times) and self.pay_times[i] < end else None


@dataclass(frozen=True)
class Contact:
    account: str
    channel: str  # sms | voice | human
    state: str
    started_at: float
    outcome: str | None
    right_party: bool
    result: str | None
    handled_by: str | None
    gated: bool  # made under a gate reservation


@dataclass(frozen=True)
class Conversation:
    id: str
    account: str | None
    at: float
    reached_disclosure: bool
    assessed: bool
    complete: bool


@dataclass
class Book:
    accounts: dict[str, AccountFacts]
    contacts: dict[str, list[Contact]]  # by account, sorted by start
    promises: list[tuple[str, Decimal, float, Decimal]]  # account, amount, deadline, kept amount
    complaints: list[tuple[str | None, float]]
    conversations: list[Conversation]
    opt_outs: list[tuple[str, float, bool]]  # account, when, honoured
    targets: Targets
    tz: ZoneInfo
    as_of: float
    evidence_read: bool  # False: no evidence log, compliance unknown

    def group_of(self, by: str) -> dict[str, str]:
        if by == "branch":
            return {a.id: a.branch or NO_BRANCH for a in self.accounts.values()}
        if by == "segment":
            return {a.id: a.segment for a in self.accounts.values()}
        return {a.id: ALL for a in self.accounts.values()}


def load_book(store: AccountStore, *, as_of: float | None = None, campaign: str | None = None,
              branches: Sequence[str] | None = None, evidence: Any = None, tz: str | ZoneInfo | None = None,
              targets: Targets | None = None) -> Book:
    """Everything the money KPIs read. `evidence`: an EvidenceLog, or its directory (default: the data dir's);
    False: do not read it (compliance then unknown). `branches`: only accounts of these branches ("" is none)."""
    settings = load_settings()
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz or settings.kpi.timezone)
    targets = targets or load_targets()
    as_of = dt.datetime.now(dt.UTC).timestamp() if as_of is None else as_of
    member = (select(CampaignAccount.account_id).where(CampaignAccount.campaign_id == campaign)
              if campaign else None)

    def scoped(query: Any, column: Any) -> Any:
        return query.where(column.in_(member)) if member is not None else query

    branch_of = stored_branches(store)
    wanted = None if branches is None else {" ".join(b.split()) for b in branches}
    accounts: dict[str, AccountFacts] = {}
    with store.session() as s:
        for aid, segment, due, balance, status in s.execute(scoped(select(
                Account.id, Account.segment, Account.due_date, Account.amount_due, Account.status), Account.id)):
            branch = branch_of.get(aid, "")
            if wanted is not None and branch not in wanted:
                continue
            accounts[aid] = AccountFacts(aid, branch, segment, day_start(due + dt.timedelta(days=1), zone),
                                         _money(balance), status)
        ids = accounts.keys()
        payments = [(a, _money(m), _epoch(t)) for a, m, t in s.execute(scoped(
            select(Payment.account_id, Payment.amount, Payment.paid_at), Payment.account_id)) if a in ids]
        promises = [(a, _money(m), d, _epoch(t)) for a, m, d, t in s.execute(scoped(
            select(Promise.account_id, Promise.amount, Promise.due_date, Promise.created_at), Promise.account_id))
            if a in ids]
        plans = [(a, _epoch(t)) for a, t in s.execute(scoped(
            select(InstallmentPlan.account_id, InstallmentPlan.created_at), InstallmentPlan.account_id)) if a in ids]
        events = [(a, k, _epoch(t), c) for a, k, t, c in s.execute(
            select(Event.account_id, Event.kind, Event.at, Event.conversation_id).where(Event.kind.in_(EVENT_KINDS)))
            if a in ids or (a is None and wanted is None and campaign is None)]
        attempt_query = select(Attempt.account_id, Attempt.channel, Attempt.state, Attempt.started_at,
                               Attempt.outcome, Attempt.right_party, Attempt.result, Attempt.handled_by,
                               Attempt.reservation_id, Attempt.conversation_id).where(Attempt.state.in_(STARTED))
        if campaign:
            attempt_query = attempt_query.where(Attempt.campaign_id == campaign)
        attempts = [r for r in s.execute(attempt_query) if r[0] in ids]
        opt_rows = opt_out_rows(store, s, ids)

    contacts: dict[str, list[Contact]] = defaultdict(list)
    conversation_account: dict[str, str] = {}
    for aid, channel, state, started, outcome, rpc, result, handled_by, reservation, conv in attempts:
        contacts[aid].append(Contact(aid, channel, state, float(started or 0.0), outcome, bool(rpc), result,
                                     handled_by, reservation is not None))
        if conv:
            conversation_account.setdefault(conv, aid)
    for items in contacts.values():
        items.sort(key=lambda c: c.started_at)

    by_account_pay: dict[str, list[tuple[float, Decimal]]] = defaultdict(list)
    for aid, amount, at in payments:
        by_account_pay[aid].append((at, amount))
    for a in accounts.values():
        pays = sorted(by_account_pay.get(a.id, []))
        a.pay_times = [t for t, _ in pays]
        a.pay_amounts = [m for _, m in pays]
        running, prefix = ZERO, [ZERO]
        for m in a.pay_amounts:
            running += m
            prefix.append(running)
        a.paid_before = prefix
        a.original = a.balance + running  # record_payment lowered amount_due by each payment

    # write-offs, people taking part, conversations, complaints, opt-outs
    human: dict[str, list[float]] = defaultdict(list)
    complaints: list[tuple[str | None, float]] = []
    disclosures: dict[str, tuple[str | None, float]] = {}
    opt_events: list[tuple[str, float]] = []
    conv_events: dict[str, list[float]] = defaultdict(list)
    for aid, kind, at, conv in events:
        if conv and aid:
            conversation_account.setdefault(conv, aid)
            conv_events[aid].append(at)
        if kind in HUMAN_EVENTS and aid:
            human[aid].append(at)
        elif kind == "complaint":
            complaints.append((aid, at))
        elif kind == "write_off" and aid:
            a = accounts[aid]
            a.write_off_at = at if a.write_off_at is None else min(a.write_off_at, at)
        elif kind == "disclosure" and conv:
            if conv not in disclosures or at < disclosures[conv][1]:
                disclosures[conv] = (aid, at)
        elif kind == "opt_out" and aid:
            opt_events.append((aid, at))
    for aid, items in contacts.items():
        for c in items:
            if c.channel == "human" or c.handled_by == "human":
                human[aid].append(c.started_at)

    plan_times: dict[str, list[float]] = defaultdict(list)
    for aid, at in plans:
        plan_times[aid].append(at)
    promise_times: dict[str, list[float]] = defaultdict(list)
    for aid, _, _, at in promises:
        promise_times[aid].append(at)
    bad_after = targets.bad_debt_days * 86400
    for a in accounts.values():
        if a.write_off_at is None and a.status in WRITE_OFF_STATUSES and a.balance > 0:
            a.write_off_at = a.overdue_at  # no event says when: written off as it stands
        candidates = [t for t in (a.write_off_at, a.overdue_at + bad_after) if t is not None]
        bad = min(candidates)
        a.bad_at = bad if a.balance_at(bad) > 0 else None
        a.human_at = min(human[a.id]) if human.get(a.id) else None
        made = [c.started_at for c in contacts.get(a.id, []) if c.channel in ("sms", "voice") and c.state in CONTACTED]
        firsts = [t for t in (min(made) if made else None, min(conv_events[a.id]) if conv_events.get(a.id) else None)
                  if t is not None]
        a.first_contact_at = min(firsts) if firsts else None
        if a.first_contact_at is not None:
            settles = [t for t in (*a.pay_times, *promise_times.get(a.id, []), *plan_times.get(a.id, []))
                       if t >= a.first_contact_at]
            a.settled_at = min(settles) if settles else None
        rpc = next((c for c in contacts.get(a.id, []) if c.right_party and c.state in CONTACTED), None)
        a.first_rpc = (rpc.started_at, rpc.result) if rpc else None

    kept_promises = _kept(accounts, promises, zone, targets.promise_grace_days)
    conversations, read = _conversations(evidence, settings.data_dir / "evidence", disclosures, conversation_account,
                                         accounts, keep_unattributed=wanted is None and campaign is None)
    opt_outs = _opt_outs(accounts, contacts, opt_events, opt_rows)
    return Book(accounts, dict(contacts), kept_promises, complaints, conversations, opt_outs, targets, zone, as_of,
                read)


def _kept(accounts: dict[str, AccountFacts], promises: list[tuple[str, Decimal, dt.date, float]], zone: ZoneInfo,
          grace: int) -> list[tuple[str, Decimal, float, Decimal]]:
    """Each promise with its deadline and the amount paid toward it: payments between the promise and its deadline,
    each used once, the earliest promise first."""
    out = []
    by_account: dict[str, list[tuple[float, Decimal, float]]] = defaultdict(list)
    for aid, amount, due, created in promises:
        by_account[aid].append((created, amount, day_start(due + dt.timedelta(days=1 + grace), zone)))
    for aid, items in by_account.items():
        a = accounts[aid]
        left = list(a.pay_amounts)
        for created, amount, deadline in sorted(items):
            need, got = amount, ZERO
            for i, t in enumerate(a.pay_times):
                if need <= 0:
                    break
                if created - 1 <= t < deadline and left[i] > 0:
                    take = min(left[i], need)
                    left[i] -= take
                    need -= take
                    got += take
            out.append((aid, amount, deadline, got))
    return out


def _conversations(evidence: Any, default_dir: Path, disclosures: dict[str, tuple[str | None, float]],
                   conversation_account: dict[str, str], accounts: dict[str, AccountFacts], *,
                   keep_unattributed: bool = True) -> tuple[list[Conversation], bool]:
    """The conversations that reached disclosure, with their account (None: not known; kept only when the book is
    not filtered) and whether the evidence writer assessed them complete."""
    assessments = None if evidence is False else latest_assessments(evidence if evidence is not None else default_dir)

    def account_of(conv: str, given: str | None) -> str | None:
        if given:
            return given
        if conv in conversation_account:
            return conversation_account[conv]
        candidate = conv.rsplit(":", 1)[-1]  # channel conversation ids are "<channel>:<account id>"
        return candidate if candidate in accounts else None

    out = []
    for conv in set(disclosures) | set(assessments or {}):
        given, at = disclosures.get(conv, (None, None))
        found = (assessments or {}).get(conv)
        reached = conv in disclosures or bool(found and found[1])
        account = account_of(conv, given)
        if not reached or (account is None and not keep_unattributed) or (account and account not in accounts):
            continue
        out.append(Conversation(conv, account, at if at is not None else found[0],
                                reached, found is not None, bool(found and found[2])))
    return out, assessments is not None


def latest_assessments(evidence: Any) -> dict[str, tuple[float, bool, bool]] | None:
    """conversation → (when, amount stated, all three elements) from the latest `three_elements` record of each
    conversation; None when there is no evidence log. `evidence`: an open EvidenceLog or its directory."""
    from duebot.evidence.log import EvidenceLog

    log, opened = evidence, False
    if not hasattr(evidence, "records_for"):
        try:
            log, opened = EvidenceLog.open(Path(evidence), readonly=True), True
        except (FileNotFoundError, OSError, ValueError):
            return None
    try:
        meta = getattr(log, "meta", None)
        if meta is not None:
            records = (log.get(m.index) for m in list(meta) if m.kind == "three_elements")
        else:
            records = (r for c in log.conversations() for r in log.records_for(c) if r.kind == "three_elements")
        out: dict[str, tuple[float, bool, bool]] = {}
        for r in sorted(records, key=lambda r: r.index):
            body = r.body
            missing = body.get("missing")
            # every element the conversation's pack requires (the record's `missing`), else the court's three
            complete = missing == [] if isinstance(missing, list) else bool(
                body.get("identity_confirmed") and body.get("amount_stated") and body.get("deadline_stated"))
            out[r.conversation_id] = (_epoch(r.ts), bool(body.get("amount_stated")), complete)
        return out
    finally:
        if opened:
            log.close()


def opt_out_rows(store: AccountStore, s: Any, ids: Iterable[str]) -> list[tuple[str, bool, float]]:
    """(account, opted out, when) from the opt_outs table: its rows are per number, matched to accounts by the
    number's blind index (or, in a store without one, by the number)."""
    wanted = set(ids)
    if hasattr(OptOut, "phone_index") and hasattr(Account, "phone_index"):
        rows = s.execute(select(Account.id, OptOut.opted_out, OptOut.at)
                         .join(OptOut, OptOut.phone_index == Account.phone_index))
        return [(a, bool(o), _epoch(t)) for a, o, t in rows if a in wanted]
    out = []
    for phone, opted_out, at in s.execute(select(OptOut.phone, OptOut.opted_out, OptOut.at)):
        out += [(a.id, bool(opted_out), _epoch(at)) for a in store.accounts_by_phone(phone) if a.id in wanted]
    return out


def _opt_outs(accounts: dict[str, AccountFacts], contacts: dict[str, list[Contact]],
              events: list[tuple[str, float]], rows: list[tuple[str, bool, float]],
              ) -> list[tuple[str, float, bool]]:
    """(account, when, honoured) per opt-out: from `opt_out` events (the conversation's) and the opt_outs table
    (SMS keywords, carrier opt-outs); one per account and minute."""
    state: dict[str, tuple[bool, float]] = {}  # account → its number's current consent row
    moments: dict[str, list[float]] = defaultdict(list)
    for aid, opted_out, at in rows:
        if aid in accounts:
            state[aid] = (opted_out, at)
            if opted_out:
                moments[aid].append(at)
    for aid, at in events:
        moments[aid].append(at)
    out = []
    for aid, times in moments.items():
        row = state.get(aid)
        last = None
        for at in sorted(times):
            if last is not None and at - last < OPT_OUT_STORED_WITHIN:
                continue
            last = at
            if row is None:
                stored, until = False, float("inf")
            elif row[0]:
                stored, until = row[1] <= at + OPT_OUT_STORED_WITHIN, float("inf")
            else:  # opted back in since: the opt-out held until then
                stored, until = row[1] > at, row[1]
            later = any(at < c.started_at < until for c in contacts.get(aid, []) if c.channel in ("sms", "voice"))
            out.append((aid, at, stored and not later))
    return out


# ------------------------------------------------------------------------------------------------ KPIs

def _rate(num: float | Decimal, den: float | Decimal) -> float | None:
    return round(float(num) / float(den), 4) if den else None


def compute(book: Book, ids: Iterable[str], p: Period, *, include_unattributed: bool = False) -> dict[str, Any]:
    """Every KPI for the accounts `ids` over period `p` (see the module's docstring for the definitions)."""
    ids = set(ids)
    s, e = p.start, p.end
    cut = min(e, book.as_of)
    opening = new = recovered = new_recovered = ZERO
    outstanding = bad = became_bad = bad_paid = ZERO
    owing = cleared = payers = self_service = 0
    hours: list[float] = []
    first_rpc = first_success = 0
    for aid in ids:
        a = book.accounts[aid]
        if a.overdue_at < e:
            start_ref = max(s, a.overdue_at)
            owed = a.balance_at(start_ref)
            if owed > 0 and not (a.write_off_at is not None and a.write_off_at < s):
                owing += 1
                if a.overdue_at < s:
                    opening += owed
                else:
                    new += owed
                got = min(owed, a.paid_between(start_ref, e))
                recovered += got
                if got > 0 and a.balance_at(e) == 0:
                    cleared += 1
            if a.overdue_at >= s:
                new_recovered += min(owed, a.paid_between(a.overdue_at, book.as_of + 1))
            if a.overdue_at < cut:
                left = a.balance_at(cut)
                outstanding += left
                if a.bad_at is not None and a.bad_at < cut:
                    bad += left
            if a.bad_at is not None and s <= a.bad_at < cut:
                became_bad += a.balance_at(a.bad_at)
            if a.bad_at is not None and a.bad_at < e:
                bad_paid += a.paid_between(max(s, a.bad_at), e)
            first_paid = a.first_payment_in(max(s, a.overdue_at), e)
            if first_paid is not None:
                payers += 1
                if a.human_at is None or a.human_at > first_paid:
                    self_service += 1
        if p.contains(a.settled_at) and a.first_contact_at is not None:
            hours.append((a.settled_at - a.first_contact_at) / 3600)
        if a.first_rpc is not None and p.contains(a.first_rpc[0]):
            first_rpc += 1
            first_success += a.first_rpc[1] in SETTLING

    promised = kept = ZERO
    for aid, amount, deadline, got in book.promises:
        if aid in ids and s <= deadline < e and deadline <= book.as_of:
            promised += amount
            kept += got

    contacts = calls = answered = gated = handled = by_bot = 0
    reached: set[str] = set()
    for aid in ids:
        for c in book.contacts.get(aid, ()):
            if not s <= c.started_at < e or c.state not in CONTACTED:
                continue
            if c.channel in ("sms", "voice"):
                contacts += 1
                gated += c.gated
                if c.channel == "voice":
                    calls += 1
                    answered += c.outcome in ("answered", "conversation")
                if c.outcome in ("answered", "conversation") or (c.channel == "sms" and c.outcome == "delivered"):
                    reached.add(aid)
            if c.right_party or c.channel == "human" or c.handled_by == "human":
                handled += 1
                by_bot += c.handled_by == "bot"

    def complaints_in(period: Period) -> int:
        return sum(1 for aid, at in book.complaints
                   if period.contains(at) and (aid in ids if aid is not None else include_unattributed))

    complaints = complaints_in(p)
    before = complaints_in(year_before(p, book.tz))
    assessed = compliant = pending = 0
    for conv in book.conversations:
        if not p.contains(conv.at) or not (conv.account in ids if conv.account else include_unattributed):
            continue
        if conv.assessed:
            assessed += 1
            compliant += conv.complete
        else:
            pending += 1
    opt_outs = honoured = 0
    for aid, at, ok in book.opt_outs:
        if aid in ids and p.contains(at):
            opt_outs += 1
            honoured += ok
    amount_due = opening + new
    # a period under way counts the days it has run (at least one) for its monthly complaint rate
    days = max(1.0, (min(e, book.as_of) - s) / 86400) if s < book.as_of < e else p.days
    return {
        "amount_due": amount_due,
        "opening_arrears": opening,
        "new_arrears": new,
        "amount_recovered": recovered,
        "recovery_rate_amount": _rate(recovered, amount_due),
        "accounts_owing": owing,
        "accounts_cleared": cleared,
        "recovery_rate_accounts": _rate(cleared, owing),
        "new_arrears_recovered": new_recovered,
        "new_arrears_recovery_rate": _rate(new_recovered, new),
        "outstanding_at_end": outstanding,
        "bad_debt_at_end": bad,
        "bad_debt_rate": _rate(bad, outstanding),
        "new_bad_debt": became_bad - bad_paid,
        "new_bad_debt_rate": _rate(became_bad - bad_paid, amount_due),
        "promised_amount": promised,
        "kept_amount": kept,
        "promise_kept_rate_amount": _rate(kept, promised),
        "settled_accounts": len(hours),
        "handling_hours_mean": round(statistics.fmean(hours), 2) if hours else None,
        "handling_hours_median": round(statistics.median(hours), 2) if hours else None,
        "contacts": contacts,
        "calls": calls,
        "complaints": complaints,
        "complaints_per_1000_contacts": round(1000 * complaints / contacts, 2) if contacts else None,
        "complaints_per_month": round(complaints * MONTH_DAYS / days, 1),
        "complaints_year_before": before,
        "complaints_change_yoy": round((complaints - before) / before, 4) if before else None,
        "conversations_disclosed": assessed + pending,
        "conversations_assessed": assessed,
        "compliance_pending": pending,
        "compliance_rate": _rate(compliant, assessed) if book.evidence_read else None,
        "gate_pass_rate": _rate(gated, contacts),
        "opt_outs": opt_outs,
        "opt_out_honoured_rate": _rate(honoured, opt_outs),
        "handled_contacts": handled,
        "automated_share": _rate(by_bot, handled),
        "paying_accounts": payers,
        "self_service_payers": self_service,
        "self_service_repayment_rate": _rate(self_service, payers),
        "accounts_reached": len(reached),
        "self_service_share_of_reached": _rate(self_service, len(reached)),
        "answer_rate": _rate(answered, calls),
        "first_contact_success": _rate(first_success, first_rpc),
    }


def process_checks(book: Book, ids: Iterable[str], p: Period) -> dict[str, Any]:
    """Seed 003's monthly process check (欠费流程执行考核表) in duebot's terms: were the reminders sent and the calls
    made, who is still unpaid after 3 calls (the list the branch sends monthly), what went to people, and did the
    compliance checks pass."""
    ids = set(ids)
    cut = min(p.end, book.as_of)
    reminded = called = three_calls = unpaid_three = dispatched = unpaid_dispatched = 0
    for aid in ids:
        a = book.accounts[aid]
        items = [c for c in book.contacts.get(aid, ()) if c.started_at < p.end]
        in_p = [c for c in items if c.started_at >= p.start]
        reminded += any(c.channel == "sms" and c.state in CONTACTED for c in in_p)
        called += any(c.channel == "voice" and c.state in CONTACTED for c in in_p)
        calls = sum(1 for c in items if c.channel == "voice" and c.state in CONTACTED)
        owes = a.overdue_at < cut and a.balance_at(cut) > 0
        if calls >= 3:
            three_calls += 1
            unpaid_three += owes
        if any(c.channel == "human" or c.handled_by == "human" for c in in_p):
            dispatched += 1
            unpaid_dispatched += owes
    k = compute(book, ids, p)
    passed = all(k[name] in (None, 1.0) for name in ("compliance_rate", "gate_pass_rate", "opt_out_honoured_rate"))
    return {"accounts_owing": k["accounts_owing"], "accounts_reminded_sms": reminded, "accounts_called": called,
            "accounts_called_3_times": three_calls, "unpaid_after_3_calls": unpaid_three,
            "accounts_to_people": dispatched, "unpaid_after_people": unpaid_dispatched,
            "conversations_assessed": k["conversations_assessed"], "compliance_rate": k["compliance_rate"],
            "compliance_pending": k["compliance_pending"], "gate_pass_rate": k["gate_pass_rate"],
            "opt_outs": k["opt_outs"], "opt_out_honoured_rate": k["opt_out_honoured_rate"],
            "checks_passed": passed}


# ------------------------------------------------------------------------------------------------ the report

@dataclass
class MoneyReport:
    by: str
    period: str
    timezone: str
    as_of: float
    since: dt.date
    until: dt.date
    groups: list[str]
    targets: Targets
    rows: list[dict[str, Any]]  # group × period, the requested period kind
    weekly_progress: list[dict[str, Any]]
    monthly_summary: list[dict[str, Any]]
    process_checks: list[dict[str, Any]]
    quarterly_targets: list[dict[str, Any]]
    evidence_read: bool

    def latest(self, group: str = ALL) -> dict[str, Any] | None:
        rows = [r for r in self.rows if r["group"] == group]
        return rows[-1] if rows else None

    def headline(self, group: str = ALL) -> list[dict[str, Any]]:
        """The headline KPIs of the latest period for `group`: value, target and whether it is met."""
        row = self.latest(group)
        out = []
        for key in HEADLINE:
            t = self.targets.kpis.get(key)
            value = row[key] if row else None
            out.append({"kpi": key, "label": t.label if t else key.replace("_", " "), "value": value,
                        "shown": format_value(key, value, t.unit if t else None),
                        "target": t.for_period(self.period) if t else None,
                        "target_shown": t.shown(self.period) if t else "no seed target",
                        "met": t.met(value, self.period) if t else None, "source": t.source if t else ""})
        return out

    def targets_json(self) -> dict[str, Any]:
        return {k: {"label": t.label, "unit": t.unit, "target": t.for_period(self.period), "direction": t.direction,
                    "by_period": t.by_period, "source": t.source} for k, t in self.targets.kpis.items()}

    def to_json(self) -> dict[str, Any]:
        return {"by": self.by, "period": self.period, "timezone": self.timezone,
                "as_of": dt.datetime.fromtimestamp(self.as_of, dt.UTC).isoformat(),
                "since": self.since.isoformat(), "until": self.until.isoformat(), "groups": self.groups,
                "evidence_read": self.evidence_read, "targets_file": self.targets.path,
                "parameters": {"bad_debt_days": self.targets.bad_debt_days,
                               "promise_grace_days": self.targets.promise_grace_days},
                "targets": self.targets_json(), "headline": self.headline(),
                "rows": [_jsonable(r) for r in self.rows],
                "weekly_progress": [_jsonable(r) for r in self.weekly_progress],
                "monthly_summary": [_jsonable(r) for r in self.monthly_summary],
                "process_checks": [_jsonable(r) for r in self.process_checks],
                "quarterly_targets": [_jsonable(r) for r in self.quarterly_targets]}


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()}


MONTHLY_COLUMNS = ("amount_due", "new_arrears", "amount_recovered", "recovery_rate_amount", "recovery_rate_accounts",
                   "new_arrears_recovery_rate", "bad_debt_rate", "new_bad_debt_rate", "promise_kept_rate_amount",
                   "handling_hours_mean", "complaints", "complaints_per_1000_contacts", "compliance_rate",
                   "automated_share", "self_service_repayment_rate")


def build(book: Book, *, by: str = "branch", period: str = "month", since: dt.date | None = None,
          until: dt.date | None = None) -> MoneyReport:
    """The KPI table (groups × periods of `period`), seed 003's weekly progress table and monthly summary, the
    monthly process checks and the quarterly targets, all for the days since..until (default: the last periods up
    to the as-of day)."""
    if by not in GROUPINGS:
        raise ValueError(f"--by is one of {', '.join(GROUPINGS)}, not {by!r}")
    if period not in PERIODS:
        raise ValueError(f"--period is one of {', '.join(PERIODS)}, not {period!r}")
    zone = book.tz
    until = until or dt.datetime.fromtimestamp(book.as_of, zone).date()
    since = since or default_since(until, period)
    if since > until:
        raise ValueError(f"the start ({since}) is after the end ({until})")
    groups_of = book.group_of(by)
    members: dict[str, list[str]] = defaultdict(list)
    for aid, group in groups_of.items():
        members[group].append(aid)
    groups = [] if by == "none" else sorted(members)
    members[ALL] = list(book.accounts)  # the total of every group (of the accounts the filters kept)
    groups.append(ALL)

    def cells(kind: str) -> list[tuple[str, Period, dict[str, Any]]]:
        out = []
        for group in groups:
            for p in periods_between(since, until, kind, zone):
                out.append((group, p, compute(book, members[group], p, include_unattributed=group == ALL)))
        return out

    def base(group: str, p: Period) -> dict[str, Any]:
        return {"group": group, "period": p.label,
                "period_start": dt.datetime.fromtimestamp(p.start, zone).date().isoformat(),
                "period_end": (dt.datetime.fromtimestamp(p.end, zone).date() - dt.timedelta(days=1)).isoformat()}

    targets = book.targets
    main = cells(period)
    rows = [base(g, p) | k for g, p, k in main]
    week_cells = main if period == "week" else cells("week")
    month_cells = main if period == "month" else cells("month")
    weekly, cumulative = [], {}
    for g, p, k in week_cells:
        got, owed = cumulative.get(g, (ZERO, None))
        got += k["amount_recovered"]
        owed = (k["amount_due"] if owed is None else owed + k["new_arrears"])
        cumulative[g] = (got, owed)
        target = targets.kpis.get("recovery_rate_amount")
        goal = target.for_period("week") if target else None
        rate = k["recovery_rate_amount"]
        weekly.append(base(g, p) | {
            "opening_arrears": k["opening_arrears"], "new_arrears": k["new_arrears"], "amount_due": k["amount_due"],
            "amount_recovered": k["amount_recovered"], "recovery_rate_amount": rate,
            "recovered_to_date": got, "recovery_rate_to_date": _rate(got, owed), "target": goal,
            "gap_to_target": None if rate is None or goal is None else round(rate - goal, 4),
            "accounts_owing": k["accounts_owing"], "accounts_cleared": k["accounts_cleared"]})
    monthly = [base(g, p) | {c: k[c] for c in MONTHLY_COLUMNS} for g, p, k in month_cells]
    checks = [base(g, p) | process_checks(book, members[g], p)
              for g in groups for p in periods_between(since, until, "month", zone)]
    quarterly = []
    for g in groups:
        for p in periods_between(since, until, "quarter", zone):
            k = compute(book, members[g], p, include_unattributed=g == ALL)
            for key, t in targets.kpis.items():
                if key in k:
                    quarterly.append(base(g, p) | {"kpi": key, "label": t.label, "value": k[key],
                                                   "target": t.for_period("quarter"), "direction": t.direction,
                                                   "met": t.met(k[key], "quarter"), "source": t.source})
    return MoneyReport(by, period, str(zone), book.as_of, since, until, groups, targets, rows, weekly, monthly,
                       checks, quarterly, book.evidence_read)


def report(store: AccountStore, *, by: str = "branch", period: str = "month", since: dt.date | None = None,
           until: dt.date | None = None, branches: Sequence[str] | None = None, campaign: str | None = None,
           evidence: Any = None, as_of: float | None = None, tz: str | None = None,
           targets: Targets | None = None) -> MoneyReport:
    book = load_book(store, as_of=as_of, campaign=campaign, branches=branches, evidence=evidence, tz=tz,
                     targets=targets)
    return build(book, by=by, period=period, since=since, until=until)
