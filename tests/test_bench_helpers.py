"""The benchmarks' shared helpers: one percentile and summary (evaluation/_stats.py), one machine description
(evaluation/_machine.py) and one free port (duebot.processes.free_port)."""

from __future__ import annotations

import math
import random
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

from duebot.processes import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
from _machine import describe  # noqa: E402
from _stats import percentile, summary  # noqa: E402


def test_percentile_is_numpys_linear_interpolation() -> None:
    rng = random.Random(17)
    for n in (1, 2, 3, 10, 101):
        values = [rng.uniform(0, 500) for _ in range(n)]
        for q in (0.0, 0.05, 0.5, 0.95, 0.99, 1.0):
            assert percentile(values, q) == pytest.approx(float(np.percentile(values, 100 * q)), abs=1e-9), (n, q)
    assert percentile([4, 1, 3, 2], 0.5) == 2.5  # unsorted input, the median between the two middle values
    assert math.isnan(percentile([], 0.5))
    with pytest.raises(ValueError):
        percentile([1.0], 95)  # a percent where a fraction is expected


def test_summary() -> None:
    figures = summary(iter([3.0, 1.0, 2.0, 10.0]))
    assert figures == {"n": 4, "p50": 2.5, "p95": pytest.approx(8.95), "mean": 4.0, "min": 1.0, "max": 10.0}
    assert summary([])["n"] == 0 and math.isnan(summary([])["p95"])


def test_describe_names_the_machine_and_the_command() -> None:
    machine, command = describe().splitlines()
    assert machine.startswith("machine: ") and " cores, " in machine and "load average" in machine
    assert command.startswith(f"command: {sys.executable}")


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM])
def test_free_port_can_be_bound(kind: int) -> None:
    port = free_port(kind)
    assert 1024 <= port <= 65535
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", port))
