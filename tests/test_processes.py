import os
import time

import pytest

from duebot.processes import ServiceFailed, ServiceSpec, start, stop, wait_ready


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); treat it as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_stop_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    # The parent ignores SIGTERM (as kamailio's children do) and forks a grandchild.
    script = f"trap '' TERM; sleep 300 & echo $! > {pidfile}; wait"
    spec = ServiceSpec("group", ["sh", "-c", script], tmp_path / "log", ready=pidfile.exists, ready_timeout=5)
    service = start(spec)
    wait_ready(service)
    child = int(pidfile.read_text())
    assert _alive(child)
    stop(service, grace=0.5)
    time.sleep(0.1)
    assert not _alive(service.pid)
    assert not _alive(child)


def test_wait_ready_reports_an_early_exit_with_its_log(tmp_path):
    spec = ServiceSpec("broken", ["sh", "-c", "echo boom; exit 3"], tmp_path / "broken.log",
                       ready=lambda: False, ready_timeout=5)
    service = start(spec)
    with pytest.raises(ServiceFailed, match="exited with code 3"):
        wait_ready(service)
    assert "boom" in (tmp_path / "broken.log").read_text()
