"""SMS/chat fixtures: the account store with the fixture accounts, the Twilio fake, duebot's app on a real port."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from duebot.accounts.importer import import_csv
from duebot.accounts.store import AccountStore
from duebot.channels.sms.config import SmsSettings
from duebot.demo.twilio_fake import FakeConfig, TwilioFake
from duebot.processes import free_port
from tests.served import ACCOUNTS_CSV

AUTH_TOKEN = "test-auth-token-" + "x" * 16
ACCOUNT_SID = "AC" + "1" * 32
FROM = "+15005550006"
SHARED_KEY = ("webhooks_sharedkey_test", "shared-key-secret")


class ServerThread:
    """A FastAPI app under a real uvicorn on 127.0.0.1 (the fake posts real HTTP webhooks to it)."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def sms_settings(public_url: str, api_base: str, **overrides: object) -> SmsSettings:
    values: dict[str, object] = dict(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=FROM, messaging_service_sid=None,
        public_url=public_url, api_base=api_base, shared_key_id=SHARED_KEY[0], shared_key_secret=SHARED_KEY[1],
        brand="Acme Telecom billing", help_contact="call 800-555-0100", max_segments=4, rate_per_minute=1,
        rate_per_day=3, dedupe_ttl=3600)
    values.update(overrides)
    return SmsSettings(**values)  # type: ignore[arg-type]


def fixture_store(path: Path) -> AccountStore:
    store = AccountStore(f"sqlite:///{path}")
    report = import_csv(ACCOUNTS_CSV, store)
    assert report.created == 5, report
    return store


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("accounts") / "duebot.sqlite3"
    fixture_store(path).engine.dispose()
    return path


@pytest.fixture
def store(tmp_path: Path, template_db: Path) -> AccountStore:
    """A fresh copy of the migrated, imported database (migrating and importing per test costs ~0.5 s)."""
    shutil.copy(template_db, tmp_path / "duebot.sqlite3")
    return AccountStore(f"sqlite:///{tmp_path / 'duebot.sqlite3'}")


@pytest.fixture
def fake() -> Iterator[TwilioFake]:
    with TwilioFake(FakeConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, numbers=(FROM,))) as running:
        yield running
