"""A writer that one record cannot stop (issue 18).

Before: one entry with NaN in its metadata (Rasa's ujson writes it, Python's json reads it back, the log's canonical
encoder refuses it) raised inside the writer, which died; Redis redelivered the entry after every restart, so the
writer never ran again. The attacks below push malformed entries straight into the Redis stream, past `submit`, as
an attacker with Redis access or an old producer would, and check that the writer appends the good records around
them, dead-letters the bad ones with their reason and original fields, and keeps running across restarts."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from duebot.evidence.cli import app
from duebot.evidence.inbox import (
    DEAD_LETTER_COUNT,
    DEAD_LETTERS,
    GROUP,
    HEARTBEAT,
    STREAM,
    EvidenceInbox,
    EvidenceWriter,
    dead_letter_count,
    dead_letters,
)
from duebot.evidence.log import EvidenceLog
from duebot.evidence.records import RecordError
from duebot.evidence.store import MAX_RECORD
from duebot.settings import RedisAddress

TURN = {"speaker": "debtor", "channel": "sms", "started_at": "2026-01-01T10:00:00Z", "ended_at": "2026-01-01T10:00:01Z"}

# What reaches the stream past submit: (fields, words the dead letter's reason must contain)
MALFORMED: list[tuple[dict[bytes, bytes], str]] = [
    # ujson's output for float("nan") in a turn's metadata: valid for Python's json.loads, not for the log
    ({b"rid": b"nan-1", b"kind": b"turn", b"conversation_id": b"sms:A-1",
      b"body": b'{"speaker":"debtor","channel":"sms","started_at":"t","ended_at":"t","metadata":{"score":NaN}}'},
     "NaN"),
    ({b"rid": b"inf-1", b"kind": b"turn", b"conversation_id": b"sms:A-1",
      b"body": b'{"speaker":"debtor","channel":"sms","started_at":"t","ended_at":"t","emotion_score":1e999}'},
     "not a finite number"),
    ({b"rid": b"notjson", b"kind": b"outcome", b"conversation_id": b"c", b"body": b"{'type': 'promise'"}, "not JSON"),
    ({b"rid": b"list", b"kind": b"outcome", b"conversation_id": b"c", b"body": b"[1,2]"}, "not an object"),
    ({b"rid": b"nobody", b"kind": b"outcome", b"conversation_id": b"c"}, "lacks body"),
    ({b"junk": b"1"}, "lacks rid, kind, body"),
    ({b"rid": b"kind", b"kind": b"DROP TABLE", b"body": b"{}"}, "bad record kind"),
    ({b"rid": b"unknown", b"kind": b"wiretap", b"body": b"{}"}, "unknown record kind"),
    ({b"rid": b"utf8", b"kind": b"outcome", b"conversation_id": b"\xff\xfe", b"body": b'{"type":"promise"}'},
     "not UTF-8"),
    ({b"rid": b"tab", b"kind": b"outcome", b"conversation_id": b"c\tforged\tline\n", b"body": b'{"type":"promise"}'},
     "control character"),
    ({b"rid": b"deep", b"kind": b"outcome", b"conversation_id": b"c",
      b"body": b'{"type":"promise","x":' + b"[" * 100 + b"]" * 100 + b"}"}, "nested deeper"),
    ({b"rid": b"type", b"kind": b"outcome", b"conversation_id": b"c", b"body": b'{"type":"bribe"}'},
     "outcome type"),
]


def _drain(writer: EvidenceWriter) -> None:
    while writer.drain_once(block_ms=50):
        pass


def test_submit_refuses_what_json_cannot_hold_naming_the_field(redis_client: redis.Redis) -> None:
    inbox = EvidenceInbox(redis_client)
    cases = [({**TURN, "metadata": {"asr": {"score": math.nan}}}, r"body\.metadata\.asr\.score: nan is not a finite"),
             ({**TURN, "emotion_score": math.inf}, r"body\.emotion_score: inf is not a finite"),
             ({**TURN, "scores": [0.1, -math.inf]}, r"body\.scores\[1\]: -inf"),
             ({**TURN, "audio": b"RIFF"}, r"body\.audio: a bytes is not a JSON value"),
             ({**TURN, "tags": {"a", "b"}}, r"body\.tags: a set is not a JSON value"),
             ({**TURN, "by_turn": {1: "x"}}, r"body\.by_turn: key 1 is not a string")]
    for body, message in cases:
        with pytest.raises(RecordError, match=message):
            inbox.submit("turn", body, conversation_id="c1")
    with pytest.raises(RecordError, match="control character"):
        inbox.submit("turn", TURN, conversation_id="c1\nforged")
    with pytest.raises(RecordError, match="bytes"):
        inbox.submit("turn", TURN, conversation_id="c1", payloads={"text": "not bytes"})  # type: ignore[dict-item]
    with pytest.raises(RecordError, match="exceeds"):
        inbox.submit("outcome", {"type": "promise", "note": "x" * MAX_RECORD}, conversation_id="c1")
    assert redis_client.xlen(STREAM) == 0


def test_malformed_entries_are_dead_lettered_and_good_records_appended(tmp_path: Path,
                                                                        redis_client: redis.Redis) -> None:
    inbox = EvidenceInbox(redis_client)
    inbox.submit("turn", TURN, conversation_id="sms:A-1", payloads={"text": b"before"})
    for fields, _ in MALFORMED:
        redis_client.xadd(STREAM, fields)
    # bigger than a segment frame: the log used to write it and then be unable to read itself back
    redis_client.xadd(STREAM, {b"rid": b"huge", b"kind": b"outcome", b"conversation_id": b"c",
                               b"body": json.dumps({"type": "promise", "note": "x" * MAX_RECORD}).encode()})
    for i in range(3):
        inbox.submit("turn", TURN, conversation_id="sms:A-1", payloads={"text": f"after {i}".encode()})
    with EvidenceLog.open(tmp_path / "ev") as log:
        writer = EvidenceWriter(redis_client, log)
        _drain(writer)
        texts = [log.payload(r.payloads["text"]["sha256"]) for r in log.records_for("sms:A-1")]
        assert texts == [b"before", b"after 0", b"after 1", b"after 2"]
        assert log.size == 4
        assert redis_client.xlen(STREAM) == 0 and not redis_client.xpending(STREAM, GROUP)["pending"]
        assert writer.dead_lettered == len(MALFORMED) + 1
        assert log.verify().ok
        writer.close()
    letters = {letter["fields"].get("rid", b"?").decode(): letter for letter in dead_letters(redis_client, 100)}
    assert dead_letter_count(redis_client) == len(MALFORMED) + 1 == len(letters)  # the junk entry is under "?"
    for fields, words in MALFORMED:
        letter = letters[fields.get(b"rid", b"?").decode()]
        assert words in letter["reason"], (fields, letter["reason"])
        assert {k.encode(): v for k, v in letter["fields"].items()} == fields  # the original entry, byte for byte
        assert letter["stream_id"] and letter["at"] and letter["consumer"] == writer.consumer
    assert "larger than the" in letters["huge"]["reason"]


def test_a_redelivered_poison_entry_no_longer_stops_the_writer(tmp_path: Path, redis_client: redis.Redis) -> None:
    """The old failure exactly: the writer read the entry, died on it, and got it back after every restart."""
    inbox = EvidenceInbox(redis_client)
    nan, _ = MALFORMED[0]
    redis_client.xadd(STREAM, nan)
    inbox.submit("outcome", {"type": "promise", "n": 1}, conversation_id="c1")
    with EvidenceLog.open(tmp_path / "ev") as log:
        first = EvidenceWriter(redis_client, log, consumer="w")
        # the entries are delivered to `w`, which "dies" before handling them: pending, redelivered on restart
        delivered = redis_client.xreadgroup(GROUP, "w", {STREAM: ">"}, count=10)[0][1]
        assert len(delivered) == 2 and redis_client.xpending(STREAM, GROUP)["pending"] == 2
        first.close()
    for restart in range(3):
        with EvidenceLog.open(tmp_path / "ev") as log:
            writer = EvidenceWriter(redis_client, log, consumer="w")
            inbox.submit("outcome", {"type": "promise", "n": 2 + restart}, conversation_id="c1")
            redis_client.xadd(STREAM, nan)  # and the poison again, fresh
            _drain(writer)
            assert [r.body["n"] for r in log.records_for("c1")] == list(range(1, 3 + restart))
            assert redis_client.xlen(STREAM) == 0
            writer.close()
    assert dead_letter_count(redis_client) == 4


def test_the_writer_command_survives_poison_and_restarts(tmp_path: Path, redis_address: RedisAddress,
                                                         redis_client: redis.Redis) -> None:
    """`duebot evidence writer` as `duebot serve` runs it: poison left pending by a dead writer is claimed after
    its idle time and dead-lettered; the writer keeps its heartbeat and appends what comes after."""
    evdir = tmp_path / "ev"
    env = {**os.environ, "REDIS_URL": redis_address.url, "DUEBOT_DATA_DIR": str(tmp_path)}
    inbox = EvidenceInbox(redis_client)
    redis_client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    for fields, _ in MALFORMED[:3]:
        redis_client.xadd(STREAM, fields)
    redis_client.xreadgroup(GROUP, "dead-writer", {STREAM: ">"}, count=10)  # pending for a writer that died
    inbox.submit("outcome", {"type": "promise", "n": 0}, conversation_id="c1")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "duebot.evidence.cli", "writer", "--dir", str(evdir)],
                                env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "writer.log").open("ab"))

    def wait(predicate, timeout: float = 30.0) -> None:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, (tmp_path / "writer.log").read_text()
            time.sleep(0.1)

    def appended() -> list[int]:
        if not (evdir / "public.vkey").exists():
            return []
        with EvidenceLog.open(evdir, readonly=True) as log:
            return [r.body["n"] for r in log.records_for("c1")]

    proc = start()
    try:
        wait(lambda: appended() == [0] and dead_letter_count(redis_client) == 3)  # after the 5 s claim idle
        assert proc.poll() is None and redis_client.get(HEARTBEAT)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        redis_client.xadd(STREAM, MALFORMED[0][0])
        inbox.submit("outcome", {"type": "promise", "n": 1}, conversation_id="c1")
        proc = start()
        wait(lambda: appended() == [0, 1] and dead_letter_count(redis_client) == 4)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    result = CliRunner().invoke(app, ["dead-letters", "--count", "10"], env={"REDIS_URL": redis_address.url})
    assert result.exit_code == 0, result.output
    assert "4 dead-lettered in all" in result.output and "reason: body holds NaN" in result.output
    assert "kind=turn rid=nan-1 conversation=sms:A-1" in result.output
    as_json = CliRunner().invoke(app, ["dead-letters", "--json"], env={"REDIS_URL": redis_address.url})
    rows = [json.loads(line) for line in as_json.output.splitlines()]
    assert len(rows) == 4 and rows[0]["fields"]["rid"] == "nan-1" and rows[0]["stream_id"]
    assert int(redis_client.get(DEAD_LETTER_COUNT)) == 4 == redis_client.xlen(DEAD_LETTERS)


def test_junk_in_a_turn_does_not_stop_the_three_elements_assessment(tmp_path: Path,
                                                                   redis_client: redis.Redis) -> None:
    """Valid JSON of the wrong shape passes validation; the writer's own reading of it must not crash."""
    inbox = EvidenceInbox(redis_client)
    inbox.submit("turn", {**TURN, "speaker": "bot", "legal_elements": 5}, conversation_id="odd",
                 payloads={"text": b"Your balance is $20.00"})
    inbox.submit("turn", {**TURN, "speaker": "bot", "legal_elements": [["amount"], {"x": 1}, "deadline"]},
                 conversation_id="odd")
    with EvidenceLog.open(tmp_path / "ev") as log:
        writer = EvidenceWriter(redis_client, log, assess_after=0)
        _drain(writer)
        assert writer.assess_quiet_conversations() == ["odd"]
        verdict = log.records_for("odd")[-1].body
        assert verdict["amount_stated"] and verdict["deadline_stated"] and not verdict["identity_confirmed"]
        writer.close()
