"""Retention erasure that erases (issue 18): after erasing a conversation, none of its personal values is anywhere
in the data dir's files, and the log still verifies, counting the erased payloads as erased, not missing.

The records are written the way production writes them: the voice pipeline's recorder and the bot's outcomes
through the Redis inbox, the evidence writer appending them."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from duebot.evidence.bundle import export_conversation, verify_bundle
from duebot.evidence.cli import app as evidence_cli
from duebot.evidence.fsck import verify_directory
from duebot.evidence.inbox import EvidenceInbox, EvidenceWriter
from duebot.evidence.log import EvidenceLog
from duebot.evidence.records import ERASED, PERSONAL_PAYLOAD, RecordError
from duebot.evidence.retention import erase_conversation
from duebot.voice.evidence import InboxEvidenceSink
from duebot.voice.identity import conversation_id_for
from duebot.voice.player import Player
from duebot.voice.recorder import CallRecorder
from tests.voice.line import MemoryTransport

CALLER = "+15551230000"
SPOKEN = "I lost my job at the cannery in Tromsø last spring"
DIGITS = "90817263"  # the ID number the caller keyed
HARDSHIP = "My husband Lars is in the hospital until March"
NAME = "Ingrid Vestergaard-Quist"
LATER = datetime(2100, 1, 1, tzinfo=UTC)  # every retention period is over


def needles() -> dict[str, bytes]:
    return {"spoken text": SPOKEN.encode(), "keyed digits": DIGITS.encode(), "hardship note": HARDSHIP.encode(),
            "phone number": CALLER.encode(), "national number": CALLER[2:].encode(), "name": NAME.encode()}


def found_in(directory: Path) -> dict[str, list[str]]:
    """Which needles occur in which files, byte for byte (every file under the directory, whatever it is)."""
    hits: dict[str, list[str]] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for what, needle in needles().items():
            if needle in data:
                hits.setdefault(what, []).append(str(path.relative_to(directory)))
    return hits


def found_in_payloads(log: EvidenceLog) -> set[str]:
    """Which needles the payloads still stored hold, opened (they are sealed at rest)."""
    opened = b"\0".join(log.payload(d) or b"" for d in log.payload_store.all_digests())
    return {what for what, needle in needles().items() if needle in opened}


def write_a_call(redis_client: redis.Redis, evdir: Path) -> str:
    """One voice call, as the pipeline and the bot record it; returns its conversation id."""
    inbox = EvidenceInbox(redis_client)
    conversation = conversation_id_for(CALLER, b"k" * 32)  # what the voice runtime names the call by
    inbox.submit("conversation", {"pack": "us", "channel": "voice"}, conversation_id=conversation)
    recorder = CallRecorder(InboxEvidenceSink(inbox), "CA0001", conversation, "inbound", time.monotonic)
    recorder.caller(SPOKEN, "speech", 0.91, b"\x01\x00" * 1600, 0.0, 0.2)
    recorder.caller(DIGITS, "dtmf", None, None, 0.3, 0.4)
    # the Rasa event broker's turns: the words as the `text` payload
    for speaker, text in (("debtor", SPOKEN), ("debtor", DIGITS), ("bot", "Thank you. How can I help?")):
        inbox.submit("turn", {"speaker": speaker, "channel": "voice", "started_at": "t", "ended_at": "t"},
                     conversation_id=conversation, payloads={"text": text.encode()})
    # the bot's outcomes (bot/actions/conversation.py): the hardship note, a link sent to the phone, a third party
    inbox.submit("outcome", {"type": "hardship", "account_id": "A-1", "text": HARDSHIP}, conversation_id=conversation)
    inbox.submit("outcome", {"type": "payment_link", "account_id": "A-1", "amount": "120.50", "to": CALLER,
                             "url": f"https://pay.example/l?to={CALLER}"}, conversation_id=conversation)
    inbox.submit("outcome", {"type": "third_party", "account_id": "A-1",
                             "details": {"speaker": {"name": NAME, "phone_number": CALLER}}},
                 conversation_id=conversation)
    recorder.call(Player(MemoryTransport().send_audio), answered_by="human", end_reason="remote hangup",
                  dtmf=DIGITS + "#", interruptions=0, error=None)
    with EvidenceLog.open(evdir) as log:
        writer = EvidenceWriter(redis_client, log)
        while writer.drain_once(block_ms=50):
            pass
        writer.close()
    return conversation


def test_erasure_leaves_no_personal_value_in_any_file_and_the_log_verifies(tmp_path: Path,
                                                                          redis_client: redis.Redis) -> None:
    data_dir = tmp_path / "var"
    evdir = data_dir / "evidence"
    conversation = write_a_call(redis_client, evdir)
    assert not re.search(r"\d", conversation)  # the conversation id holds no digit of the number

    with EvidenceLog.open(evdir) as log:
        records = log.records_for(conversation)
        # no leaf ever holds a personal value: only the payloads do, until erasure
        segments = b"".join(p.read_bytes() for p in (evdir / "segments").iterdir())
        assert not any(needle in segments for needle in needles().values())
        # payloads are sealed at rest (evidence/store.py): no file holds a value in the clear...
        assert found_in(data_dir) == {}
        # ...and opened, the payloads hold every one (the grep would find them if they were stored in the clear)
        assert set(found_in_payloads(log)) == set(needles())
        # readers still see every value (the sealed ones put back from the `personal` payload)
        call = next(r for r in records if r.kind == "voice_call")
        assert call.body["dtmf"] == DIGITS + "#" and call.body["sender"] == conversation and call.v == 2
        assert PERSONAL_PAYLOAD not in call.payloads and set(call.committed_payloads()) == {
            "caller_wav", "bot_wav", PERSONAL_PAYLOAD}  # readers see the recordings only
        hardship = next(r for r in records if r.body.get("type") == "hardship")
        assert hardship.body["text"] == HARDSHIP and hardship.body["account_id"] == "A-1"
        assert next(r for r in records if r.body.get("type") == "third_party").body["details"]["speaker"] == {
            "name": NAME, "phone_number": CALLER}

        before = export_conversation(log, conversation, tmp_path / "before.zip", user="auditor")
        assert verify_bundle(before)[0] == []  # the sealed values travel in the bundle, and verify there
        assert HARDSHIP.encode() in before.read_bytes()
        before.unlink()

        receipt = erase_conversation(log, conversation, reason="retention period over", by="retention-job",
                                     now=LATER)
        erasure = log.get(receipt.index)
        assert erasure.body["kept_shared"] == [] and erasure.body["personal_left_in"] == []
        after = log.records_for(conversation)
        call = next(r for r in after if r.kind == "voice_call")
        assert call.personal_erased and call.body["dtmf"] == ERASED and call.body["call_id"] == "CA0001"
        hardship = next(r for r in after if r.body.get("type") == "hardship")
        assert hardship.body["text"] == ERASED and hardship.body["type"] == "hardship"  # the fact stays
        bundle = export_conversation(log, conversation, tmp_path / "bundle.zip", user="auditor")

    assert found_in(data_dir) == {}, "personal values left in the data dir after erasure"
    with EvidenceLog.open(evdir, readonly=True) as log:
        assert found_in_payloads(log) == set(), "personal values left in the payloads after erasure"
    rep = verify_directory(evdir)
    assert rep.ok, rep.errors
    sealed = [r for r in after if r.personal is not None]
    assert len(sealed) >= 6 and rep.erased >= len(sealed) + 4  # the personal payloads, texts and audio
    result = CliRunner().invoke(evidence_cli, ["verify", "--dir", str(evdir), "--no-witness"])
    assert result.exit_code == 0, result.output
    assert re.search(r"intact: .* \d+ erased under retention", result.output)
    # the bundle of the erased conversation still verifies offline, and carries none of the values either
    errors, _ = verify_bundle(bundle)
    assert errors == []
    assert not any(needle in bundle.read_bytes() for needle in needles().values())


def test_erasing_a_record_that_predates_sealing_says_what_it_could_not_remove(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    evdir = tmp_path / "evidence"
    with EvidenceLog.open(evdir) as log:
        log.append("conversation", {"pack": "us"}, conversation_id="c-old")
        # as a writer before sealing appended it: the value in the clear, in the leaf
        (old,) = log._enqueue([("outcome", {"type": "hardship", "text": HARDSHIP}, "c-old", {}, [])])
        log._wait_durable(old.index)
        with caplog.at_level(logging.WARNING, "duebot.evidence"):
            receipt = erase_conversation(log, "c-old", reason="retention", by="job", now=LATER)
        assert log.get(receipt.index).body["personal_left_in"] == [old.index]
    assert any("incomplete" in r.getMessage() for r in caplog.records)
    assert verify_directory(evdir).ok


def test_a_payload_name_of_the_seal_is_refused(tmp_path: Path) -> None:
    with EvidenceLog.open(tmp_path / "evidence") as log, pytest.raises(RecordError, match="reserved"):
        log.append("outcome", {"type": "promise"}, {PERSONAL_PAYLOAD: b'{"fields":[]}'}, conversation_id="c")


def test_a_refused_batch_leaves_no_sealed_values_behind(tmp_path: Path) -> None:
    """Payloads are stored before their record: a batch refused whole must not leave the personal values of its
    good records on disk, where no record names them and no erasure would ever find them."""
    evdir = tmp_path / "evidence"
    with EvidenceLog.open(evdir) as log, pytest.raises(RecordError):
        log.append_many([("outcome", {"type": "hardship", "text": HARDSHIP}, None, "c"),
                         ("outcome", {"type": "hardship", "note": "x" * (1 << 24)}, None, "c")])
    assert found_in(evdir) == {}
    assert not [w for w in verify_directory(evdir).warnings if "referenced by no record" in w]  # no orphan either
