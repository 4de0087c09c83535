"""Campaign fixtures: a store in tmp, a real Redis (tests/conftest.py), worker processes, subscribers whose
local time is midday (so quiet hours never make a test depend on when it runs)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from duebot.accounts.store import AccountStore
from duebot.campaigns.contactors import SimulatedContactor
from duebot.campaigns.service import Campaigns
from duebot.settings import RedisAddress

SEGMENTS = ("forgot", "cash_flow", "dispute", "malicious", "legacy", "new_business")
FAST = """
version: 1
max_call_attempts: 3
stop_on: STOP_ON
pacing: {voice_calls_per_second: 200, sms_per_second: 500, max_concurrent_calls: 50}
steps:
  sms_reminder: {channel: sms, purpose: reminder}
  ai_call: {channel: voice, purpose: collection}
  second_call: {channel: voice, purpose: collection}
  human_queue: {channel: human, purpose: collection}
segments:
""" + "".join(f"  {s}: {{default: [sms_reminder, ai_call, second_callHUMAN]}}\n" for s in SEGMENTS)


def midday_zone() -> str:
    """An Etc/GMT zone where it is about noon now: far from the 08:00-22:00 quiet-hours edges."""
    offset = 12 - dt.datetime.now(dt.UTC).hour
    if offset < -12:
        offset += 24
    if offset > 14:
        offset -= 24
    return f"Etc/GMT{-offset:+d}"


def write_accounts(path: Path, n: int, zone: str | None = None, start: int = 0) -> Path:
    zone = zone or midday_zone()
    # English conversations on cn accounts (the pack's own default is Mandarin: tests/test_zh_conversation.py)
    lines = ["account_id,name,phone,amount,due_date,segment,timezone,pack,line_type,birth_date,language"]
    for i in range(start, start + n):
        born = ("1999-03-01", "1950-06-01", "")[i % 3]
        lines.append(f"T-{i},Sub {i},+86138{i:08d},{100 + i % 900}.50,2026-10-01,{SEGMENTS[i % 6]},{zone},cn,"
                     f"mobile,{born},en")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def env(tmp_path: Path, redis_address: RedisAddress, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"REDIS_URL": redis_address.url, "DUEBOT_DB_URL": f"sqlite:///{tmp_path / 'duebot.sqlite3'}",
              "DUEBOT_DATA_DIR": str(tmp_path / "var")}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return {**os.environ, **values}


@pytest.fixture
def store(env: dict[str, str]) -> AccountStore:
    return AccountStore(env["DUEBOT_DB_URL"])


@pytest.fixture
def campaigns(store: AccountStore, redis_client: redis.Redis) -> Campaigns:
    return Campaigns(store, redis_client)


@pytest.fixture
def fast_strategy(tmp_path: Path):
    def make(stop_on: str = "[]", human: bool = False) -> str:
        path = tmp_path / f"fast-{abs(hash((stop_on, human)))}.yml"
        path.write_text(FAST.replace("STOP_ON", stop_on).replace("HUMAN", ", human_queue" if human else ""))
        return str(path)
    return make


class Workers:
    """Real `duebot campaign worker` processes, each in its own process group."""

    def __init__(self, env: dict[str, str], args: list[str]) -> None:
        self.env, self.args = env, args
        self.procs: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "duebot.campaigns.cli", "worker", *self.args], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        return proc

    def alive(self) -> list[subprocess.Popen]:
        return [p for p in self.procs if p.poll() is None]

    def stop(self) -> None:
        for p in self.alive():
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture
def workers(env: dict[str, str]) -> Iterator:
    made: list[Workers] = []

    def make(*args: str) -> Workers:
        w = Workers(env, list(args))
        made.append(w)
        return w
    yield make
    for w in made:
        w.stop()


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def ledger(client: redis.Redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in client.hgetall(SimulatedContactor.LEDGER).items()}
