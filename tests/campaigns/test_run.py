"""Launch with real worker processes on a real Redis: completion, SIGKILL at random points, pause, HTTP."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest
from fastapi.testclient import TestClient

from duebot.accounts.models import Attempt
from duebot.campaigns import http
from duebot.campaigns.control import Control
from duebot.campaigns.report import write_report
from duebot.campaigns.worker import close_human_step
from duebot.console.tokens import ApiTokens
from duebot.console.users import Users
from duebot.web import create_app
from tests.campaigns.conftest import ledger, wait_for, write_accounts


def _states(campaigns, campaign_id):
    return campaigns.repo.account_states(campaign_id)


def test_launch_over_simulated_subscribers_completes_with_a_report(campaigns, workers, tmp_path, fast_strategy):
    default_stop = "[promise, plan, payment, dispute, opt_out, wrong_number, complaint, hardship]"
    imported = campaigns.import_file(write_accounts(tmp_path / "a.csv", 90),
                                     strategy=fast_strategy(default_stop, human=True))
    cid = imported.campaign_id
    pool = workers("--concurrency", "3", "--scheduler-interval", "0.2", "--sim-seed", "3")
    pool.start()
    pool.start()
    assert campaigns.launch(cid) == 90  # every account's SMS reminder is due now

    def a_person_closes_each_human_step() -> bool:
        """The human_queue step stays open until a person closes its work item (issue 20)."""
        with campaigns.store.session() as s:
            waiting = [a.key for a in s.query(Attempt).filter(Attempt.channel == "human", Attempt.state == "started")]
        for key in waiting:
            close_human_step(campaigns.store, campaigns.client, key)
        return campaigns.repo.get(cid).status == "completed"

    assert wait_for(a_person_closes_each_human_step, 90), campaigns.status(cid)
    states = _states(campaigns, cid)
    assert sum(states.values()) == 90 and set(states) <= {"finished", "stopped", "blocked"}
    dials = ledger(campaigns.client)
    assert dials and max(dials.values()) == 1
    with campaigns.store.session() as s:
        contacted = {a.key for a in s.query(Attempt).filter(Attempt.state.in_(("done", "unknown")),
                                                             Attempt.channel != "human")}
    assert contacted == set(dials)  # every recorded contact happened once, every dial was recorded
    status = campaigns.status(cid)
    assert status["status"] == "completed" and status["steps"][0]["completed"] == 90
    report = write_report(campaigns.store, cid, tmp_path / "report")
    k = report["kpis"]
    assert k["accounts_attempted"] == 90 and 0 < k["answer_rate"] <= 1 and k["settled_accounts"] > 0
    for key in ("funnel_png", "segments_png", "time_png"):
        assert os.path.getsize(report["files"][key]) > 10_000


@pytest.mark.slow  # 25 s of kills in real time
def test_sigkill_of_workers_never_duplicates_or_loses_a_contact(campaigns, workers, tmp_path, fast_strategy):
    """300 accounts x 3 steps, 3 workers, one SIGKILLed every 0.2-0.6 s and replaced: each step of each account is
    contacted exactly once (the simulated provider's ledger counts every dial)."""
    n = 300
    imported = campaigns.import_file(write_accounts(tmp_path / "k.csv", n), strategy=fast_strategy())
    cid = imported.campaign_id
    pool = workers("--concurrency", "2", "--claim-idle", "1.0", "--heartbeat-ttl", "1.0", "--scheduler-interval",
                   "0.2", "--sim-certain", "--sim-latency", "0.03", "--no-evidence")
    for _ in range(3):
        pool.start()
    campaigns.launch(cid)
    rng = random.Random(1)
    kills = 0
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline and campaigns.repo.get(cid).status != "completed":
        time.sleep(rng.uniform(0.2, 0.6))
        victim = rng.choice(pool.alive())
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        kills += 1
        pool.start()
    assert kills >= 10
    assert wait_for(lambda: campaigns.repo.get(cid).status == "completed", 90), campaigns.status(cid)
    dials = ledger(campaigns.client)
    expected = {f"{cid}:T-{i}:{step}" for i in range(n) for step in range(3)}
    duplicates = {k: v for k, v in dials.items() if v > 1}
    assert not duplicates
    assert set(dials) == expected  # none lost: every step retried by another worker
    assert _states(campaigns, cid) == {"finished": n}


def test_pause_stops_new_contacts_within_a_second_and_resume_continues(campaigns, workers, tmp_path,
                                                                         fast_strategy):
    imported = campaigns.import_file(write_accounts(tmp_path / "p.csv", 400), strategy=fast_strategy())
    cid = imported.campaign_id
    pool = workers("--concurrency", "4", "--scheduler-interval", "0.2", "--sim-certain", "--sim-latency", "0.05",
                   "--sms-rate", "40", "--no-evidence")
    pool.start()
    pool.start()
    campaigns.launch(cid)
    assert wait_for(lambda: len(ledger(campaigns.client)) >= 20, 20)
    campaigns.pause(cid)
    paused_at = time.time()
    time.sleep(2.5)
    log = [(entry.decode().split("|")) for entry in campaigns.client.lrange("duebot:sim:dials:log", 0, -1)]
    late = [key for key, at in log if float(at) > paused_at + 1.0]
    assert not late, f"{len(late)} contacts started more than 1 s after pause"
    before = len(log)
    assert before < 400 * 3
    campaigns.resume(cid)
    assert wait_for(lambda: campaigns.client.llen("duebot:sim:dials:log") > before + 20, 20)
    campaigns.cancel(cid)


def test_pacing_token_bucket_is_global(redis_client):
    control = Control(redis_client)
    start = time.monotonic()
    for _ in range(30):
        control.wait_token("voice", rate=20)
    elapsed = time.monotonic() - start
    assert 0.4 < elapsed < 2.0  # burst of 20, then 10 more at 20/s
    assert control.acquire_slot("a", 1, 5) and not control.acquire_slot("b", 1, 5)
    control.release_slot("a")
    assert control.acquire_slot("b", 1, 5)


def test_http_api_runs_the_same_operations(campaigns, workers, tmp_path, fast_strategy, monkeypatch):
    # issue 18: the API takes a token of a role that may do each operation, and strategies by registered name
    monkeypatch.setenv("DUEBOT_STRATEGIES", f"fast={fast_strategy()}")
    Users(campaigns.store).add("manon", "campaign_manager", "manager-pass-123")
    token = ApiTokens(campaigns.store).create("manon").token
    http.set_campaigns(campaigns)
    client = TestClient(create_app(), headers={"Authorization": f"Bearer {token}"})
    csv_path = write_accounts(tmp_path / "h.csv", 30)
    with csv_path.open("rb") as handle:
        r = client.post("/campaigns/import", files={"file": ("h.csv", handle, "text/csv")},
                        params={"strategy": "fast"})
    assert r.status_code == 200, r.text
    cid = r.json()["campaign_id"]
    assert r.json()["imported"] == 30
    preview = client.get(f"/campaigns/{cid}/preview", params={"limit": 5}).json()
    assert preview["summary"]["by_reason"] == {"ALLOWED": 30} and len(preview["accounts"]) == 5
    assert client.post(f"/campaigns/{cid}/launch").json()["enqueued"] == 30
    assert client.post(f"/campaigns/{cid}/launch").status_code == 409
    workers("--scheduler-interval", "0.2", "--sim-certain", "--no-evidence").start()
    assert wait_for(lambda: client.get(f"/campaigns/{cid}/status").json()["status"] == "completed", 30)
    metrics = client.get("/metrics").text
    assert "duebot_campaign_attempts_total" in metrics and f'campaign="{cid}"' in metrics
    assert client.get(f"/campaigns/{cid}/report").json()["kpis"]["accounts_attempted"] == 30
    assert client.get(f"/campaigns/{cid}/report/funnel.png").headers["content-type"] == "image/png"
    assert client.get("/campaigns/nope/status").status_code == 404
    assert "/campaigns/{campaign_id}/launch" in client.get("/openapi.json").json()["paths"]
