"""`duebot risk synth | train | score | check | models` on a store in tmp, and a campaign whose worker processes
route scored accounts by score band."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from duebot.accounts.models import Attempt
from duebot.accounts.store import AccountStore
from duebot.campaigns.service import Campaigns
from duebot.cli import app
from duebot.risk.scores import ScoreStore
from duebot.settings import RedisAddress, child_environment
from tests.campaigns.conftest import SEGMENTS, Workers, midday_zone, wait_for

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"DUEBOT_DB_URL": f"sqlite:///{tmp_path / 'duebot.sqlite3'}", "DUEBOT_DATA_DIR": str(tmp_path / "var")}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def accounts_file(path: Path, n: int) -> Path:
    lines = ["account_id,name,phone,amount,due_date,segment,timezone,pack,line_type"]
    for i in range(n):
        lines.append(f"R-{i},Sub {i},+86138{i:08d},{150 + 40 * i}.00,2026-01-{1 + i % 28:02d},{SEGMENTS[i % 6]},"
                     f"{midday_zone()},cn,mobile")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_synth_train_score_check_from_the_command_line(env: dict[str, str], tmp_path: Path, redis_client) -> None:
    history = tmp_path / "history.jsonl"
    assert "cash_flow" in run("risk", "synth", "--accounts", "4000", "--out", str(history), "--seed", "2")
    trained = json.loads(run("risk", "train", "--data", str(history), "--no-boosted", "--json"))
    assert trained["lr"]["auc"] >= 0.75 and trained["scored_by"] == "lr" and "gb" not in trained
    models = json.loads(run("risk", "models", "--json"))
    assert len(models) == 1 and models[0]["current"]

    store = AccountStore(env["DUEBOT_DB_URL"])
    campaigns = Campaigns(store, redis_client)
    imported = campaigns.import_file(accounts_file(tmp_path / "accounts.csv", 12), "default", "risk", "CN")
    summary = json.loads(run("risk", "score", "--json", "--show", "3"))
    assert summary["scored"] == summary["written"] == 12 and summary["model"].endswith("/lr")
    assert len(summary["lowest"]) == 3 and summary["lowest"][0]["score"] <= summary["lowest"][-1]["score"]
    assert all(f["feature"] for item in summary["lowest"] for f in item["factors"])
    stored = ScoreStore(store.engine).get_many([f"R-{i}" for i in range(12)])
    assert len(stored) == 12 and all(0 <= s.risk_score <= 100 and s.risk_model == summary["model"]
                                     for s in stored.values())
    again = json.loads(run("risk", "score", "--json", "--dry-run", "--show", "12"))
    assert {i["account_id"]: i["score"] for i in again["lowest"]} == {k: s.risk_score for k, s in stored.items()}

    # an operator's history fills what the store lacks (and overrides it): the score moves, the output says why
    extra = tmp_path / "extra.csv"
    extra.write_text("account_id,late_bills_12m,tenure_months,broken_promises\nR-0,12,1,6\n")
    moved = json.loads(run("risk", "score", "--json", "--account", "R-0", "--history", str(extra), "--dry-run"))
    assert moved["lowest"][0]["score"] < stored["R-0"].risk_score
    assert {"late_bills_12m", "broken_promises"} & {f["feature"] for f in moved["lowest"][0]["factors"]}

    # accounts a running campaign is working keep their score unless asked
    campaigns.repo.set_status(imported.campaign_id, "running")
    kept = json.loads(run("risk", "score", "--json"))
    assert kept["skipped_active_in_campaign"] == 12 and kept["scored"] == 0

    checked = runner.invoke(app, ["risk", "check", "--data", str(history), "--json", "--out", str(tmp_path / "c")])
    assert checked.exit_code == 0, checked.output
    result = json.loads((tmp_path / "c" / "check.json").read_text())
    assert result["ok"] and {r["attribute"] for r in result["attributes"]} >= {"gender", "region", "name"}


def test_no_model_yet_is_said_plainly(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["risk", "score"])
    assert result.exit_code == 2 and "duebot risk train" in result.output


BANDED = """
version: 1
max_call_attempts: 2
stop_on: []
pacing: {voice_calls_per_second: 200, sms_per_second: 500, max_concurrent_calls: 50}
steps:
  sms_reminder: {channel: sms, purpose: reminder}
  sms_credit_repair: {channel: sms, purpose: reminder}
  ai_call: {channel: voice, purpose: collection}
segments:
""" + "".join(f"  {s}: {{default: [sms_reminder, ai_call]}}\n" for s in SEGMENTS) + """
score_bands:
  - {below: 60, steps: [sms_credit_repair, ai_call]}
"""


def test_campaign_workers_route_scored_accounts_by_band(env: dict[str, str], tmp_path: Path, monkeypatch,
                                                        redis_address: RedisAddress, redis_client) -> None:
    monkeypatch.setenv("REDIS_URL", redis_address.url)
    store = AccountStore(env["DUEBOT_DB_URL"])
    campaigns = Campaigns(store, redis_client)
    strategy = tmp_path / "banded.yml"
    strategy.write_text(BANDED)
    cid = campaigns.import_file(accounts_file(tmp_path / "a.csv", 9), str(strategy), "banded", "CN").campaign_id
    ScoreStore(store.engine).put_many(
        [{"account_id": f"R-{i}", "risk_score": 35, "risk_model": "test/lr", "probability": 0.35, "factors": []}
         for i in (0, 1, 2)]
        + [{"account_id": f"R-{i}", "risk_score": 85, "risk_model": "test/lr", "probability": 0.85, "factors": []}
           for i in (3, 4, 5)])  # R-6..R-8: no score
    pool = Workers({**child_environment(), "REDIS_URL": redis_address.url},
                   ["--concurrency", "2", "--scheduler-interval", "0.2", "--sim-seed", "1"])

    def first_steps() -> dict[str, str]:
        with store.session() as s:
            return dict(s.execute(select(Attempt.account_id, Attempt.step_name).where(
                Attempt.campaign_id == cid, Attempt.step == 0, Attempt.state.in_(("done", "unknown")))).all())

    pool.start()
    try:
        assert campaigns.launch(cid) == 9
        assert wait_for(lambda: len(first_steps()) == 9, 60), first_steps()
        steps = first_steps()
    finally:
        pool.stop()
    assert {steps[f"R-{i}"] for i in (0, 1, 2)} == {"sms_credit_repair"}
    assert {steps[f"R-{i}"] for i in range(3, 9)} == {"sms_reminder"}

