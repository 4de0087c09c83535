"""Start `duebot serve` in a subprocess for integration tests, and stop it."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from duebot.accounts.store import AccountStore
from duebot.config import Settings
from duebot.evidence.log import EvidenceLog
from tests.conftest import free_port

REPO_MODELS = Settings.from_env().models_dir


class Served:
    def __init__(self, process: subprocess.Popen, data_dir: Path, rasa_port: int) -> None:
        self.process = process
        self.data_dir = data_dir
        self.rasa = f"http://127.0.0.1:{rasa_port}"

    def account_store(self) -> AccountStore:
        return AccountStore(f"sqlite:///{self.data_dir / 'duebot.sqlite3'}")

    def state(self) -> dict:
        return json.loads((self.data_dir / "run" / "serve.json").read_text())

    def say(self, sender: str, text: str, metadata: dict | None = None) -> list[str]:
        """The bot's text replies (custom payloads that follow a text are left out)."""
        body = {"sender": sender, "message": text, **({"metadata": metadata} if metadata else {})}
        reply = httpx.post(f"{self.rasa}/webhooks/rest/webhook", json=body, timeout=30)
        reply.raise_for_status()
        return [message["text"] for message in reply.json() if "text" in message]


def start_serve(tmp_path: Path, extra_env: dict[str, str], prepare=None) -> Served:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(REPO_MODELS)  # the model trained by `make setup`
    if prepare is not None:
        prepare(data_dir)  # e.g. import accounts before the action server opens the store
    rasa_port = free_port()
    env = {
        **os.environ,
        "DUEBOT_DATA_DIR": str(data_dir),
        "DUEBOT_RASA_PORT": str(rasa_port),
        "DUEBOT_ACTIONS_PORT": str(free_port()),
        "DUEBOT_WEB_PORT": str(free_port()),
        "DUEBOT_REDIS_PORT": str(free_port()),
        "DUEBOT_LANGUAGES": "en",  # a Mandarin server costs 1.3 GB and a minute: only the zh tests ask for it
        **extra_env,
    }
    for inherited in ("REDIS_URL", "DUEBOT_DB_URL"):  # the stack's own Redis and database unless a test says
        if inherited not in extra_env:
            env.pop(inherited, None)
    process = subprocess.Popen([sys.executable, "-m", "duebot.cli", "serve"], env=env,
                               stdout=(tmp_path / "serve.out").open("wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    served = Served(process, data_dir, rasa_port)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"duebot serve exited: {(tmp_path / 'serve.out').read_text()}")
        # the line itself, not a traceback that quotes the source printing it
        if any(line.startswith(b"duebot is up:") for line in (tmp_path / "serve.out").read_bytes().splitlines()):
            return served
        time.sleep(0.5)
    pytest.fail("duebot serve did not come up in 240 s")


def stop_serve(served: Served) -> dict:
    state = served.state()
    served.process.send_signal(signal.SIGTERM)
    served.process.wait(timeout=60)
    return state


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


ACCOUNTS_CSV = Path(__file__).parent / "fixtures" / "accounts.csv"


def import_fixture_accounts(data_dir: Path) -> None:
    from duebot.accounts.importer import import_csv
    from duebot.accounts.store import AccountStore

    report = import_csv(ACCOUNTS_CSV, AccountStore(f"sqlite:///{data_dir / 'duebot.sqlite3'}"))
    assert report.created == 5, report


_chat_ids = itertools.count()


class Chat:
    """One conversation through the REST webhook; keeps the transcript so a failing assertion shows it all."""

    def __init__(self, served: Served, account: str, channel: str = "chat") -> None:
        self.served, self.sender = served, f"{account}-{channel}-{next(_chat_ids)}"
        self.metadata = {"account_id": account, "channel": channel}
        self.transcript: list[str] = []

    def __call__(self, text: str) -> str:
        replies = self.served.say(self.sender, text, self.metadata)
        self.transcript += [f"subscriber: {text}", *(f"duebot: {r}" for r in replies)]
        return " ".join(replies)

    def verified(self) -> str:
        self("hello")
        return self("4472")


def wait_for_evidence(served: Served, conversation_id: str, predicate, timeout: float = 30.0) -> list:  # noqa: ANN001
    """The conversation's evidence records once `predicate(records)` holds (the writer drains the inbox)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with EvidenceLog.open(served.data_dir / "evidence", readonly=True) as log:
            records = log.records_for(conversation_id)
        if predicate(records):
            return records
        time.sleep(0.5)
    pytest.fail(f"evidence for {conversation_id} not as expected after {timeout}s")
