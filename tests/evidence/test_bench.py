"""The evaluation benchmark runs (tiny sizes) and reports its figures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "evaluation"))
import bench_evidence  # noqa: E402


def test_bench_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_evidence.main(["--n", "200", "--threads", "8", "--single-n", "20", "--verify-n", "3000",
                                "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "durable appends/s" in out and "verify (fsck) of 3,000 records" in out and "machine:" in out
