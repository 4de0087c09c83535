"""`python -m duebot.policies.cli check` (to become `duebot gate check`) and POST /gate/check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from duebot.accounts.store import AccountStore
from duebot.console.tokens import ApiTokens
from duebot.console.users import Users
from duebot.policies import http as gate_http
from duebot.policies.audit import MemoryAuditSink

from .conftest import request

REQ = request("2026-11-24T13:05:00Z", consent={"ai_voice": False, "sms": True})


def cli(stdin: str, *args: str, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "duebot.policies.cli", "check", *args], input=stdin,
                          capture_output=True, text=True, timeout=60,
                          env={"DUEBOT_DATA_DIR": str(tmp), "PATH": "/usr/bin:/bin"})


def test_cli_object_array_and_jsonl(tmp_path: Path) -> None:
    one = cli(json.dumps(REQ), "--pack", "us", tmp=tmp_path)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout) == {"allowed": False, "reasons": ["QUIET_HOURS", "NO_AI_VOICE_CONSENT"],
                                      "next_allowed_at": None, "pack": "us@1"}
    arr = cli(json.dumps([REQ, REQ]), "--pack", "us", tmp=tmp_path)
    lines = cli("\n".join(json.dumps(r) for r in [REQ, REQ, REQ]) + "\n", "--pack", "us", tmp=tmp_path)
    assert len(arr.stdout.splitlines()) == 2 and len(lines.stdout.splitlines()) == 3
    audit = [json.loads(x) for x in (tmp_path / "audit" / "gate.jsonl").read_text().splitlines()]
    assert len(audit) == 6
    rec = audit[0]
    assert rec["kind"] == "gate.decision" and rec["pack"] == "us@1" and rec["now"] == "2026-11-24T13:05:00Z"
    assert rec["request_digest"].startswith("sha256:") and rec["reasons"] == ["QUIET_HOURS", "NO_AI_VOICE_CONSENT"]
    assert len({r["request_digest"] for r in audit}) == 1  # same request, same digest


def test_cli_input_file_and_default_pack(tmp_path: Path) -> None:
    f = tmp_path / "req.json"
    f.write_text(json.dumps(REQ))
    out = cli("", "--input", str(f), tmp=tmp_path)
    assert out.returncode == 0 and json.loads(out.stdout)["pack"] == "cn@1"


@pytest.mark.parametrize("stdin, args, needle", [
    ("{not json", (), "invalid JSON on line 1"),
    ("", (), "empty"),
    (json.dumps({**REQ, "now": "noon"}), (), "now:"),
    (json.dumps({**REQ, "contact": {**REQ["contact"], "channel": "fax"}}), (), "contact.channel"),
    (json.dumps([REQ, {**REQ, "history": [{"at": "x", "channel": "voice"}]}]), (), "request[1].history[0].at"),
    (json.dumps(REQ), ("--pack", "mars"), "unknown pack"),
    (json.dumps(REQ), ("--input", "/nonexistent.json"), "--input"),
])
def test_cli_invalid_input_exits_2_naming_the_field(tmp_path: Path, stdin: str, args: tuple, needle: str) -> None:
    out = cli(stdin, *args, tmp=tmp_path)
    assert out.returncode == 2 and needle in out.stderr
    for line in out.stdout.splitlines():  # whatever was printed is a fail-closed decision
        assert json.loads(line)["allowed"] is False


def test_cli_not_a_number_is_a_decision_not_an_error(tmp_path: Path) -> None:
    out = cli(json.dumps({**REQ, "contact": {**REQ["contact"], "to": "call me maybe"}}), "--pack", "us",
              tmp=tmp_path)
    assert out.returncode == 0 and "INVALID_NUMBER" in json.loads(out.stdout)["reasons"]


def test_http_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 18: the endpoint takes an API token of a role that may check contacts
    monkeypatch.setenv("DUEBOT_DB_URL", f"sqlite:///{tmp_path / 'duebot.sqlite3'}")
    store = AccountStore()
    Users(store).add("manon", "campaign_manager", "manager-pass-123")
    token = ApiTokens(store).create("manon").token
    sink = MemoryAuditSink()
    gate_http.set_audit_sink(sink)
    app = FastAPI()
    app.include_router(gate_http.router)
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    r = client.post("/gate/check?pack=us", json=REQ)
    assert r.status_code == 200 and r.json()["reasons"] == ["QUIET_HOURS", "NO_AI_VOICE_CONSENT"]
    r = client.post("/gate/check", json=[REQ, REQ])
    assert r.status_code == 200 and [d["pack"] for d in r.json()] == ["cn@1", "cn@1"]
    r = client.post("/gate/check", json={**REQ, "subscriber": {"id": "S"}})
    assert r.status_code == 422 and "subscriber.opted_out" in r.json()["detail"][0]
    assert r.json()["decisions"]["reasons"] == ["INVALID_REQUEST"]
    r = client.post("/gate/check?pack=zz", json=REQ)
    assert r.status_code == 422 and r.json()["decisions"]["reasons"] == ["UNKNOWN_PACK"]
    assert len(sink.records) == 5


def test_benchmark_smoke() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "evaluation"))
    import bench_gate

    figures = bench_gate.main(["--n", "400", "--reservations", "200", "--procs", "1", "--batch", "50"])
    assert figures["decide_per_s"] > 0 and figures["reservations_per_s"] > 0
