"""The machine a benchmark ran on and the command that ran it, printed with every benchmark's figures.
Latency statistics are in _stats.py; free loopback ports come from duebot.processes.free_port."""

from __future__ import annotations

import os
import platform
import sys


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def machine() -> str:
    """Cores, CPU, Python and the load when asked (the machine is shared: the load says what else ran)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}, "
            f"load average {load:.2f} (shared machine)")


def command() -> str:
    return " ".join([sys.executable, *sys.argv])


def describe() -> str:
    """The two lines every benchmark prints before its figures."""
    return f"machine: {machine()}\ncommand: {command()}"
