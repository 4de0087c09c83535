"""Keys and witnesses (issue 18): what can write the log must not be able to rewrite history unnoticed.

The attacks: rewrite a record and re-sign every checkpoint (with a key of the attacker's own placed beside the log,
or with the log's own key when it sits beside the log), truncate the log back to an earlier checkpoint, flip a bit
of the `origin` file. Plain `verify` trusts public.vkey beside the log and so passes the re-signed forgeries (shown
below, so the tests say what the pin and the witness add); `verify --trusted-key` and the witness catch them."""

from __future__ import annotations

import os
import stat
from array import array
from pathlib import Path

import pytest
from typer.testing import CliRunner

from duebot.evidence import store
from duebot.evidence.checkpoint import LogKey, checkpoint_name, list_checkpoints
from duebot.evidence.cli import app
from duebot.evidence.fsck import verify_directory
from duebot.evidence.log import EvidenceLog
from duebot.evidence.merkle import leaf_hash, tree_from_leaf_hashes
from duebot.evidence.store import CorruptLog
from duebot.evidence.witness import DirectoryWitness, WitnessRefused
from tests.evidence.conftest import fill

runner = CliRunner()
QUIET = 3600.0  # no background checkpoints: the checkpoints below are exactly the ones the tests sign


@pytest.fixture
def deployment(tmp_path: Path) -> dict[str, Path]:
    """A log with its key outside the data directory and a witness; two checkpoints (6 and 12 records)."""
    paths = {"dir": tmp_path / "var" / "evidence", "key": tmp_path / "keys" / "evidence.key",
             "witness": tmp_path / "witness", "pinned": tmp_path / "pinned.vkey"}
    with EvidenceLog.open(paths["dir"], key_file=paths["key"], witness=paths["witness"],
                          checkpoint_interval=QUIET) as log:
        fill(log)
        log.checkpoint()
        fill(log, "conv-2")
    # the operator keeps a copy of the public key as first exported (DUEBOT_EVIDENCE_TRUSTED_KEY)
    paths["pinned"].write_bytes((paths["dir"] / "public.vkey").read_bytes())
    return paths


def rewrite_record(d: Path, index: int, old: bytes, new: bytes) -> None:
    """Change a record in place as an attacker with write access would: a valid frame, a consistent index."""
    assert len(old) == len(new)
    seg = store.segment_path(d, 0)
    buf = bytearray(seg.read_bytes())
    offset = array("Q", (d / "offsets.idx").read_bytes())[index]
    length, _ = store.FRAME.unpack_from(buf, offset)
    data = bytes(buf[offset + 8 : offset + 8 + length])
    assert old in data
    forged = data.replace(old, new)
    buf[offset : offset + 8 + length] = store.frame(forged)
    seg.write_bytes(bytes(buf))
    leaves = bytearray((d / "leaves.idx").read_bytes())
    leaves[index * 32 : index * 32 + 32] = leaf_hash(forged)
    (d / "leaves.idx").write_bytes(bytes(leaves))


def resign(d: Path, key: LogKey) -> None:
    """Sign every stored checkpoint again over the (forged) tree, and `checkpoint` with it."""
    tree = tree_from_leaf_hashes((d / "leaves.idx").read_bytes())
    note = b""
    for path in list_checkpoints(d):
        note = key.sign(int(path.name), tree.root(int(path.name))).note
        path.write_bytes(note)
    (d / "checkpoint").write_bytes(note)


def verify(paths: dict[str, Path], *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["verify", "--dir", str(paths["dir"]), *extra])
    return result.exit_code, result.output


def test_a_good_log_passes_against_the_pinned_key_and_the_witness(deployment: dict[str, Path]) -> None:
    rep = verify_directory(deployment["dir"], trusted_vkey=deployment["pinned"].read_text(),
                           witness_dir=deployment["witness"])
    assert rep.ok, rep.errors
    assert rep.key_pinned and rep.size == 12 and rep.checkpoints == 2
    assert "log extends the witnessed checkpoint of 12 records" in rep.witness
    code, out = verify(deployment, "--trusted-key", str(deployment["pinned"]), "--witness-dir",
                       str(deployment["witness"]))
    assert code == 0, out
    assert f"key: pinned public key {deployment['pinned']}" in out
    assert "consistency proof to 12 verified" in out and "intact: 12 records" in out
    # the witness holds both checkpoints, each accepted after a consistency proof from the one before
    origin = (deployment["dir"] / "origin").read_text().strip()
    assert DirectoryWitness(deployment["witness"]).sizes(origin) == [6, 12]


