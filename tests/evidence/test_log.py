"""EvidenceLog behaviour: durability API, checkpoints, recovery, fsck tamper detection, retention."""

from __future__ import annotations

import base64
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from duebot.evidence import verifier
from duebot.evidence.checkpoint import Checkpoint
from duebot.evidence.fsck import verify_directory
from duebot.evidence.log import EvidenceLog
from duebot.evidence.merkle import verify_consistency, verify_inclusion
from duebot.evidence.records import RecordError
from duebot.evidence.retention import LegalHoldError, RetentionError, place_hold, release_hold
from duebot.evidence.store import CorruptLog
from duebot.evidence.three_elements import flagged_for_qa, record_three_elements

from .conftest import fill


def test_append_returns_receipt_and_records_are_readable(evdir: Path) -> None:
    log = EvidenceLog.open(evdir, readonly=True)
    assert log.size == 12
    recs = log.records_for("conv-1")
    assert [r.kind for r in recs] == ["conversation", "turn", "turn", "turn", "outcome"]
    turn = recs[1]
    assert turn.body["speaker"] == "bot" and turn.v == 1 and turn.ts.endswith("Z")
    assert log.payload(turn.payloads["text"]["sha256"]) == (b"Thank you for confirming your identity. This is a "
                                                            b"communication from a debt collector.")
    assert b'"ts":"' in turn.data  # the timestamp is inside the hashed bytes
    stamps = [log.get(i).ts for i in range(log.size)]
    assert stamps == sorted(stamps)


def test_validation_rejects_bad_records(tmp_path: Path) -> None:
    with EvidenceLog.open(tmp_path / "e") as log:
        with pytest.raises(RecordError):
            log.append("nonsense", {})
        with pytest.raises(RecordError):
            log.append("turn", {"speaker": "bot"}, conversation_id="c")
        with pytest.raises(RecordError):
            log.append("outcome", {"type": "bribe"}, conversation_id="c")
        with pytest.raises(RecordError):
            log.append("turn", {"speaker": "bot", "channel": "sms", "started_at": "x", "ended_at": "y"})
        receipt = log.append("gate_decision", {"decision": "deny", "conversation_id": "c9"})
        assert log.get(receipt.index).conversation_id == "c9"


def test_proofs_against_checkpoints(evdir: Path) -> None:
    with EvidenceLog.open(evdir) as log:
        first = log.last_checkpoint
        assert first is not None and first.size == 12
        log.append("annotation", {"author": "qa1", "label": "ok"}, conversation_id="conv-1")
        second = log.checkpoint()
        vkey = (evdir / "public.vkey").read_text().strip()
        assert Checkpoint.parse(second.note, vkey).size == 13
        for i in range(second.size):
            proof = log.inclusion_proof(i, second.size)
            assert verify_inclusion(log.leaf(i), i, second.size, proof, second.root)
        assert verify_consistency(6, 13, log.root(6), second.root, log.consistency_proof(6, 13))


def test_checkpoint_is_a_c2sp_signed_note(evdir: Path) -> None:
    note = (evdir / "checkpoint").read_bytes()
    text = note.decode()
    body, sig_line = text.split("\n\n")
    origin, size, root_b64, ext = body.split("\n")
    assert origin.startswith("duebot.evidence/") and size.isdigit() and len(base64.b64decode(root_b64)) == 32
    assert ext.startswith("time ")
    assert sig_line.startswith(f"\u2014 {origin} ") and sig_line.endswith("\n") and sig_line.count("\n") == 1
    vkey = (evdir / "public.vkey").read_text().strip()
    name, kid, pub = verifier.parse_vkey(vkey)
    raw = base64.b64decode(sig_line.split(" ")[-1])
    assert raw[:4] == kid == verifier.hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
    assert verifier._ed25519_verify_pure(pub, (body + "\n").encode(), raw[4:])  # the stdlib-only path
    assert not verifier._ed25519_verify_pure(pub, (body + "\n").encode() + b"x", raw[4:])
    with pytest.raises(ValueError):
        verifier.open_note(note.replace(root_b64.encode(), base64.b64encode(b"\x00" * 32)), vkey)
    # a foreign key's signature is ignored, not accepted: beside the log's own it changes nothing; alone, or forged
    # under the log key's name and id, it opens nothing
    other = Ed25519PrivateKey.generate()
    other_pub = other.public_key().public_bytes_raw()
    signed = (body + "\n").encode()

    def line(signer: str, kid: bytes) -> str:
        return f"\u2014 {signer} {base64.b64encode(kid + other.sign(signed)).decode()}\n"

    foreign = line("someone.else", verifier.key_id("someone.else", other_pub))
    assert verifier.open_note(note + foreign.encode(), vkey) == body + "\n"
    with pytest.raises(ValueError, match="no signature by the trusted key"):
        verifier.open_note(f"{body}\n\n{foreign}".encode(), vkey)
    with pytest.raises(ValueError, match="does not verify"):
        verifier.open_note(f"{body}\n\n{line(name, kid)}".encode(), vkey)
    assert (evdir / "log.key").stat().st_mode & 0o077 == 0


