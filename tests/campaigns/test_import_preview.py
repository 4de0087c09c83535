"""Import (CSV, JSON Lines, bad rows, idempotence), strategy data, and preview == the gate."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from decimal import Decimal
from pathlib import Path

import pytest

from duebot.accounts.importer import SegmentHistory, derive_segment
from duebot.campaigns.preview import preview
from duebot.campaigns.strategy import StrategyError, load_strategy, parse_strategy
from duebot.policies.gate import decide
from duebot.policies.timeutil import format_instant
from tests.campaigns.conftest import midday_zone, write_accounts

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "accounts.csv"


def test_csv_import_creates_a_campaign_and_reimport_is_idempotent(campaigns):
    first = campaigns.import_file(FIXTURE, today=dt.date(2026, 11, 24))
    assert first.created and first.added == 5
    assert [line for line, _ in first.report.errors] == [7, 8, 9, 10, 11]
    again = campaigns.import_file(FIXTURE, today=dt.date(2026, 11, 24))
    assert again.campaign_id == first.campaign_id and not again.created and again.added == 0
    assert again.report.created == 0 and again.report.updated == 5


def test_jsonl_import_keeps_good_rows_and_reports_bad_ones(campaigns, tmp_path):
    rows = [
        {"account_id": "J-1", "name": "Li Lei", "phone": "138 0013 8000", "region": "CN", "amount": 210.10,
         "due_date": "2026-10-20T23:30:00-07:00", "timezone": "Asia/Shanghai", "consent_sms": True},
        {"account_id": "J-2", "name": "Han Mei", "phone": "+8613800138001", "amount": "99.99",
         "due_date": "2026-10-20T10:00:00", "timezone": "Asia/Shanghai"},          # no offset
        "not an object",
        {"account_id": "J-3", "name": "Wang", "phone": "+1 212 555 0199", "amount": 12.5, "due_date": "2026-09-01",
         "broken_promises": 2},
        {"account_id": "J-4", "name": "Zhao", "phone": "12345", "amount": 1, "due_date": "2026-09-01"},
    ]
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken json\n")
    imported = campaigns.import_file(path, today=dt.date(2026, 11, 24))
    errors = dict(imported.report.errors)
    assert sorted(errors) == [2, 3, 5, 6]
    assert "UTC offset" in errors[2] and "not a JSON object" in errors[3]
    assert "phone" in errors[5] and "JSON" in errors[6]
    j1 = campaigns.store.get_account("J-1")
    assert j1.phone == "+8613800138000" and j1.amount_due == Decimal("210.10")
    assert j1.due_date == dt.date(2026, 10, 21)  # 23:30 at -07:00 is the 21st in Shanghai
    assert j1.phone_zones == "Asia/Shanghai"
    assert campaigns.store.get_account("J-3").segment == "malicious"  # plan abuse from history


def test_segment_rules_use_history():
    today = dt.date(2026, 11, 24)
    due = dt.date(2026, 10, 1)
    assert derive_segment(Decimal("90"), due, today, SegmentHistory(broken_promises=1)) == "cash_flow"
    assert derive_segment(Decimal("90"), due, today, SegmentHistory(disputes=1)) == "dispute"
    assert derive_segment(Decimal("90"), due, today, SegmentHistory(broken_promises=3)) == "malicious"
    assert derive_segment(Decimal("4000"), due, today, SegmentHistory(broken_promises=3)) == "new_business"


def test_default_strategy_follows_the_seed_rhythm():
    s = load_strategy("default")
    for (segment, band), steps in s.schedules.items():
        assert steps[0].channel == "sms", (segment, band)  # written first contact
        assert sum(step.channel == "voice" for step in steps) <= 3
        assert steps[-1].channel == "human"
    assert s.steps["sms_reminder"].day_of_month_from == 15 and s.steps["ai_call"].day_of_month_from == 25
    young = s.schedule("forgot", s.band("2001-01-01", dt.date(2026, 11, 24)))
    old = s.schedule("forgot", s.band("1950-01-01", dt.date(2026, 11, 24)))
    assert [x.channel for x in young].count("sms") > [x.channel for x in old].count("sms")
    # 10 November → the reminder waits for the 15th (local date)
    zone = dt.timezone(dt.timedelta(hours=8))
    nov10 = dt.datetime(2026, 11, 10, 12, tzinfo=zone).timestamp()
    assert s.due_at(s.steps["sms_reminder"], None, nov10, zone) == dt.datetime(2026, 11, 15, tzinfo=zone).timestamp()
    doc = {"version": 1, "steps": {"c": {"channel": "voice"}},
           "segments": {seg: {"default": ["c", "c", "c", "c"]} for seg in
                        ("malicious", "cash_flow", "dispute", "forgot", "legacy", "new_business")}}
    with pytest.raises(StrategyError, match="call attempts"):
        parse_strategy(doc)


def test_preview_matches_the_gate_account_by_account(campaigns, tmp_path, fast_strategy):
    """Fast preview (one gate evaluation per decision class) == exact preview == gate.decide on the full request
    the worker would send, for accounts with opt-outs, disputes, history, night-time zones, us and cn packs."""
    rng = random.Random(7)
    zones = [midday_zone(), "Asia/Shanghai", "America/New_York", "Pacific/Auckland", ""]
    lines = ["account_id,name,phone,amount,due_date,segment,timezone,pack,line_type,consent_ai_voice,consent_sms"]
    for i in range(240):
        us = i % 3 == 0
        phone = f"+1{rng.choice(['212', '415', '907', '808'])}555{i:04d}" if us else f"+86138{i:08d}"
        lines.append(f"P-{i},N,{phone},50.00,2026-10-01,forgot,{rng.choice(zones)},{'us' if us else 'cn'},"
                     f"{rng.choice(['mobile', 'landline', 'unknown'])},{rng.choice(['true', 'false'])},"
                     f"{rng.choice(['true', 'false'])}")
    path = tmp_path / "p.csv"
    path.write_text("\n".join(lines) + "\n")
    imported = campaigns.import_file(path, strategy=fast_strategy())
    store = campaigns.store
    for i in range(0, 240, 11):
        store.set_opt_out(store.get_account(f"P-{i}").phone, True, "sms", "test")
    for i in range(5, 240, 13):
        store.open_dispute(f"P-{i}", "x", "", None)
    now = time.time()
    # some history: an SMS an hour ago and a call 30 minutes ago for every 4th account
    from duebot.accounts.models import Attempt
    with store.session() as s:
        for i in range(0, 240, 4):
            for j, (channel, purpose, outcome, ago) in enumerate([("sms", "reminder", "delivered", 3600),
                                                                  ("voice", "collection", "no_answer", 1800)]):
                if i % 8 == 0 and j == 1:
                    continue
                s.add(Attempt(key=f"old:P-{i}:{j}", campaign_id="old", account_id=f"P-{i}", step=j,
                              step_name="x", channel=channel, purpose=purpose, state="done", tries=1, reasons=[],
                              started_at=now - ago, outcome=outcome, right_party=False))
    # move half of the accounts to the first call step
    from sqlalchemy import update

    from duebot.accounts.models import CampaignAccount
    with store.session() as s:
        s.execute(update(CampaignAccount).where(CampaignAccount.account_id.in_([f"P-{i}" for i in range(0, 240, 2)]))
                  .values(step=1))
    fast = preview(store, imported.campaign_id, fast_strategy(), now=now)
    exact = preview(store, imported.campaign_id, fast_strategy(), now=now, exact=True)
    assert fast.gate_calls < exact.gate_calls == 240
    assert [r.to_json() for r in fast.rows] == [r.to_json() for r in exact.rows]
    steps = load_strategy(fast_strategy()).schedules
    for row in fast.rows:
        account = store.get_account(row.account_id)
        step = steps[(account.segment, "default")][1 if int(row.account_id[2:]) % 2 == 0 else 0]
        request = {"now": format_instant(now),
                   "contact": {"channel": step.channel, "purpose": step.purpose, "to": account.phone,
                               "debt_id": account.id, "ai_voice": True},
                   "subscriber": store.gate_subscriber(account.id), "history": store.contact_history(account.id)}
        assert row.decision.to_json() == decide(request, account.pack).to_json(), row.account_id
    summary = fast.summary()
    assert summary["accounts"] == 240 and sum(summary["by_status"].values()) == 240
    assert {"OPTED_OUT", "DISPUTE_OPEN", "ALLOWED"} <= set(summary["by_reason"])


def test_preview_of_a_few_thousand_is_fast(campaigns, tmp_path, fast_strategy):
    imported = campaigns.import_file(write_accounts(tmp_path / "k.csv", 3000), strategy=fast_strategy())
    result = preview(campaigns.store, imported.campaign_id, fast_strategy())
    assert len(result.rows) == 3000 and result.by_reason["ALLOWED"] == 3000
    assert result.gate_calls <= 3