def test_verify_says_which_key_it_used_and_that_there_is_no_witness(deployment: dict[str, Path]) -> None:
    code, out = verify(deployment)
    assert code == 0, out
    assert "key: public.vkey beside the log" in out and "NOT pinned" in out
    assert "witness: none configured (DUEBOT_EVIDENCE_WITNESS_DIR)" in out
    env = {"DUEBOT_EVIDENCE_TRUSTED_KEY": str(deployment["pinned"]),
           "DUEBOT_EVIDENCE_WITNESS_DIR": str(deployment["witness"])}
    result = runner.invoke(app, ["verify", "--dir", str(deployment["dir"])], env=env)  # the settings' defaults
    assert result.exit_code == 0 and "key: pinned public key" in result.output
    assert "log extends the witnessed checkpoint" in result.output


def test_the_signing_key_lives_outside_the_log_mode_0600(deployment: dict[str, Path], tmp_path: Path) -> None:
    assert not (deployment["dir"] / "log.key").exists()
    assert stat.S_IMODE(deployment["key"].stat().st_mode) == 0o600
    # a key left readable (a careless restore) is tightened when the writer next opens the log
    os.chmod(deployment["key"], 0o644)
    EvidenceLog.open(deployment["dir"], key_file=deployment["key"], checkpoint_interval=QUIET).close()
    assert stat.S_IMODE(deployment["key"].stat().st_mode) == 0o600
    # without the key the log is refused: never a silent new identity
    with pytest.raises(CorruptLog, match="signing key .* is missing"):
        EvidenceLog.open(deployment["dir"], checkpoint_interval=QUIET)
    assert not (deployment["dir"] / "log.key").exists()
    # a log whose key sits beside it has the key moved out once DUEBOT_EVIDENCE_KEY_FILE is set
    old = tmp_path / "old"
    with EvidenceLog.open(old, checkpoint_interval=QUIET) as log:
        fill(log)
    assert stat.S_IMODE((old / "log.key").stat().st_mode) == 0o600
    assert any("sits beside the log" in w for w in verify_directory(old).warnings)
    pem = (old / "log.key").read_bytes()
    with EvidenceLog.open(old, key_file=tmp_path / "keys" / "old.key", checkpoint_interval=QUIET) as log:
        fill(log, "conv-3")
    assert not (old / "log.key").exists() and (tmp_path / "keys" / "old.key").read_bytes() == pem
    assert verify_directory(old).ok


def test_rewritten_history_resigned_with_a_key_beside_the_log(deployment: dict[str, Path]) -> None:
    """The key is outside the data directory, so the attacker signs with a key of their own and replaces
    public.vkey (and log.key) beside the log; same origin, every checkpoint re-signed."""
    d = deployment["dir"]
    rewrite_record(d, 4, b'"type":"promise"', b'"type":"dispute"')  # conv-1's settlement becomes a dispute
    origin = (d / "origin").read_text().strip()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    forged_key = LogKey(origin, private)
    (d / "log.key").write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    os.chmod(d / "log.key", 0o600)
    (d / "public.vkey").write_text(forged_key.vkey + "\n")
    resign(d, forged_key)

    assert verify_directory(d).ok  # what the log says about itself is all consistent: the hole being closed
    code, out = verify(deployment, "--trusted-key", str(deployment["pinned"]))
    assert code == 1 and "public.vkey beside the log" in out and "is not the pinned key" in out
    assert "checkpoint 0000000000000006: checkpoint signature does not verify" in out or \
        "no signature by the trusted key" in out
    code, out = verify(deployment, "--witness-dir", str(deployment["witness"]))
    assert code == 1 and "trusts another key" in out and "history rewritten in records 0 to 5" in out
    assert "NOT INTACT: first bad record: 0" in out
    # the writer will not extend it either
    with pytest.raises(CorruptLog, match="refused"):
        EvidenceLog.open(d, key_file=d / "log.key", witness=deployment["witness"], checkpoint_interval=QUIET)


