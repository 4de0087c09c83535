"""`duebot demo --short` end to end: the real stack on embedded defaults, a campaign, seven SMS personas, the KPI
report, evidence verified and one bundle exported and verified; no process left behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.rasa("en"), pytest.mark.sip, pytest.mark.timeout(420)]  # the demo places a SIP call too


def _processes_using(data_dir: Path) -> list[str]:
    """Live processes whose command line names the demo's data dir or whose environment points at it (every
    process the demo starts inherits DUEBOT_DATA_DIR)."""
    hits = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmdline = (proc / "cmdline").read_bytes()
            if str(data_dir).encode() in (proc / "environ").read_bytes() + cmdline:
                hits.append(f"{proc.name}: {cmdline.replace(bytes(1), b' ').decode(errors='replace')}")
        except OSError:
            continue
    return hits


def test_demo_short(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DUEBOT_DB_URL", "DUEBOT_DATA_DIR")}
    proc = subprocess.Popen([sys.executable, "-m", "duebot.cli", "demo", "--short", "--data-dir", str(data_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**env, "COLUMNS": "140"},
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=360)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-4000:]
    # the campaign ran to its end and the report has real figures
    assert "campaign completed" in text, text[-4000:]
    accounts = int(re.search(r"│ accounts\s+│\s+(\d+) │", text)[1])  # type: ignore[index]
    attempted = int(re.search(r"│ accounts_attempted\s+│\s+(\d+) │", text)[1])  # type: ignore[index]
    assert accounts == 40 and 0 < attempted <= accounts
    assert re.search(r"│ answer_rate\s+│\s+0\.\d+ │", text) and re.search(r"│ settled_accounts\s+│\s+[1-9]", text)
    for png in ("funnel.png", "outcomes_by_segment.png", "outcomes_over_time.png"):
        assert (data_dir / "report" / png).stat().st_size > 10_000
    # the SMS personas reached their outcomes through the real bot
    for persona, outcome in (("P-PAYS", "payment_link"), ("P-FRIDAY", "promise"), ("P-PLAN", "plan"),
                             ("P-DISPUTE", "dispute"), ("P-WRONG", "wrong_number"), ("P-STOP", "opt_out")):
        assert re.search(rf"{persona}: outcome [^\n]*{outcome}", text), (persona, text[-6000:])
    # evidence intact before and after the export, and the bundle verifies on its own
    assert len(re.findall(r"evidence verify[^:]*: intact: \d+ records", text)) == 2, text[-3000:]
    assert "evidence verify-bundle: BUNDLE INTACT (exit 0)" in text
    assert (data_dir / "sms_P-FRIDAY.zip").stat().st_size > 1000
    # nothing left running
    assert not _processes_using(data_dir), _processes_using(data_dir)
