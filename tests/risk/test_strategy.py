"""Strategies choose steps by score band as well as by segment; unscored accounts behave exactly as before."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from duebot.accounts.models import Account
from duebot.campaigns import planner
from duebot.campaigns.strategy import STRATEGY_DIR, StrategyError, load_strategy, parse_strategy
from duebot.risk.scores import ScoreStore

TODAY = dt.date(2026, 3, 1)
SEGMENTS = ("forgot", "cash_flow", "dispute", "malicious", "legacy", "new_business")
BANDED = """
version: 1
max_call_attempts: 2
age_bands: {elderly: {min_age: 65}}
steps:
  sms_reminder: {channel: sms, purpose: reminder}
  sms_warning:  {channel: sms, purpose: reminder}
  sms_offer:    {channel: sms, purpose: collection}
  ai_call:      {channel: voice, purpose: collection}
  human_queue:  {channel: human, purpose: collection}
segments:
""" + "".join(f"  {s}: {{default: [sms_reminder, ai_call]}}\n" for s in SEGMENTS) + """
score_bands:
  - {name: lowest, below: 30, steps: [sms_warning, human_queue]}
  - name: warning
    below: 60
    segments: [forgot, cash_flow]
    steps: {default: [sms_warning, sms_offer, ai_call], elderly: [sms_warning, ai_call]}
  - {name: top, at_least: 90, segments: [forgot], steps: [sms_reminder]}
"""


def account(segment: str = "forgot", born: dt.date | None = None, account_id: str = "R-1") -> Account:
    return Account(id=account_id, name="Test Subscriber", phone="+8613800000000", amount_due=Decimal("210.00"),
                   currency="CNY", due_date=dt.date(2026, 1, 10), segment=segment, birth_date=born, pack="cn",
                   line_type="mobile", language="zh", status="open")


def names(steps) -> list[str]:  # noqa: ANN001
    return [s.name for s in steps]


def test_a_strategy_routes_accounts_by_score_band_then_segment() -> None:
    s = parse_strategy(yaml.safe_load(BANDED))
    assert [b.name for b in s.score_bands] == ["lowest", "warning", "top"]
    assert names(s.schedule("malicious", "default", 12)) == ["sms_warning", "human_queue"]  # every segment
    assert names(s.schedule("forgot", "default", 29.9)) == ["sms_warning", "human_queue"]  # first match wins
    assert names(s.schedule("forgot", "default", 30)) == ["sms_warning", "sms_offer", "ai_call"]
    assert names(s.schedule("cash_flow", "elderly", 59)) == ["sms_warning", "ai_call"]  # the band's age variant
    assert names(s.schedule("cash_flow", "young", 59)) == ["sms_warning", "sms_offer", "ai_call"]  # its default
    assert names(s.schedule("malicious", "default", 45)) == ["sms_reminder", "ai_call"]  # band not for malicious
    assert names(s.schedule("forgot", "default", 60)) == ["sms_reminder", "ai_call"]  # 60 is not below 60
    assert names(s.schedule("forgot", "default", 100)) == ["sms_reminder"]  # at_least alone: up to 100
    assert names(s.schedule("cash_flow", "default", 95)) == ["sms_reminder", "ai_call"]
    assert s.score_band("forgot", None) is None


def test_unscored_accounts_get_exactly_the_schedules_of_the_strategy_without_bands() -> None:
    for name in ("default", "demo"):
        path = STRATEGY_DIR / f"{name}.yml"
        doc = yaml.safe_load(path.read_text())
        with_bands = parse_strategy(doc)
        without = parse_strategy({k: v for k, v in doc.items() if k != "score_bands"})
        for segment in SEGMENTS:
            for band in ("default", "young", "elderly"):
                assert with_bands.schedule(segment, band, None) == without.schedule(segment, band), (name, segment)
                assert with_bands.schedule(segment, band, 75) == without.schedule(segment, band)  # 60 or more


def test_the_default_strategy_sends_the_warning_below_60(monkeypatch: pytest.MonkeyPatch) -> None:
    strategy = load_strategy("default")
    scores: dict[str, float | None] = {}
    monkeypatch.setattr(planner, "score_of", lambda account_id: scores.get(account_id))
    low = account("cash_flow", account_id="LOW")
    scores["LOW"] = 42
    steps = names(planner.schedule_for(strategy, low, TODAY))
    assert steps[:2] == ["sms_credit_repair", "sms_small_repayment"], steps  # guide, then the small-repayment offer
    assert strategy.steps["sms_credit_repair"].channel == "sms"  # the cn pack: a written first contact
    scores["LOW"] = 60
    assert names(planner.schedule_for(strategy, low, TODAY))[0] == "sms_reminder"
    assert names(planner.schedule_for(strategy, account("forgot", account_id="NONE"), TODAY))[0] == "sms_reminder"
    scores["MAL"] = 5  # no small-repayment offer to deliberate evasion (seed 000: no discounts)
    assert names(planner.schedule_for(strategy, account("malicious", account_id="MAL"), TODAY))[0] == "sms_collection"


def test_a_strategy_without_bands_never_looks_a_score_up(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(_: str) -> None:
        raise AssertionError("looked up")

    monkeypatch.setattr(planner, "score_of", boom)
    doc = yaml.safe_load(BANDED)
    del doc["score_bands"]
    assert names(planner.schedule_for(parse_strategy(doc), account(), TODAY)) == ["sms_reminder", "ai_call"]


def test_the_planner_reads_the_stored_score(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'duebot.sqlite3'}"
    monkeypatch.setenv("DUEBOT_DB_URL", url)
    monkeypatch.setenv("DUEBOT_DATA_DIR", str(tmp_path / "var"))
    scores = ScoreStore.for_url(url)
    strategy = load_strategy("default")
    assert names(planner.schedule_for(strategy, account("forgot", account_id="S-1"), TODAY))[0] == "sms_reminder"
    scores.put_many([{"account_id": "S-1", "risk_score": 41, "risk_model": "v/lr",
                                        "probability": 0.41, "factors": []}])
    assert names(planner.schedule_for(strategy, account("forgot", account_id="S-1"), TODAY))[0] == "sms_credit_repair"
    scores.put_many([{"account_id": "S-1", "risk_score": 77, "risk_model": "v/lr",
                                        "probability": 0.77, "factors": []}])
    assert names(planner.schedule_for(strategy, account("forgot", account_id="S-1"), TODAY))[0] == "sms_reminder"


@pytest.mark.parametrize(("band", "message"), [
    ({"below": 60, "steps": ["nope"]}, "unknown step"),
    ({"below": 60, "segments": ["vip"], "steps": ["sms_reminder"]}, "unknown segment"),
    ({"below": "sixty", "steps": ["sms_reminder"]}, "scores 0-100"),
    ({"below": 30, "at_least": 40, "steps": ["sms_reminder"]}, "at_least < below"),
    ({"steps": ["sms_reminder"]}, "scores 0-100"),
    ({"below": 60, "steps": ["ai_call", "ai_call", "ai_call"]}, "call attempts"),
    ({"below": 60, "steps": []}, "non-empty"),
    ({"below": 60, "steps": {"teen": ["sms_reminder"], "default": ["sms_reminder"]}}, "band one of"),
    ({"below": 60, "step": ["sms_reminder"]}, "unknown key"),
])
def test_bad_score_bands_are_refused_naming_the_problem(band: dict, message: str) -> None:
    doc = yaml.safe_load(BANDED)
    doc["score_bands"] = [band]
    with pytest.raises(StrategyError, match=message):
        parse_strategy(doc)
