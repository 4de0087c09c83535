"""Many producers, one writer: records submitted through Redis reach the log once, even across a crash."""

from __future__ import annotations

import json
import threading

import pytest

from duebot.evidence.inbox import STREAM, EvidenceInbox, EvidenceWriter, writer_running
from duebot.evidence.log import EvidenceLog
from duebot.evidence.records import RecordError


def test_submitted_records_are_appended_and_acknowledged(tmp_path, redis_client):
    inbox = EvidenceInbox(redis_client)
    with EvidenceLog.open(tmp_path / "ev") as log:
        writer = EvidenceWriter(redis_client, log)
        for i in range(20):
            inbox.submit("turn", {"speaker": "debtor", "channel": "sms", "started_at": "t", "ended_at": "t"},
                         conversation_id="c1", payloads={"text": f"message {i}".encode()})
        inbox.submit("gate_decision", {"decision": {"allowed": False}})
        while writer.drain_once(block_ms=50):
            pass
        records = log.records_for("c1")
        assert len(records) == 20
        assert log.payload(records[3].payloads["text"]["sha256"]) == b"message 3"
        assert log.size == 21
        assert redis_client.xlen(STREAM) == 0  # acknowledged and removed only once durable
        assert log.verify().ok
        writer.close()


def test_invalid_records_are_refused_at_the_producer(redis_client):
    with pytest.raises(RecordError, match="lacks"):
        EvidenceInbox(redis_client).submit("turn", {"speaker": "bot"}, conversation_id="c1")
    assert redis_client.xlen(STREAM) == 0


def test_a_crashed_writer_loses_nothing_and_duplicates_nothing(tmp_path, redis_client):
    inbox = EvidenceInbox(redis_client)
    for i in range(10):
        inbox.submit("outcome", {"type": "promise", "n": i}, conversation_id="c2")
    # A writer appends everything but dies before acknowledging (simulated by appending without xack).
    with EvidenceLog.open(tmp_path / "ev") as log:
        dying = EvidenceWriter(redis_client, log, consumer="dying")
        entries = redis_client.xreadgroup(dying.group, "dying", {STREAM: ">"}, count=100)[0][1]
        dying.log.append_many([(f[b"kind"].decode(), {**json.loads(f[b"body"]), "rid": f[b"rid"].decode()}, None,
                                f[b"conversation_id"].decode()) for _, f in entries[:6]])
    with EvidenceLog.open(tmp_path / "ev") as log:
        assert log.size == 6
        successor = EvidenceWriter(redis_client, log, consumer="successor")
        redis_client.xclaim(STREAM, successor.group, "successor", 0, [e[0] for e in entries])
        while successor.drain_once(block_ms=50):
            pass
        numbers = sorted(r.body["n"] for r in log.records_for("c2"))
        assert numbers == list(range(10))  # each exactly once
        successor.close()


def test_heartbeat_shows_a_running_writer(tmp_path, redis_client):
    with EvidenceLog.open(tmp_path / "ev") as log:
        writer = EvidenceWriter(redis_client, log)
        thread = threading.Thread(target=writer.run)
        thread.start()
        try:
            for _ in range(50):
                if writer_running(redis_client):
                    break
                threading.Event().wait(0.05)
            assert writer_running(redis_client)
        finally:
            writer.stopping.set()
            thread.join()
            writer.close()
        assert not writer_running(redis_client)


def test_quiet_conversations_get_their_three_elements_assessed(tmp_path, redis_client):
    inbox = EvidenceInbox(redis_client)
    turn = {"speaker": "bot", "channel": "chat", "started_at": "t", "ended_at": "t"}
    inbox.submit("turn", {**turn, "legal_elements": ["identity_confirmed", "amount", "deadline"]},
                 conversation_id="complete", payloads={"text": b"Your balance is $230.50, due by Friday."})
    inbox.submit("turn", turn, conversation_id="incomplete", payloads={"text": b"May I speak with Jane?"})
    with EvidenceLog.open(tmp_path / "ev") as log:
        writer = EvidenceWriter(redis_client, log, assess_after=30)
        while writer.drain_once(block_ms=50):
            pass
        assert writer.assess_quiet_conversations() == []  # not quiet yet
        assessed = writer.assess_quiet_conversations(now=__import__("time").monotonic() + 31)
        assert sorted(assessed) == ["complete", "incomplete"]
        verdict = {c: log.records_for(c)[-1].body for c in assessed}
        assert verdict["complete"]["flagged_for_qa"] is False
        assert verdict["incomplete"]["flagged_for_qa"] is True
        assert verdict["incomplete"]["missing"] == ["identity_confirmed", "amount", "deadline"]
        writer.close()


def test_gate_decisions_and_releases_become_evidence(tmp_path, redis_client):
    from duebot.evidence.inbox import InboxAuditSink
    from duebot.policies.reserve import LiveGate

    sink = InboxAuditSink(EvidenceInbox(redis_client))
    gate = LiveGate(redis_client, "us", sink=sink, prefix="test:gate")
    request = {"now": "2026-11-24T20:00:00Z",
               "contact": {"channel": "sms", "purpose": "collection", "to": "+14155550101", "debt_id": "A-1"},
               "subscriber": {"id": "A-1", "timezone": "America/Los_Angeles", "consent": {"sms": True},
                              "opted_out": False, "dispute_open": False}}
    reservation = gate.reserve(request)
    assert reservation.decision.allowed and reservation.id
    assert gate.release(reservation.id, "twilio refused")
    with EvidenceLog.open(tmp_path / "ev") as log:
        writer = EvidenceWriter(redis_client, log)
        while writer.drain_once(block_ms=50):
            pass
        kinds = [log.get(i).kind for i in range(log.size)]
        assert kinds == ["gate_decision", "gate_release"]
        assert log.get(0).body["decision"]["pack"] == "us@1"
        assert log.get(1).body["release"]["reason"] == "twilio refused"
        writer.close()
