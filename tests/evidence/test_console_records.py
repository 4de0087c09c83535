"""The console shows evidence of any JSON shape as text, never a 500 (issue 18), and its integrity badge checks the
pinned key when one is configured.

Evidence records come from producers outside duebot's control (Rasa's broker, voice workers, anyone with Redis
access): validation only asks for the required fields, so `emotion_score: "x"`, a number where a string belongs
and nested junk all reach the log and must be rendered as what they are."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from duebot.accounts.store import AccountStore
from duebot.console.app import install
from duebot.console.context import Console, set_console
from duebot.console.evidence_view import check_integrity, transcript_view_model
from duebot.console.masking import CATEGORIES, Known, Masker
from duebot.console.sessions import COOKIE
from duebot.console.users import Users
from duebot.evidence.checkpoint import LogKey
from duebot.evidence.log import EvidenceLog

CONV = "sms:junk"
NESTED = {"a": [1, {"b": None, "c": [True, 2.5]}], "phone": "+14155550101"}


def write_junk(directory: Path) -> None:
    with EvidenceLog.open(directory, checkpoint_interval=3600) as log:
        log.append("conversation", {"pack": "us", "channel": 5}, conversation_id=CONV)
        log.append("turn", {"speaker": "debtor", "channel": 5, "started_at": 1700000000, "ended_at": {"at": 1},
                            "emotion_score": "x", "emotion_label": ["angry"], "asr_confidence": "high",
                            "legal_elements": 7, "intent": NESTED, "text": 42}, conversation_id=CONV)
        log.append("turn", {"speaker": "bot", "channel": "sms", "started_at": "2026-01-01T10:00:00.000000Z",
                            "ended_at": None, "emotion_score": True, "asr_confidence": [0.5],
                            "legal_elements": [1, {"x": [2]}, "amount"]}, conversation_id=CONV,
                   payloads={"text": b"Call me on +14155550101"})
        log.append("voice_turn", {"call_id": 9, "speaker": 3, "text": 99, "asr_confidence": "z",
                                  "started_at": "soon", "interrupted": "yes"}, conversation_id=CONV)
        log.append("annotation", {"author": 5, "label": {"l": 1}, "comment": 77, "turn_index": "three"},
                   conversation_id=CONV)
        log.append("access", {"user": ["u"], "purpose": 1}, conversation_id=CONV)
        log.append("outcome", {"type": "promise", "amount": {"v": 1}, "note": [1, 2], "nested": NESTED},
                   conversation_id=CONV)
        log.append("three_elements", {"identity_confirmed": "yes", "amount_stated": 1, "deadline_stated": None,
                                      "flagged_for_qa": "maybe", "missing": 3}, conversation_id=CONV)
        log.checkpoint()


def test_the_view_model_turns_every_malformed_value_into_text(tmp_path: Path) -> None:
    write_junk(tmp_path / "evidence")
    log = EvidenceLog.open(tmp_path / "evidence", readonly=True)
    vm = transcript_view_model(log, log.records_for(CONV), Masker(frozenset(CATEGORIES), Known.of_account(None)))
    first, second = vm["turns"]
    assert first["emotion_score"] == "x" and first["asr"] == "high" and first["channel"] == "5"
    assert first["started_at"] == "1700000000" and first["ended_at"] == '{"at": 1}'
    assert first["legal"] == ["7"] and first["text"] == "42" and first["emotion"] == '["angry"]'
    assert "+14155550101" in first["intent"]
    assert second["emotion_score"] == "true" and second["asr"] == "[0.5]"
    assert second["legal"] == ["1", '{"x": [2]}', "amount"]
    (voice,) = vm["voice"]
    assert voice["speaker"] == "3" and voice["text"] == "99" and voice["asr"] == "z" and voice["interrupted"] is False
    (note,) = vm["annotations"]
    assert note["author"] == "5" and note["label"] == '{"l": 1}' and note["comment"] == "77" and note["turn"] == "three"
    assert vm["assessment"]["identity"] is False and vm["assessment"]["missing"] == ["3"]
    (event,) = [e for e in vm["events"] if e["kind"] == "outcome"]
    assert event["details"]["note"] == "[1, 2]" and event["details"]["amount"] == '{"v": 1}'
    # junk is masked like any text (a QA reviewer sees no phone number, wherever it hides)
    masked = transcript_view_model(log, log.records_for(CONV), Masker(frozenset(), Known.of_account(None)))
    assert "+14155550101" not in masked["turns"][0]["intent"] and "+14155550101" not in masked["turns"][1]["text"]
    (event,) = [e for e in masked["events"] if e["kind"] == "outcome"]
    assert "+14155550101" not in event["details"]["nested"] and event["details"]["amount"] == "[amount]"


@pytest.fixture
def console(tmp_path: Path, redis_client: redis.Redis) -> Iterator[tuple[TestClient, Path]]:
    data_dir = tmp_path / "var"
    write_junk(data_dir / "evidence")
    store = AccountStore(f"sqlite:///{tmp_path / 'duebot.sqlite3'}")
    Users(store).add("quinn", "qa_reviewer", "qa-pass-1234")
    console = Console(store, redis_client, data_dir, secure_cookies=False)
    app = FastAPI()
    install(app)
    set_console(console)
    try:
        client = TestClient(app, raise_server_exceptions=False)
        client.cookies.set(COOKIE, console.sessions.new("quinn").token)
        yield client, data_dir
    finally:
        set_console(None)


def test_the_transcript_page_renders_malformed_records(console: tuple[TestClient, Path]) -> None:
    client, _ = console
    page = client.get("/console/transcript", params={"c": CONV})
    assert page.status_code == 200, page.text[-2000:]
    html = page.text
    assert "Integrity verified: 8 records" in html
    for shown in ("high", "[0.5]", "&#34;at&#34;", "three", "77", "[1, 2]"):
        assert shown in html, shown
    assert "+14155550101" not in html  # the junk is masked like everything else
    listing = client.get("/console/transcripts")
    assert listing.status_code == 200 and CONV in listing.text
    export = client.get("/console/export/transcript", params={"c": CONV})
    assert export.status_code == 200 and "(5): 42" in export.text


def test_the_integrity_badge_checks_the_pinned_key(console: tuple[TestClient, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    client, data_dir = console
    pinned = tmp_path / "pinned.vkey"
    pinned.write_bytes((data_dir / "evidence" / "public.vkey").read_bytes())
    monkeypatch.setenv("DUEBOT_EVIDENCE_TRUSTED_KEY", str(pinned))
    page = client.get("/console/transcript", params={"c": CONV})
    assert page.status_code == 200 and "Integrity verified (pinned key): 8 records" in page.text
    # the log re-keyed by whoever can write it: checkpoint and public.vkey replaced, consistent with each other
    log = EvidenceLog.open(data_dir / "evidence", readonly=True)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forged = LogKey(log.last_checkpoint.origin, Ed25519PrivateKey.generate())
    forged_cp = forged.sign(log.size, log.root())
    object.__setattr__(log, "last_checkpoint", forged_cp)  # what a reader opening the forged files would get
    verdict = check_integrity(log, log.records_for(CONV))
    assert verdict.state == "failed" and "not signed by the pinned key" in verdict.label
    monkeypatch.delenv("DUEBOT_EVIDENCE_TRUSTED_KEY")
    assert check_integrity(log, log.records_for(CONV)).state == "verified"  # without a pin the forgery passes
