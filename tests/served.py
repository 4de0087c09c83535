"""`duebot serve` for integration tests: the real stack (Redis, evidence writer, action server, emotion service,
Rasa, web service, campaign worker) in a subprocess, on free loopback ports, in a scratch data directory.

Every test that needs the stack gets it from one fixture factory, `served_fixture`, with its options:

    served = served_fixture(env={"DUEBOT_EVIDENCE_ASSESS_AFTER": "2"})          # a module-scoped fixture

tests/conftest.py marks every test that uses such a fixture `rasa` with the fixture's languages, so it is left out
of the fast tier and skipped (with the reason) where Rasa's environment or a trained model is missing.
See docs/testing.md.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from duebot.accounts.store import AccountStore
from duebot.evidence.log import EvidenceLog
from duebot.processes import free_port
from duebot.secrets import account_signature
from duebot.settings import load_settings

REPO_MODELS = load_settings().models_dir
ACCOUNTS_CSV = Path(__file__).parent / "fixtures" / "accounts.csv"
READY_TIMEOUT = 240.0
# Inherited from the developer's shell, these would point the stack at their Redis or database: a test says.
INHERITED = ("REDIS_URL", "DUEBOT_DB_URL")


class Served:
    """A running `duebot serve`: its data directory, its Rasa server(s), and a way to talk to the bot."""

    def __init__(self, process: subprocess.Popen, data_dir: Path, output: Path, rasa_urls: Mapping[str, str]) -> None:
        self.process = process
        self.data_dir = data_dir
        self.output = output  # serve's own stdout and stderr
        self.rasa_urls = dict(rasa_urls)  # language -> Rasa server URL
        self.rasa = self.rasa_urls["en"]

    def account_store(self) -> AccountStore:
        return AccountStore(f"sqlite:///{self.data_dir / 'duebot.sqlite3'}")

    def state(self) -> dict:
        """run/serve.json: each service's pid, url, log and restarts, as the supervisor last wrote it."""
        return json.loads((self.data_dir / "run" / "serve.json").read_text())

    def rasa_api(self, method: str, path: str, language: str = "en", **kwargs) -> httpx.Response:  # noqa: ANN003
        """Rasa's HTTP API with the token the stack generated (it answers 401 without it)."""
        token = (self.data_dir / "secrets" / "rasa_token").read_text().strip()
        return httpx.request(method, f"{self.rasa_urls[language]}{path}", params={"token": token},
                             timeout=kwargs.pop("timeout", 30), **kwargs)

    def say(self, sender: str, text: str, metadata: dict | None = None) -> list[str]:
        """The bot's text replies (custom payloads that follow a text are left out). An account in the metadata
        is signed as a duebot channel signs it (the session shares the stacks' channel key: tests/conftest.py)."""
        if metadata and metadata.get("account_id"):
            metadata = {**metadata, "account_sig": account_signature(sender, str(metadata["account_id"]))}
        body = {"sender": sender, "message": text, **({"metadata": metadata} if metadata else {})}
        reply = httpx.post(f"{self.rasa}/webhooks/rest/webhook", json=body, timeout=30)
        reply.raise_for_status()
        return [message["text"] for message in reply.json() if "text" in message]

    def stop(self) -> dict:
        """SIGTERM serve as an operator's Ctrl-C would; return the service state it had just before."""
        state = self.state()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        return state


def _with_english(languages: Sequence[str]) -> tuple[str, ...]:
    """serve always starts the English server; the others as asked."""
    return ("en", *(language for language in languages if language != "en"))


def import_fixture_accounts(data_dir: Path) -> None:
    from duebot.accounts.importer import import_csv

    report = import_csv(ACCOUNTS_CSV, AccountStore(f"sqlite:///{data_dir / 'duebot.sqlite3'}"))
    assert report.created == 5, report


