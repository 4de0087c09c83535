"""Issue 18: a property-based fuzz of the web service (evaluation/bench_fuzz.py, smaller): schemathesis over the
OpenAPI document, anonymously and with an operator API token, and hypothesis strategies on the Twilio SMS and voice
webhooks, the chat API, the payment webhook, the gate and the campaign import. No answer may be >= 500, the evidence
writer may not stop, and its log must verify at the end. The full run: `.venv/bin/python evaluation/bench_fuzz.py`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
import bench_fuzz  # noqa: E402


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_thousand_fuzzed_requests_get_no_server_error(tmp_path, redis_address, redis_client, monkeypatch):
    from duebot.policies import http as gate_api

    monkeypatch.setattr(gate_api, "_sink", gate_api._sink)  # create_app wires the gate to this test's Redis

    def set_env(values: dict[str, str]) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    result = bench_fuzz.run_fuzz(redis_address, tmp_path / "data", 2000, run_seed=11, set_env=set_env,
                                 out=tmp_path / "out")
    assert result.harness_ok, result.canaries  # every lane got past the service's front door at least once
    assert result.requests >= 2000
    assert not result.failures, [(f.lane, f.status, f.method, f.url, f.body[:300], (f.trace or "")[-800:])
                                 for f in result.failures]
    assert not result.writer_stops, result.writer_stops
    assert result.evidence["inbox_drained"] and result.evidence["log_verifies"], result.evidence
    # the operator routes were fuzzed behind a valid token too, when the API takes tokens
    if result.authenticated:
        assert result.by_lane["openapi:token"].get("200", 0) > 0
