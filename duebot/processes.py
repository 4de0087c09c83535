"""Child processes in their own process groups, so stopping one stops everything it forked."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from duebot.settings import child_environment


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free right now (TCP, or UDP with socket.SOCK_DGRAM), for a service about to be started.

    The one implementation in the tree (tests and benchmarks import it): bind port 0 through this, not by hand."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServiceSpec:
    name: str
    argv: Sequence[str]
    log_path: Path
    ready: Callable[[], bool]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    ready_timeout: float = 180.0


class ServiceFailed(RuntimeError):
    """A service exited or did not become ready in time."""


@dataclass
class RunningService:
    spec: ServiceSpec
    process: subprocess.Popen
    restarts: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid


def start(spec: ServiceSpec) -> RunningService:
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    log = spec.log_path.open("ab")
    env = child_environment(spec.env)
    process = subprocess.Popen(
        list(spec.argv),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=spec.cwd,
        env=env,
        start_new_session=True,
    )
    log.close()
    return RunningService(spec, process)


def wait_ready(service: RunningService, poll: float = 0.25) -> float:
    """Block until the service reports ready; return the seconds it took."""
    started = time.monotonic()
    deadline = started + service.spec.ready_timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise ServiceFailed(
                f"{service.spec.name} exited with code {service.process.returncode}; "
                f"see {service.spec.log_path}"
            )
        try:
            if service.spec.ready():
                return time.monotonic() - started
        except Exception:  # noqa: BLE001 - any probe failure means "not ready yet"
            pass
        time.sleep(poll)
    raise ServiceFailed(f"{service.spec.name} not ready after {service.spec.ready_timeout:.0f}s; "
                        f"see {service.spec.log_path}")


def stop(service: RunningService, grace: float = 10.0) -> None:
    """SIGTERM the whole process group, then SIGKILL what is left after the grace period."""
    process = service.process
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