def test_pure_ed25519_matches_cryptography() -> None:
    for n in range(5):
        key = Ed25519PrivateKey.generate()
        pub = key.public_key().public_bytes_raw()
        msg = os.urandom(n * 13)
        sig = key.sign(msg)
        assert verifier._ed25519_verify_pure(pub, msg, sig)
        assert not verifier._ed25519_verify_pure(pub, msg, sig[:-1] + bytes([sig[-1] ^ 1]))


def test_concurrent_appends_group_commit(tmp_path: Path) -> None:
    with EvidenceLog.open(tmp_path / "e") as log:
        got: list[int] = []
        lock = threading.Lock()

        def worker(t: int) -> None:
            for i in range(50):
                r = log.append("annotation", {"author": f"t{t}", "label": str(i)}, conversation_id=f"c{t}")
                with lock:
                    got.append(r.index)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == list(range(800))
    assert verify_directory(tmp_path / "e").ok


def test_reopen_and_segment_roll(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from duebot.evidence import fsck, store
    from duebot.evidence import log as logmod

    for mod in (store, logmod, fsck):
        monkeypatch.setattr(mod, "RECORDS_PER_SEGMENT", 16)
    d = tmp_path / "e"
    with EvidenceLog.open(d) as log:
        for i in range(40):
            log.append("annotation", {"author": "a", "label": str(i)}, conversation_id=f"c{i % 3}")
    assert len(list((d / "segments").iterdir())) == 3
    rep = verify_directory(d)
    assert rep.ok, rep.errors
    with EvidenceLog.open(d) as log:
        assert log.size == 40 and len(log.records_for("c1")) == 13
        log.append("annotation", {"author": "a", "label": "x"}, conversation_id="c1")
    assert verify_directory(d).ok


def test_torn_tail_recovers_to_last_complete_record(tmp_path: Path) -> None:
    d = tmp_path / "e"
    with EvidenceLog.open(d, checkpoint_interval=3600) as log:
        fill(log)
        log.checkpoint()
        log.append("annotation", {"author": "a", "label": "tail"}, conversation_id="conv-1")
    seg = d / "segments" / "0000000000000000.seg"
    whole = seg.read_bytes()
    with open(seg, "ab") as fh:  # a torn, half-written frame after the last good one
        fh.write(whole[-30:-10])
    assert not verify_directory(d).ok
    with EvidenceLog.open(d) as log:
        assert log.size == 7 and log.recovered_tail is not None
    assert verify_directory(d).ok


def test_lock_prevents_two_writers(tmp_path: Path) -> None:
    with EvidenceLog.open(tmp_path / "e"), pytest.raises(RuntimeError):
        EvidenceLog.open(tmp_path / "e")


def flip(path: Path, pos: int) -> None:
    data = bytearray(path.read_bytes())
    data[pos] ^= 0x01
    path.write_bytes(bytes(data))


def positions(n: int) -> list[int]:
    return sorted({0, 1, n // 3, n // 2, 2 * n // 3, n - 2, n - 1})


@pytest.mark.parametrize("name", ["segment", "payload", "leaves.idx", "offsets.idx", "meta.idx", "checkpoint",
                                  "public.vkey"])
def test_single_byte_flip_is_detected(evdir: Path, name: str) -> None:
    assert verify_directory(evdir).ok
    if name == "segment":
        path = evdir / "segments" / "0000000000000000.seg"
    elif name == "payload":
        path = next(p for p in (evdir / "payloads").rglob("*") if p.is_file())
    elif name == "checkpoint":
        path = sorted((evdir / "checkpoints").iterdir())[0]
    else:
        path = evdir / name
    original = path.read_bytes()
    for pos in positions(len(original)):
        flip(path, pos)
        rep = verify_directory(evdir)
        assert not rep.ok, (name, pos)
        path.write_bytes(original)
    assert verify_directory(evdir).ok


def test_every_byte_of_a_segment_is_covered(evdir: Path) -> None:
    path = evdir / "segments" / "0000000000000000.seg"
    original = path.read_bytes()
    for pos in range(0, len(original), 7):
        flip(path, pos)
        assert not verify_directory(evdir, check_payloads=False).ok, pos
        path.write_bytes(original)


def test_verify_names_first_bad_record(evdir: Path) -> None:
    log = EvidenceLog.open(evdir, readonly=True)
    offset = log.offsets[5]
    flip(evdir / "segments" / "0000000000000000.seg", offset + 20)
    rep = verify_directory(evdir)
    assert rep.first_bad_index == 5


def test_truncation_detected_against_last_checkpoint(evdir: Path) -> None:
    with EvidenceLog.open(evdir) as log:
        log.checkpoint()
        cut = log.offsets[9]
    seg = evdir / "segments" / "0000000000000000.seg"
    for name in ("leaves.idx", "offsets.idx"):  # a careful attacker trims the indexes too
        data = (evdir / name).read_bytes()
        (evdir / name).write_bytes(data[: 9 * (32 if name == "leaves.idx" else 8)])
    seg.write_bytes(seg.read_bytes()[:cut])
    rep = verify_directory(evdir)
    assert not rep.ok and rep.first_bad_index == 9
    assert any("truncated" in e for e in rep.errors)
    with pytest.raises(CorruptLog):
        EvidenceLog.open(evdir)


def test_three_elements_and_qa_flag(evdir: Path) -> None:
    with EvidenceLog.open(evdir) as log:
        result, _ = record_three_elements(log, "conv-1")
        assert result.missing == []
        body = result.body()
        assert body["amount"] == "$120.50" and body["deadline"] == "2025-02-01"
        assert {h["element"] for h in body["where"]} == {"identity_confirmed", "amount", "deadline",
                                                         "collector_notice"}
        assert body["required"] == ["identity_confirmed", "amount", "deadline", "collector_notice"]  # us pack
        log.append("conversation", {"pack": "cn"}, conversation_id="conv-3")
        log.append("turn", {"speaker": "bot", "channel": "sms", "started_at": "t", "ended_at": "t"},
                   {"text": "您好，您本期账单欠费 350 元。".encode()}, conversation_id="conv-3")
        result3, _ = record_three_elements(log, "conv-3")
        assert result3.missing == ["identity_confirmed", "deadline", "consequence"]  # cn: the operator's four
        assert flagged_for_qa(log) == ["conv-3"]


@pytest.mark.parametrize("pack,lines,missing", [
    ("cn", ["您的身份已核实。目前欠费金额为210.00元，请于12月8日前缴清。"], ["consequence"]),
    ("cn", ["您的身份已核实。目前欠费金额为210.00元，请于12月8日前缴清。",
            "温馨提示：如逾期仍未缴清，可能会暂停您的通信服务，运营商也可能依法追缴欠费。"], []),
    ("us", ["Thank you, your identity is confirmed. The overdue balance is $230.50, due by 8 December."],
     ["collector_notice"]),
    ("us", ["Thank you, your identity is confirmed. This is a communication from a debt collector. The overdue "
            "balance is $230.50, due by 8 December."], []),
    ("../../etc/passwd.yml", ["Your identity is confirmed. The balance is $230.50, due by 8 December."], []),
])
def test_each_pack_names_the_script_elements_it_requires(tmp_path: Path, pack: str, lines: list[str],
                                                         missing: list[str]) -> None:
    """cn: identity, amount, deadline and the consequence (seed 000 §6.2, §9.2); us: the three and Reg F's notice.
    The pack comes from the conversation's records by name only: anything else gets the court's three."""
    with EvidenceLog.open(tmp_path / "ev") as log:
        log.append("outcome", {"type": "disclosure", "pack": pack}, conversation_id="c")
        for line in lines:
            log.append("turn", {"speaker": "bot", "channel": "chat", "started_at": "t", "ended_at": "t"},
                       {"text": line.encode()}, conversation_id="c")
        result, _ = record_three_elements(log, "c")
        assert result.missing == missing
        assert (flagged_for_qa(log) == ["c"]) is bool(missing)


def test_retention_and_legal_hold(evdir: Path) -> None:
    with EvidenceLog.open(evdir) as log:
        now = datetime.now(UTC)
        with pytest.raises(RetentionError):
            log.erase_payloads("conv-1", reason="retention", by="job", now=now)
        place_hold(log, "conv-1", reason="court case 42", by="legal")
        with pytest.raises(LegalHoldError):
            log.erase_payloads("conv-1", reason="retention", by="job", now=now + timedelta(days=4 * 365))
        release_hold(log, "conv-1", reason="case closed", by="legal")
        with pytest.raises(RetentionError):  # us: 3 years
            log.erase_payloads("conv-1", reason="retention", by="job", now=now + timedelta(days=2 * 366))
        later = now + timedelta(days=3 * 366)
        receipt = log.erase_payloads("conv-1", reason="retention", by="job", now=later)
        body = log.get(receipt.index).body
        unique = log.records_for("conv-1")[1].payloads["audio"]["sha256"]
        assert body["kept_shared"] and unique not in body["erased"]  # conv-2 still holds identical payloads
        assert all(log.payload(d) is None for d in body["erased"]) and log.payload(unique) is not None
        # cn conversation: 2 years suffices; payloads shared with conv-1 were kept for conv-2 and now go too.
        log.erase_payloads("conv-2", reason="retention", by="job", now=now + timedelta(days=2 * 366))
    rep = verify_directory(evdir)
    assert rep.ok, rep.errors
    assert rep.payloads == 0


def test_missing_payload_without_erasure_is_an_error(evdir: Path) -> None:
    victim = next(p for p in (evdir / "payloads").rglob("*") if p.is_file())
    victim.unlink()
    assert not verify_directory(evdir).ok


def test_records_are_canonical_json(evdir: Path) -> None:
    log = EvidenceLog.open(evdir, readonly=True)
    for i in range(log.size):
        data = log.read(i)
        again = json.dumps(json.loads(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert again.encode() == data