def test_rewritten_history_resigned_with_the_logs_own_key(tmp_path: Path) -> None:
    """The default layout (key beside the log): the attacker re-signs with the real key. A pinned public key
    cannot tell (the signature is genuine); the witness, which saw the original roots, does."""
    d, witness = tmp_path / "evidence", tmp_path / "witness"
    with EvidenceLog.open(d, witness=witness, checkpoint_interval=QUIET) as log:
        fill(log)
        log.checkpoint()
        fill(log, "conv-2")
        log.checkpoint()
        fill(log, "conv-3")
    pinned = (d / "public.vkey").read_text()
    rewrite_record(d, 10, b'"type":"promise"', b'"type":"dispute"')  # conv-2's outcome, in the 2nd checkpoint
    resign(d, LogKey.load_or_create(d))

    assert verify_directory(d).ok
    assert verify_directory(d, trusted_vkey=pinned).ok  # same key: a pin alone cannot see this
    rep = verify_directory(d, trusted_vkey=pinned, witness_dir=witness)
    assert not rep.ok and rep.first_bad_index == 6
    assert any("does not extend the checkpoint of 18 records the witness accepted" in e
               and "history rewritten in records 6 to 11" in e for e in rep.errors), rep.errors
    assert "INCONSISTENT" in rep.witness
    with pytest.raises(CorruptLog, match="INCONSISTENT"):
        EvidenceLog.open(d, witness=witness, checkpoint_interval=QUIET)


def test_every_bit_of_the_origin_file_is_covered(deployment: dict[str, Path]) -> None:
    d = deployment["dir"]
    original = (d / "origin").read_bytes()
    assert verify_directory(d, check_payloads=False).ok
    for pos in range(len(original)):
        for bit in range(8):
            flipped = bytearray(original)
            flipped[pos] ^= 1 << bit
            (d / "origin").write_bytes(bytes(flipped))
            rep = verify_directory(d, check_payloads=False)
            assert not rep.ok and any("origin" in e for e in rep.errors), (pos, bit)
    (d / "origin").write_bytes(original[:-1])  # and a lost newline, a missing file
    assert not verify_directory(d, check_payloads=False).ok
    (d / "origin").unlink()
    assert not verify_directory(d, check_payloads=False).ok
    (d / "origin").write_bytes(original.replace(b"duebot", b"duebou"))
    with pytest.raises(CorruptLog, match="origin"):  # the writer refuses to sign under a damaged name
        EvidenceLog.open(d, key_file=deployment["key"], checkpoint_interval=QUIET)
    (d / "origin").write_bytes(original)
    assert verify_directory(d, trusted_vkey=deployment["pinned"].read_text(), witness_dir=deployment["witness"]).ok


def test_a_truncated_log_fails_against_the_witnessed_checkpoint(deployment: dict[str, Path]) -> None:
    """Known answers: the log cut back to its first checkpoint (6 of 12 records), the later checkpoint removed,
    so the log agrees with itself; the witness saw 12."""
    d = deployment["dir"]
    offsets = array("Q", (d / "offsets.idx").read_bytes())
    seg = store.segment_path(d, 0)
    seg.write_bytes(seg.read_bytes()[: offsets[6]])
    (d / "leaves.idx").write_bytes((d / "leaves.idx").read_bytes()[: 6 * 32])
    (d / "offsets.idx").write_bytes((d / "offsets.idx").read_bytes()[: 6 * 8])
    meta = [line for line in (d / "meta.idx").read_bytes().splitlines(keepends=True) if int(line.split(b"\t")[0]) < 6]
    (d / "meta.idx").write_bytes(b"".join(meta))
    (d / "checkpoints" / checkpoint_name(12)).unlink()
    (d / "checkpoint").write_bytes((d / "checkpoints" / checkpoint_name(6)).read_bytes())

    assert verify_directory(d).ok and verify_directory(d, trusted_vkey=deployment["pinned"].read_text()).ok
    rep = verify_directory(d, witness_dir=deployment["witness"])
    assert not rep.ok and rep.first_bad_index == 6
    assert "record 6: log truncated - the witness saw 12 records" in rep.errors[0]
    code, out = verify(deployment, "--witness-dir", str(deployment["witness"]))
    assert code == 1 and "SHORTER than the witnessed checkpoint of 12 records" in out
    with pytest.raises(CorruptLog, match="truncated or replaced"):
        EvidenceLog.open(d, key_file=deployment["key"], witness=deployment["witness"], checkpoint_interval=QUIET)


