"""Rasa's event broker (run in Rasa's own Python) speaks the evidence inbox's wire format."""

from __future__ import annotations

import json
import subprocess

import pytest

from duebot.evidence.inbox import EvidenceWriter
from duebot.evidence.log import EvidenceLog
from duebot.settings import load_settings

pytestmark = pytest.mark.rasa  # runs code in Rasa's own Python

PUBLISH = """
import asyncio, json, sys
sys.path.insert(0, "bot")
from rasa.utils.endpoints import EndpointConfig
from evidence_broker import EvidenceBroker
config = EndpointConfig(url="127.0.0.1", port=sys.argv[1], db="0", password="", type="evidence_broker.EvidenceBroker")
broker = asyncio.run(EvidenceBroker.from_endpoint_config(config))
for event in json.loads(sys.argv[2]):
    broker.publish(event)
"""

EVENTS = [
    {"event": "user", "sender_id": "c-9", "timestamp": 1795520469.5, "text": "4472",
     "metadata": {"channel": "voice", "asr_confidence": 0.91, "audio_sha256": "ab" * 32},
     "parse_data": {"intent": {"name": "inform", "confidence": 0.99}}},
    {"event": "action", "sender_id": "c-9", "timestamp": 1795520469.6, "name": "action_handle_inform"},
    {"event": "bot", "sender_id": "c-9", "timestamp": 1795520469.7, "text": "Your balance is $230.50.",
     "data": {"custom": {"legal_elements": ["identity_confirmed", "amount", "deadline"]}}},
]


def test_rasa_broker_turns_become_evidence(tmp_path, redis_address, redis_client):
    settings = load_settings()
    subprocess.run([str(settings.rasa_venv / "bin" / "python"), "-c", PUBLISH, str(redis_address.port),
                    json.dumps(EVENTS)], cwd=settings.root, check=True, timeout=120)
    with EvidenceLog.open(tmp_path / "ev") as log:
        writer = EvidenceWriter(redis_client, log)
        while writer.drain_once(block_ms=50):
            pass
        turns = log.records_for("c-9")
        assert [t.body["speaker"] for t in turns] == ["debtor", "bot"]  # the action event is not a turn
        debtor, bot = turns
        assert debtor.body["channel"] == "voice" and debtor.body["asr_confidence"] == 0.91
        assert debtor.body["intent"] == "inform" and debtor.body["audio_sha256"] == "ab" * 32
        assert debtor.body["started_at"] == "2026-11-24T11:41:09.500000Z"
        assert log.payload(debtor.payloads["text"]["sha256"]) == b"4472"
        assert bot.body["legal_elements"] == ["identity_confirmed", "amount", "deadline"]
        writer.close()
