"""Money KPIs by branch and period against values computed by hand on a small fixed book: partial payments, a broken
promise, a dispute, a write-off, a handoff before a payment, an opt-out not honoured, a contact without the gate's
pass, an unassessed disclosure. Every expected figure below is worked out in the comment beside it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update

from duebot.accounts.models import Account, Attempt, Campaign, CampaignAccount, Dispute, Event, OptOut, Payment, Promise
from duebot.accounts.store import AccountStore
from duebot.campaigns import kpis, money
from duebot.campaigns.branches import set_branches
from duebot.evidence.log import EvidenceLog

UTC = dt.UTC
AS_OF = dt.datetime(2026, 12, 1, tzinfo=UTC).timestamp()
NOVEMBER = money.period_of_day(dt.date(2026, 11, 15), "month", dt.UTC)  # type: ignore[arg-type]


def at(month: int, day: int, hour: int = 10, minute: int = 0, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


# account: (branch, due date, original amount, payments [(when, amount)], phone)
BOOK = {
    "N1": ("North", dt.date(2026, 10, 15), "300.00", [(at(11, 5), "100.00"), (at(11, 20), "200.00")], "+14155550001"),
    "N2": ("North", dt.date(2026, 10, 20), "200.00", [(at(11, 9), "50.00")], "+14155550002"),
    "N3": ("North", dt.date(2026, 11, 10), "500.00", [(at(11, 15), "500.00")], "+14155550003"),
    "S1": ("South", dt.date(2026, 6, 1), "400.00", [], "+14155550004"),
    "S2": ("South", dt.date(2026, 9, 1), "1000.00", [(at(11, 10), "250.00")], "+14155550005"),
    "S3": ("South", dt.date(2026, 11, 20), "150.00", [(at(11, 22), "150.00")], "+14155550006"),
    "S4": ("South", dt.date(2026, 11, 1), "80.00", [], "+14155550007"),
}
# attempt: (account, channel, started, outcome, right party, result, handled by, gated)
ATTEMPTS = [
    ("N1", "sms", at(11, 1), "delivered", False, None, None, True),
    ("N1", "voice", at(11, 3), "conversation", True, "promise", "bot", True),
    ("N2", "voice", at(11, 2, 12), "conversation", True, "promise", "bot", True),
    ("N2", "sms", at(11, 16), "delivered", False, None, None, True),  # after N2's opt-out: not honoured
    ("N3", "sms", at(11, 11), "delivered", False, None, None, True),
    ("N3", "voice", at(11, 12, 8), "answered", True, None, "bot", True),
    ("S1", "voice", at(11, 4), "no_answer", False, None, None, True),
    ("S1", "voice", at(11, 5), "no_answer", False, None, None, True),
    ("S1", "voice", at(11, 6), "voicemail", False, None, None, True),
    ("S1", "human", at(11, 7), "queued", False, None, "human", False),
    ("S2", "sms", at(11, 8), "delivered", False, None, None, True),
    ("S3", "sms", at(11, 21), "delivered", False, None, None, False),  # made without the gate's reservation
    ("S4", "sms", at(11, 3), "delivered", False, None, None, True),
]


def fill(store: AccountStore, evidence_dir: Path) -> None:
    with store.session() as s:
        for aid, (_, due, original, pays, phone) in BOOK.items():
            left = Decimal(original) - sum((Decimal(m) for _, m in pays), Decimal("0"))
            s.add(Account(id=aid, name=f"Sub {aid}", phone=phone, amount_due=left, due_date=due, segment="forgot",
                          status="paid" if left == 0 else "open"))
        s.flush()
        for aid, (_, _, _, pays, _) in BOOK.items():
            for n, (when, amount) in enumerate(pays):
                s.add(Payment(reference=f"{aid}-{n}", account_id=aid, amount=Decimal(amount), paid_at=when))
        s.add(Campaign(id="C-T", name="t", strategy="demo", status="completed",
                       created_at=at(10, 1).timestamp(), launched_at=at(10, 1).timestamp()))
        s.flush()
        for aid in BOOK:
            s.add(CampaignAccount(campaign_id="C-T", account_id=aid, state="finished"))
        for n, (aid, channel, when, outcome, rpc, result, by, gated) in enumerate(ATTEMPTS):
            s.add(Attempt(key=f"C-T:{aid}:{n}", campaign_id="C-T", account_id=aid, step=n, step_name=channel,
                          channel=channel, purpose="collection", state="done", tries=1, reasons=[],
                          started_at=when.timestamp(), finished_at=when.timestamp() + 60, outcome=outcome,
                          right_party=rpc, result=result, handled_by=by, reservation_id=f"r{n}" if gated else None,
                          conversation_id=f"voice:{aid}" if channel == "voice" and rpc else None))
        # N1 promises 300 by Nov 20 and pays 100 + 200 by then: kept in full
        s.add(Promise(account_id="N1", amount=Decimal("300.00"), due_date=dt.date(2026, 11, 20),
                      conversation_id="voice:N1", created_at=at(11, 3, 10, 5)))
        # N2 promises 200 by Nov 10 and pays 50 on Nov 9: broken, 50 kept
        s.add(Promise(account_id="N2", amount=Decimal("200.00"), due_date=dt.date(2026, 11, 10),
                      conversation_id="voice:N2", created_at=at(11, 2, 12, 6), status="broken"))
        s.add(Dispute(case_number="D-S1", account_id="S1", reason="unrecognised_charges", opened_at=at(10, 1)))
        events = [
            ("disclosure", "N1", "voice:N1", at(11, 3, 10, 2)),
            ("disclosure", "N2", "voice:N2", at(11, 2, 12, 2)),
            ("disclosure", "N3", "voice:N3", at(11, 12, 8, 2)),  # never assessed: pending
            ("handoff", "N3", "voice:N3", at(11, 12, 9)),  # a person takes N3 over before it pays on Nov 15
            ("complaint", "N2", "voice:N2", at(11, 12)),
            ("complaint", "N1", None, at(11, 10, year=2025)),  # a year earlier: 2 complaints (1 North, 1 South)
            ("complaint", "S1", None, at(11, 20, year=2025)),
            ("opt_out", "N2", "voice:N2", at(11, 14)),
            ("write_off", "S2", None, at(11, 25)),  # 750 left after S2's partial payment
        ]
        for kind, aid, conv, when in events:
            s.add(Event(kind=kind, account_id=aid, conversation_id=conv, detail={}, at=when))
    store.set_opt_out(BOOK["N2"][4], True, "voice", "conversation voice:N2")
    store.set_opt_out(BOOK["S3"][4], True, "sms", "keyword:STOP")
    with store.session() as s:  # when they happened
        s.execute(update(OptOut).where(OptOut.source == "conversation voice:N2").values(at=at(11, 14)))
        s.execute(update(OptOut).where(OptOut.source == "keyword:STOP").values(at=at(11, 23)))
    set_branches(store, {aid: spec[0] for aid, spec in BOOK.items()})
    with EvidenceLog.open(evidence_dir) as log:
        for conv, deadline in (("voice:N1", True), ("voice:N2", False)):
            log.append("three_elements", {"identity_confirmed": True, "amount_stated": True,
                                          "deadline_stated": deadline, "flagged_for_qa": not deadline},
                       conversation_id=conv)


@pytest.fixture
def book_store(tmp_path: Path) -> AccountStore:
    store = AccountStore(f"sqlite:///{tmp_path / 'book.sqlite3'}")
    fill(store, tmp_path / "evidence")
    return store


@pytest.fixture
def book(book_store: AccountStore, tmp_path: Path) -> money.Book:
    return money.load_book(book_store, as_of=AS_OF, evidence=tmp_path / "evidence", tz="UTC")


def cell(book: money.Book, *ids: str) -> dict:
    return money.compute(book, ids or list(book.accounts), NOVEMBER, include_unattributed=not ids)


def test_november_all_branches_by_hand(book: money.Book) -> None:
    k = cell(book)
    # owed during November: N1 300 + N2 200 + S1 400 + S2 1000 (opening) + N3 500 + S3 150 + S4 80 (fell due in Nov)
    assert k["opening_arrears"] == Decimal("1900.00") and k["new_arrears"] == Decimal("730.00")
    assert k["amount_due"] == Decimal("2630.00")
    # paid in November: N1 100 + 200, N2 50 (partial), N3 500, S2 250 (partial, then written off), S3 150
    assert k["amount_recovered"] == Decimal("1250.00")
    assert k["recovery_rate_amount"] == round(1250 / 2630, 4) == 0.4753
    assert (k["accounts_owing"], k["accounts_cleared"], k["recovery_rate_accounts"]) == (7, 3, 0.4286)
    # new arrears N3 500 + S3 150 + S4 80, of which N3 and S3 paid
    assert k["new_arrears_recovery_rate"] == round(650 / 730, 4) == 0.8904
    # left on Dec 1: N2 150 + S1 400 + S2 750 + S4 80 = 1380; bad: S1 (> 90 days since June) + S2 (written off)
    assert k["outstanding_at_end"] == Decimal("1380.00") and k["bad_debt_at_end"] == Decimal("1150.00")
    assert k["bad_debt_rate"] == round(1150 / 1380, 4) == 0.8333
    # S2's 750 went bad on Nov 25 (S1 went bad in August); nothing paid on bad debt in November
    assert k["new_bad_debt"] == Decimal("750.00") and k["new_bad_debt_rate"] == round(750 / 2630, 4)
    # promises due in November: N1 300 (kept 300), N2 200 (broken, 50 paid in time)
    assert (k["promised_amount"], k["kept_amount"]) == (Decimal("500.00"), Decimal("350.00"))
    assert k["promise_kept_rate_amount"] == 0.7
    # first contact → settlement: N1 48 h 5 min (promise), N2 6 min (promise), N3 96 h (payment), S2 48 h, S3 24 h
    hours = [48 + 5 / 60, 0.1, 96, 48, 24]
    assert k["settled_accounts"] == 5
    assert k["handling_hours_mean"] == round(sum(hours) / 5, 2) == 43.24 and k["handling_hours_median"] == 48.0
    # 12 SMS and calls made in November, 1 complaint; 2 complaints in November 2025
    assert (k["contacts"], k["complaints"], k["complaints_per_1000_contacts"]) == (12, 1, 83.33)
    assert k["complaints_per_month"] == round(30.4375 / 30, 1) and k["complaints_change_yoy"] == -0.5
    # disclosed: N1 (all three elements), N2 (no deadline), N3 (not yet assessed)
    assert (k["conversations_assessed"], k["compliance_pending"], k["compliance_rate"]) == (2, 1, 0.5)
    assert k["gate_pass_rate"] == round(11 / 12, 4)  # S3's SMS went out without the gate's pass
    assert (k["opt_outs"], k["opt_out_honoured_rate"]) == (2, 0.5)  # N2 was texted after opting out; S3 was not
    # handled: N1, N2, N3 by the bot, S1's human-queue step by a person
    assert k["automated_share"] == 0.75
    # payers N1, N2, N3, S2, S3; N3 was handed to a person before it paid
    assert (k["paying_accounts"], k["self_service_payers"], k["self_service_repayment_rate"]) == (5, 4, 0.8)
    assert k["accounts_reached"] == 6 and k["self_service_share_of_reached"] == 0.6667
    assert k["answer_rate"] == 0.5  # 6 calls: 3 answered
    assert k["first_contact_success"] == 0.6667  # first right-party contacts: N1 promise, N2 promise, N3 nothing


def test_november_per_branch_by_hand(book: money.Book) -> None:
    north = cell(book, "N1", "N2", "N3")
    assert north["amount_due"] == Decimal("1000.00") and north["amount_recovered"] == Decimal("850.00")
    assert north["recovery_rate_amount"] == 0.85 and north["recovery_rate_accounts"] == 0.6667
    assert north["bad_debt_rate"] == 0.0 and north["promise_kept_rate_amount"] == 0.7
    assert north["handling_hours_mean"] == round((48 + 5 / 60 + 0.1 + 96) / 3, 2)
    assert north["complaints_change_yoy"] == 0.0 and north["complaints_per_1000_contacts"] == 166.67
    assert north["self_service_repayment_rate"] == 0.6667 and north["opt_out_honoured_rate"] == 0.0
    assert north["gate_pass_rate"] == 1.0 and north["automated_share"] == 1.0 and north["answer_rate"] == 1.0
    south = cell(book, "S1", "S2", "S3", "S4")
    assert south["amount_due"] == Decimal("1630.00") and south["amount_recovered"] == Decimal("400.00")
    assert south["recovery_rate_amount"] == round(400 / 1630, 4) and south["recovery_rate_accounts"] == 0.25
    assert south["new_arrears_recovery_rate"] == round(150 / 230, 4)
    assert south["bad_debt_rate"] == round(1150 / 1230, 4) and south["new_bad_debt_rate"] == round(750 / 1630, 4)
    assert south["promise_kept_rate_amount"] is None and south["handling_hours_mean"] == 36.0
    assert south["complaints"] == 0 and south["complaints_change_yoy"] == -1.0
    assert south["compliance_rate"] is None and south["gate_pass_rate"] == round(5 / 6, 4)
    assert south["automated_share"] == 0.0 and south["self_service_repayment_rate"] == 1.0
    assert south["answer_rate"] == 0.0


def test_report_tables_weekly_progress_process_checks_and_targets(book: money.Book) -> None:
    r = money.build(book, by="branch", period="week", since=dt.date(2026, 11, 1), until=dt.date(2026, 11, 30))
    assert r.groups == ["North", "South", "all"]
    week = next(w for w in r.weekly_progress if w["group"] == "all" and w["period"] == "2026-W46")  # Nov 9-15
    # owed on Monday Nov 9: N1 200 (after 100 on Nov 5) + N2 200 + S1 400 + S2 1000 + S4 80; N3's 500 falls due
    assert (week["opening_arrears"], week["new_arrears"]) == (Decimal("1880.00"), Decimal("500.00"))
    assert week["amount_recovered"] == Decimal("800.00")  # N2 50, S2 250, N3 500
    assert week["recovery_rate_amount"] == round(800 / 2380, 4) and week["target"] == 0.96
    assert week["gap_to_target"] == round(round(800 / 2380, 4) - 0.96, 4)
    last = [w for w in r.weekly_progress if w["group"] == "all"][-1]
    assert last["recovered_to_date"] == Decimal("1250.00")  # everything paid in November
    month = next(m for m in r.monthly_summary if m["group"] == "all" and m["period"] == "2026-11")
    assert month["recovery_rate_amount"] == 0.4753 and month["self_service_repayment_rate"] == 0.8
    checks = {c["group"]: c for c in r.process_checks if c["period"] == "2026-11"}
    assert checks["South"]["accounts_called_3_times"] == 1 and checks["South"]["unpaid_after_3_calls"] == 1
    assert checks["South"]["accounts_to_people"] == 1 and checks["South"]["unpaid_after_people"] == 1
    assert checks["North"]["checks_passed"] is False  # a conversation without its deadline, an opt-out ignored
    quarter = {(q["group"], q["kpi"]): q for q in r.quarterly_targets if q["period"] == "2026-Q4"}
    assert quarter[("all", "self_service_repayment_rate")]["target"] == 0.65
    assert quarter[("all", "self_service_repayment_rate")]["met"] is True
    assert quarter[("all", "compliance_rate")]["met"] is False
    headline = {h["kpi"]: h for h in r.headline()}
    assert headline["recovery_rate_amount"]["target_shown"] == "≥ 96%"


def test_targets_and_parameters_are_data(book_store: AccountStore, tmp_path: Path) -> None:
    packaged = money.load_targets(money.TARGETS_FILE)
    assert packaged.kpis["self_service_repayment_rate"].target == 0.65
    assert packaged.kpis["handling_hours_mean"].met(36.0) is True and packaged.kpis["bad_debt_rate"].met(0.06) is False
    assert packaged.kpis["recovery_rate_amount"].for_period("year") == 0.9927
    own = tmp_path / "targets.yml"
    own.write_text("version: 1\nparameters: {bad_debt_days: 400}\n"
                   "kpis:\n  bad_debt_rate: {target: 0.10, direction: max, source: operator}\n")
    targets = money.load_targets(own)
    book = money.load_book(book_store, as_of=AS_OF, evidence=False, tz="UTC", targets=targets)
    k = cell(book)
    assert k["bad_debt_at_end"] == Decimal("750.00")  # S1 is no longer bad after 183 days; S2 is written off
    assert k["compliance_rate"] is None  # the evidence log was not read: unknown, not 0
    with pytest.raises(money.TargetsError):
        bad = tmp_path / "bad.yml"
        bad.write_text("kpis:\n  x: {direction: sideways}\n")
        money.load_targets(bad)


def test_campaign_report_self_service_is_no_longer_trivially_one(book_store: AccountStore) -> None:
    data = kpis.load(book_store, "C-T")
    figures = kpis.compute(data)
    # paid since launch: N1, N2, N3, S2, S3; N3's handoff (an account event, not an attempt) came before its payment
    assert figures["paid_accounts"] == 5 and figures["self_service_repayment_rate"] == 0.8
    assert figures["targets"]["self_service_repayment_rate"] == {"target": 0.65, "met": True}


def test_branch_and_campaign_filters(book_store: AccountStore, tmp_path: Path) -> None:
    north = money.load_book(book_store, as_of=AS_OF, evidence=tmp_path / "evidence", tz="UTC", branches=["North"])
    assert set(north.accounts) == {"N1", "N2", "N3"}
    assert money.compute(north, north.accounts, NOVEMBER)["amount_recovered"] == Decimal("850.00")
    south = money.load_book(book_store, as_of=AS_OF, evidence=tmp_path / "evidence", tz="UTC", branches=["South"])
    k = money.compute(south, south.accounts, NOVEMBER, include_unattributed=True)
    assert k["conversations_disclosed"] == 0 and k["compliance_rate"] is None  # North's conversations stay out
    assert k["complaints_year_before"] == 1  # S1's, not N1's
    by_campaign = money.load_book(book_store, as_of=AS_OF, evidence=False, tz="UTC", campaign="C-T")
    assert len(by_campaign.accounts) == 7
    assert money.load_book(book_store, as_of=AS_OF, evidence=False, campaign="C-none").accounts == {}


def test_periods_are_cut_in_the_kpi_time_zone() -> None:
    shanghai = money.ZoneInfo("Asia/Shanghai")
    # 2026-11-30 20:00 UTC is already December 1 in Shanghai
    t = dt.datetime(2026, 11, 30, 20, tzinfo=UTC).timestamp()
    assert money.period_at(t, "month", shanghai).label == "2026-12"
    assert money.period_at(t, "month", money.ZoneInfo("UTC")).label == "2026-11"
    weeks = money.periods_between(dt.date(2026, 12, 28), dt.date(2027, 1, 5), "week", shanghai)
    assert [w.label for w in weeks] == ["2026-W53", "2027-W01"]
    assert [q.label for q in money.periods_between(dt.date(2026, 2, 1), dt.date(2026, 7, 1), "quarter",
                                                   shanghai)] == ["2026-Q1", "2026-Q2", "2026-Q3"]
    week46 = money.period_of_day(dt.date(2026, 11, 11), "week", shanghai)
    assert week46.label == "2026-W46" and money.year_before(week46, shanghai).label == "2025-W46"
    assert money.year_before(money.period_of_day(dt.date(2026, 11, 11), "quarter", shanghai), shanghai).label == \
        "2025-Q4"
