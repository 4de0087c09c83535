"""SIGKILL a loaded writer at random moments: no acknowledged record is lost and the log verifies."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from duebot.evidence.fsck import verify_directory
from duebot.evidence.log import EvidenceLog

WRITER = Path(__file__).with_name("crash_writer.py")


@pytest.mark.slow  # four writers killed at random moments, in real time
def test_sigkill_loses_no_acknowledged_record(tmp_path: Path) -> None:
    d = tmp_path / "evidence"
    rng = random.Random(5)
    acked: dict[int, str] = {}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for round_no in range(4):
        proc = subprocess.Popen([sys.executable, str(WRITER), str(d), f"r{round_no}"], stdout=subprocess.PIPE,
                                env=env, text=True)
        time.sleep(0.6 + rng.random() * 1.2)  # includes start-up, then appends under load
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        lines = out.split("\n")[:-1]  # the last piece may be a line cut short by the kill
        for line in lines:
            index, label = line.split(" ", 1)
            acked[int(index)] = label
        assert lines, "writer acknowledged nothing before being killed"
        with EvidenceLog.open(d) as log:  # recovery: truncates a torn tail, rebuilds derived indexes
            for index, label in acked.items():
                assert log.get(index).body["label"] == label, index
        rep = verify_directory(d)
        assert rep.ok, rep.errors[:3]
    assert len(acked) > 100
