"""Export bundles, offline verification (including the stdlib-only script) and the CLI commands."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from duebot.evidence.bundle import verify_bundle
from duebot.evidence.cli import app
from duebot.evidence.log import EvidenceLog

runner = CliRunner()


@pytest.fixture
def bundle(evdir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "conv-1.zip"
    result = runner.invoke(app, ["export", "conv-1", "--out", str(out), "--dir", str(evdir), "--user", "qa1"])
    assert result.exit_code == 0, result.output
    return out


def test_bundle_contents_and_verification(bundle: Path, evdir: Path) -> None:
    names = zipfile.ZipFile(bundle).namelist()
    assert names[:7] == ["README.txt", "transcript.txt", "records.jsonl", "proofs.json", "checkpoint",
                         "public.vkey", "verify_bundle.py"]
    assert sum(n.startswith("payloads/") for n in names) == 5  # 3 texts + 2 audio
    errors, summary = verify_bundle(bundle, (evdir / "public.vkey").read_text())
    assert errors == [] and summary["records"] == 6  # 5 records + the export's own access record
    kinds = [json.loads(line)["kind"] for line in zipfile.ZipFile(bundle).read("records.jsonl").splitlines()]
    assert kinds[-1] == "access"
    transcript = zipfile.ZipFile(bundle).read("transcript.txt").decode()
    assert "$120.50" in transcript and "debtor (voice): OK, I will pay." in transcript


def test_bundle_script_runs_without_duebot(bundle: Path, tmp_path: Path) -> None:
    script = tmp_path / "verify_bundle.py"
    script.write_bytes(zipfile.ZipFile(bundle).read("verify_bundle.py"))
    # -I -S: isolated, no site-packages, so neither duebot nor cryptography can be imported.
    proc = subprocess.run([sys.executable, "-I", "-S", str(script), str(bundle)], capture_output=True,
                          text=True,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 0 and "BUNDLE INTACT" in proc.stdout, proc.stdout + proc.stderr


def test_every_flipped_bundle_byte_is_detected(bundle: Path) -> None:
    original = bundle.read_bytes()
    step = max(1, len(original) // 400)
    for pos in sorted(set(range(0, len(original), step)) | {0, len(original) // 2, len(original) - 1}):
        data = bytearray(original)
        data[pos] ^= 0x01
        bundle.write_bytes(bytes(data))
        errors, _ = verify_bundle(bundle)
        assert errors, pos
    bundle.write_bytes(original)
    assert verify_bundle(bundle)[0] == []


def test_edited_and_rezipped_bundle_is_detected(bundle: Path, tmp_path: Path) -> None:
    src = zipfile.ZipFile(bundle)
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(forged, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "transcript.txt":
                data = data.replace(b"$120.50", b"$12.50")
            out.writestr(info.filename, data)
    errors, _ = verify_bundle(forged)
    assert any("transcript" in e for e in errors)


def test_cli_verify_prove_and_failure(evdir: Path) -> None:
    ok = runner.invoke(app, ["verify", "--dir", str(evdir)])
    assert ok.exit_code == 0 and "intact: 12 records" in ok.output
    proof = runner.invoke(app, ["prove", "3", "--dir", str(evdir)])
    assert proof.exit_code == 0
    out = json.loads(proof.output)
    assert out["index"] == 3 and out["tree_size"] == 12 and len(out["proof"]) == 4 and "checkpoint" in out
    cons = runner.invoke(app, ["consistency", "6", "--dir", str(evdir)])
    assert cons.exit_code == 0 and json.loads(cons.output)["new_size"] == 12
    log = EvidenceLog.open(evdir, readonly=True)
    seg = evdir / "segments" / "0000000000000000.seg"
    data = bytearray(seg.read_bytes())
    data[log.offsets[4] + 12] ^= 0x20
    seg.write_bytes(bytes(data))
    bad = runner.invoke(app, ["verify", "--dir", str(evdir)])
    assert bad.exit_code == 1 and "first bad record: 4" in bad.output


def test_cli_uses_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUEBOT_DATA_DIR", str(tmp_path))
    result = runner.invoke(app, ["checkpoint"])
    assert result.exit_code == 0 and result.output.split("\n")[1] == "0"
    assert (tmp_path / "evidence" / "public.vkey").exists()
    assert runner.invoke(app, ["verify"]).exit_code == 0