def test_the_witness_checks_before_it_keeps(tmp_path: Path) -> None:
    """tlog-witness add-checkpoint, refusal by refusal; accepted checkpoints are files that are never rewritten."""
    d = tmp_path / "evidence"
    witness = DirectoryWitness(tmp_path / "witness")
    with EvidenceLog.open(d, checkpoint_interval=QUIET) as log:
        fill(log)
        cp6 = log.checkpoint()
        fill(log, "conv-2")
        cp12 = log.checkpoint()
        proof = log.consistency_proof(6, 12)
        vkey = log.vkey
    stranger = LogKey(cp6.origin, __import__(
        "cryptography.hazmat.primitives.asymmetric.ed25519", fromlist=["x"]).Ed25519PrivateKey.generate())
    assert witness.add_checkpoint(0, [], cp6.note, vkey).size == 6  # trust on first use of the origin's key
    state = witness.state_dir(cp6.origin)
    assert (state / "log.vkey").read_text().strip() == vkey
    refusals = [
        (lambda: witness.add_checkpoint(6, proof, stranger.sign(12, cp12.root).note, stranger.vkey), 403),
        (lambda: witness.add_checkpoint(13, [], cp12.note, vkey), 400),
        (lambda: witness.add_checkpoint(0, [], cp12.note, vkey), 409),  # stale: the witness is at 6
        (lambda: witness.add_checkpoint(6, proof[:-1], cp12.note, vkey), 422),
        (lambda: witness.add_checkpoint(6, proof, LogKey.load_or_create(d).sign(12, b"\0" * 32).note, vkey), 422),
        (lambda: witness.add_checkpoint(6, [], LogKey.load_or_create(d).sign(6, b"\1" * 32).note, vkey), 409),
    ]
    for attempt, code in refusals:
        with pytest.raises(WitnessRefused) as refused:
            attempt()
        assert refused.value.code == code, refused.value
    assert witness.sizes(cp6.origin) == [6]
    before = (state / checkpoint_name(6)).read_bytes()
    assert witness.add_checkpoint(6, proof, cp12.note, vkey).size == 12
    assert witness.add_checkpoint(12, [], cp12.note, vkey).size == 12  # the same checkpoint again: nothing new
    assert witness.sizes(cp6.origin) == [6, 12] and (state / checkpoint_name(6)).read_bytes() == before
    assert stat.S_IMODE((state / checkpoint_name(12)).stat().st_mode) == 0o444
    assert sorted(p.name for p in state.iterdir()) == [checkpoint_name(6), checkpoint_name(12), "log.vkey", "origin"]


def test_an_unreachable_witness_does_not_stop_the_log_and_is_caught_up(tmp_path: Path) -> None:
    d, w = tmp_path / "evidence", tmp_path / "witness"
    w.write_text("a file where the witness directory should be")
    with EvidenceLog.open(d, witness=w, checkpoint_interval=QUIET) as log:
        fill(log)
        log.checkpoint()
        fill(log, "conv-2")
    assert log.size == 12 and log.witness_error and "unavailable for checkpoint 12" in log.witness_error
    rep = verify_directory(d, witness_dir=w)
    assert not rep.ok and "unreadable or damaged" in rep.errors[0]
    w.unlink()
    with EvidenceLog.open(d, witness=w, checkpoint_interval=QUIET) as log:  # brought up to date when opened
        assert log.witnessed is not None and log.witnessed.size == 12 and log.witness_error is None
    assert verify_directory(d, witness_dir=w).ok


def test_a_log_replaced_wholesale_under_the_same_key_is_refused(deployment: dict[str, Path]) -> None:
    """Everything but the identity removed (records, indexes, checkpoints): the log agrees with itself; the
    witness remembers 12 records, so neither `verify` nor the writer accepts the empty log."""
    d = deployment["dir"]
    for name in ("segments", "checkpoints"):
        for path in (d / name).iterdir():
            path.unlink()
    for name in ("leaves.idx", "offsets.idx", "meta.idx", "checkpoint"):
        (d / name).unlink()
    store.durable_write(store.segment_path(d, 0), store.MAGIC)
    assert verify_directory(d).ok
    rep = verify_directory(d, witness_dir=deployment["witness"])
    assert not rep.ok and "log truncated - the witness saw 12 records" in rep.errors[0]
    with pytest.raises(CorruptLog, match="no signed checkpoint: it was replaced"):
        EvidenceLog.open(d, key_file=deployment["key"], witness=deployment["witness"], checkpoint_interval=QUIET)
