"""`duebot models install-vosk`: the archive's sha256 is checked before anything is unpacked."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from duebot.voice.cli import models_app
from duebot.voice.models import ChecksumMismatch, install_vosk


def make_zip(tmp_path: Path) -> tuple[Path, str]:
    archive = tmp_path / "vosk-model-tiny.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("vosk-model-tiny/conf/model.conf", "--sample-frequency=8000\n")
        zf.writestr("vosk-model-tiny/README", "test model\n")
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def test_install_checks_sha256(tmp_path: Path) -> None:
    archive, digest = make_zip(tmp_path)
    with pytest.raises(ChecksumMismatch):
        install_vosk(str(archive), "0" * 64, tmp_path / "models")
    assert not (tmp_path / "models" / "vosk-model-tiny").exists()
    path = install_vosk(str(archive), digest, tmp_path / "models")
    assert (path / "conf" / "model.conf").read_text().startswith("--sample-frequency")


def test_cli_lists_packaged_models_and_installs(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(models_app, ["list"])
    assert listed.exit_code == 0 and "whisper-tiny.en" in listed.output and "joe-medium" in listed.output
    archive, digest = make_zip(tmp_path)
    result = runner.invoke(models_app, ["install-vosk", str(archive), "--sha256", digest, "--dest", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "DUEBOT_VOSK_MODEL=" in result.output