def start_serve(tmp_path: Path, *, languages: Sequence[str] = ("en",), contactors: Sequence[str] = (),
                env: Mapping[str, str] | None = None, redis_url: str | None = None,
                accounts: Callable[[Path], None] | None = import_fixture_accounts) -> Served:
    """Start `duebot serve` in tmp_path and wait until it says it is up (the fixtures below stop it)."""
    languages = _with_english(languages)
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(REPO_MODELS)  # the models trained by `make setup`
    if accounts is not None:
        accounts(data_dir)  # before the action server opens the store
    ports = {language: free_port() for language in languages}
    child = {key: value for key, value in os.environ.items() if key not in INHERITED}
    child.update({
        "DUEBOT_DATA_DIR": str(data_dir),
        "DUEBOT_RASA_PORT": str(ports["en"]),
        **({"DUEBOT_RASA_ZH_PORT": str(ports["zh"])} if "zh" in ports else {}),
        "DUEBOT_ACTIONS_PORT": str(free_port()),
        "DUEBOT_WEB_PORT": str(free_port()),
        "DUEBOT_REDIS_PORT": str(free_port()),
        "DUEBOT_LANGUAGES": ",".join(languages),  # a Mandarin server costs 1.3 GB and a minute: only zh tests ask
        "DUEBOT_CAMPAIGN_CONTACTORS": ",".join(contactors),
        **({"REDIS_URL": redis_url} if redis_url else {}),
        **(env or {}),
    })
    output = tmp_path / "serve.out"
    process = subprocess.Popen([sys.executable, "-m", "duebot.cli", "serve"], env=child,
                               stdout=output.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    served = Served(process, data_dir, output, {lang: f"http://127.0.0.1:{port}" for lang, port in ports.items()})
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"duebot serve exited: {output.read_text()}")
        # the line itself, not a traceback that quotes the source printing it
        if any(line.startswith(b"duebot is up:") for line in output.read_bytes().splitlines()):
            for language in languages:  # serve skips a language without its model: a test that asked fails here
                if language != "en" and f"rasa-{language}" not in served.state():
                    _stop_if_running(served)
                    pytest.fail(f"duebot serve did not start the {language} Rasa server: {output.read_text()}")
            return served
        time.sleep(0.5)
    _stop_if_running(served)
    pytest.fail(f"duebot serve did not come up in {READY_TIMEOUT:.0f} s: {output.read_text()[-3000:]}")


def _stop_if_running(served: Served) -> None:
    """Stop serve unless it already exited (a test may stop it itself, to look at what it leaves behind)."""
    if served.process.poll() is None:
        served.stop()


@contextmanager
def serving(tmp_path: Path, **options) -> Iterator[Served]:  # noqa: ANN003 - start_serve's keywords
    served = start_serve(tmp_path, **options)
    try:
        yield served
    finally:
        _stop_if_running(served)


def served_fixture(*, languages: Sequence[str] = ("en",), contactors: Sequence[str] = (),
                   env: Mapping[str, str] | None = None, test_redis: bool = True,
                   accounts: Callable[[Path], None] | None = import_fixture_accounts,
                   scope: str = "module"):  # noqa: ANN201 - a pytest fixture
    """A fixture that runs `duebot serve` for the tests that ask for it by the name it is assigned to.

    languages   the Rasa servers to start (DUEBOT_LANGUAGES; "en" always): ("en", "zh") adds the Mandarin one
    contactors  the campaign worker's contactors (DUEBOT_CAMPAIGN_CONTACTORS), e.g. ("sms=twilio_sms",)
    env         any other environment of the stack, e.g. {"DUEBOT_EVIDENCE_ASSESS_AFTER": "2"}
    test_redis  True: the session's test Redis (`redis_address`); False: serve's own embedded redis-server
    accounts    fills the data directory before the stack starts (default: the five fixture accounts), or None
    scope       pytest scope: "module" shares one stack across a module's tests; "function" gives each its own
    """
    languages = _with_english(languages)

    def fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
        redis_url = request.getfixturevalue("redis_address").url if test_redis else None
        with serving(tmp_path_factory.mktemp("served"), languages=languages, contactors=contactors, env=env,
                     redis_url=redis_url, accounts=accounts) as served:
            yield served

    fixture.rasa_languages = languages  # read by tests/conftest.py: the `rasa` marker and its skip
    return pytest.fixture(scope=scope)(fixture)


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


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
