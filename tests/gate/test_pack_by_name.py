"""POST /gate/check over the real web app (create_app): packs by registered name only, bodies and arrays capped,
audit records bounded, and a token whose role may check contacts (issue 18). Each test sends the attack the old
endpoint accepted and fails if it works again."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from duebot.accounts.store import AccountStore
from duebot.console.tokens import ApiTokens
from duebot.console.users import Users
from duebot.policies import http as gate_http
from duebot.policies.audit import MemoryAuditSink
from duebot.policies.packs import PACK_DIR
from duebot.web import create_app

from .conftest import request

REQ = request("2026-11-24T20:00:00Z")
CANARY = "TOPSECRET-CANARY-7f3a"  # in files the attacker names: must never come back, nor reach the audit log


@dataclass
class Gate:
    client: TestClient
    sink: MemoryAuditSink
    tokens: dict[str, str]
    tmp: Path

    def check(self, body: object, pack: str | None = None, role: str | None = "campaign_manager",
              **kwargs: object):  # noqa: ANN201 - an httpx.Response
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        params = {"pack": pack} if pack is not None else {}
        return self.client.post("/gate/check", params=params, json=body, headers=headers, **kwargs)

    def audited(self) -> str:
        return json.dumps(self.sink.records, ensure_ascii=False)


def make_token(store: AccountStore, username: str, role: str) -> str:
    Users(store).add(username, role, f"{username}-password-1")
    return ApiTokens(store).create(username, "tests").token


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    url = f"sqlite:///{tmp_path / 'duebot.sqlite3'}"
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("DUEBOT_DB_URL", url)
    monkeypatch.setenv("DUEBOT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DUEBOT_GATE_MAX_BATCH", "5")
    monkeypatch.setenv("DUEBOT_MAX_BODY_BYTES", "65536")
    store = AccountStore(url)
    tokens = {"campaign_manager": make_token(store, "manon", "campaign_manager"),
              "auditor": make_token(store, "audrey", "auditor"),
              "qa_reviewer": make_token(store, "quinn", "qa_reviewer")}
    sink = MemoryAuditSink()
    app = create_app()
    gate_http.set_audit_sink(sink)
    with TestClient(app) as client:
        yield Gate(client, sink, tokens, tmp_path)


def test_the_registered_packs_still_decide(gate: Gate) -> None:
    r = gate.check(REQ, "us")
    assert r.status_code == 200 and r.json()["pack"] == "us@1"
    r = gate.check([REQ, REQ])  # the default pack, cn
    assert r.status_code == 200 and [d["pack"] for d in r.json()] == ["cn@1", "cn@1"]
    assert gate.check(REQ, "us", role="auditor").status_code == 200


@pytest.mark.parametrize("given", [
    "/etc/passwd", "/etc/hostname", "../../../../etc/passwd", str(PACK_DIR / "us.yml"), "us.yml", "./us.yml",
    "cn/../us", "US", " us", "file:///etc/passwd", "x" * 5000,
])
def test_a_pack_is_a_registered_name_never_a_path(gate: Gate, given: str) -> None:
    r = gate.check(REQ, given)
    assert r.status_code == 422
    assert r.json()["detail"] == "pack: unknown pack; use one of cn, us"  # one fixed message
    assert r.json()["decisions"]["reasons"] == ["UNKNOWN_PACK"] and r.json()["decisions"]["pack"] == "unknown"
    fixed = "unknown pack; use one of cn, us"
    assert "root:" not in r.text and given.strip() not in r.text.replace(fixed, "")
    assert gate.sink.records[-1][1]["pack"] == "unknown" and given.strip() not in gate.audited().replace(fixed, "")


def test_a_file_the_caller_names_is_never_opened_nor_echoed(gate: Gate) -> None:
    # the old endpoint loaded any .yml path and quoted it in the 422: "'version' must be …, got '<canary>'"
    leaky = gate.tmp / "leaky.yml"
    leaky.write_text(f"pack: leaky\nversion: {CANARY}\nretention_years: 1\nrules: [{{rule: {CANARY}}}]\n")
    r = gate.check(REQ, str(leaky))
    assert r.status_code == 422 and CANARY not in r.text and str(leaky) not in r.text
    assert CANARY not in gate.audited() and str(leaky) not in gate.audited()
    # a valid pack file by path is refused too: only names the operator registered load
    mine = gate.tmp / "mine.yml"
    mine.write_text((PACK_DIR / "us.yml").read_text().replace("pack: us", "pack: mine", 1))
    assert gate.check(REQ, str(mine)).json()["decisions"]["reasons"] == ["UNKNOWN_PACK"]


@pytest.mark.timeout(30)
def test_dev_zero_is_refused_at_once(gate: Gate) -> None:
    started = time.monotonic()
    r = gate.check(REQ, "/dev/zero")  # the old endpoint read it until memory ran out
    assert r.status_code == 422 and time.monotonic() - started < 5
    r = gate.check(REQ, "/dev/zero.yml")
    assert r.status_code == 422


def test_packs_registered_in_the_settings_load_by_name(gate: Gate, monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    mine = gate.tmp / "mine.yml"
    mine.write_text((PACK_DIR / "us.yml").read_text().replace("pack: us", "pack: mine", 1))
    broken = gate.tmp / "broken.yml"
    broken.write_text(f"pack: broken\nversion: 1\nretention_years: 2\nrules: [{{rule: {CANARY}}}]\n")
    monkeypatch.setenv("DUEBOT_GATE_PACKS", f"mine={mine},broken={broken}")
    r = gate.check(REQ, "mine")
    assert r.status_code == 200 and r.json()["pack"] == "mine@1"
    with caplog.at_level(logging.ERROR, logger="duebot.gate"):
        r = gate.check(REQ, "broken")  # the operator's mistake: in the log, not in the answer
    assert r.status_code == 422 and r.json()["decisions"]["reasons"] == ["UNKNOWN_PACK"]
    assert CANARY not in r.text and str(broken) not in r.text and CANARY in caplog.text
    assert gate.check(REQ, "nope").json()["detail"] == "pack: unknown pack; use one of cn, us, mine, broken"


def test_bodies_and_arrays_are_capped(gate: Gate) -> None:
    before = len(gate.sink.records)
    big = [{**REQ, "subscriber": {**REQ["subscriber"], "id": "S" * 70000}}]
    r = gate.check(big)  # Content-Length over DUEBOT_MAX_BODY_BYTES: refused before a byte is read
    assert r.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b"["
        for _ in range(200):
            yield json.dumps(REQ).encode() + b","
        yield json.dumps(REQ).encode() + b"]"

    r = gate.client.post("/gate/check", content=chunks(), headers={
        "Authorization": f"Bearer {gate.tokens['campaign_manager']}", "Content-Type": "application/json"})
    assert r.status_code == 413
    r = gate.check([REQ] * 6)  # DUEBOT_GATE_MAX_BATCH=5
    assert r.status_code == 413 and "at most 5" in r.json()["detail"]
    assert len(gate.sink.records) == before  # nothing decided, nothing audited
    assert gate.check([REQ] * 5).status_code == 200


def test_audit_records_hold_no_unbounded_string(gate: Gate) -> None:
    long_id, long_channel = "S" * 20000, "fax" * 5000
    gate.check({**REQ, "subscriber": {**REQ["subscriber"], "id": long_id}})
    gate.check({**REQ, "contact": {**REQ["contact"], "channel": long_channel}})  # echoed in the error
    gate.check({**REQ, "now": "9" * 30000})

    def strings(value: object) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for k, v in value.items():
                yield from strings(k)
                yield from strings(v)
        elif isinstance(value, list | tuple):
            for v in value:
                yield from strings(v)

    bodies = [body for _, body in gate.sink.records[-3:]]
    assert all(len(s) <= gate_http.AUDIT_STRING_MAX + 40 for body in bodies for s in strings(body))
    assert bodies[0]["subscriber_id"].startswith("SSS") and "more characters" in bodies[0]["subscriber_id"]
    assert all(body["request_digest"].startswith("sha256:") for body in bodies)  # still names the whole request


def test_who_may_ask_the_gate(gate: Gate) -> None:
    before = len(gate.sink.records)
    anonymous = gate.check(REQ, role=None)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    assert gate.check(REQ, role="qa_reviewer").status_code == 403  # the role matrix: QA may not
    forged = gate.client.post("/gate/check", json=REQ, headers={"Authorization": "Bearer dbt_" + "A" * 43})
    assert forged.status_code == 401
    assert len(gate.sink.records) == before  # a refused caller leaves no decision behind
