"""The console over real components: a real Redis, the SQLite account store, a real evidence log with its single
writer draining the Redis inbox, the duebot web app under uvicorn, a real `duebot campaign worker` process and
headless Chromium (Debian's, through Playwright). Conversations are submitted the way producers submit them."""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from fastapi.testclient import TestClient

from duebot.accounts.store import AccountStore
from duebot.console.context import Console, set_console
from duebot.console.users import Users
from duebot.evidence.inbox import EvidenceInbox, EvidenceWriter
from duebot.evidence.log import EvidenceLog
from duebot.settings import RedisAddress
from tests.campaigns.conftest import midday_zone
from tests.channels.conftest import ServerThread

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORDS = {"ada": "admin-pass-123", "manon": "manager-pass-123", "quinn": "qa-pass-1234", "audrey": "auditor-pass-1"}
ROLES = {"ada": "admin", "manon": "campaign_manager", "quinn": "qa_reviewer", "audrey": "auditor"}
# The subscribers whose conversations QA reviews: their personal data must never show masked.
PEOPLE = {
    "A-1": ("Maria Lopez", "+14155550101", "210.00", "4472"),
    "A-2": ("Wei Zhang", "+14155550102", "580.00", "1188"),
    "A-3": ("John Carter", "+14155550103", "1200.00", "9031"),
}


def accounts_csv(path: Path, extra: int = 27) -> Path:
    zone = midday_zone()
    lines = ["account_id,name,phone,amount,due_date,segment,timezone,pack,line_type,consent_ai_voice,id_last4"]
    for account_id, (name, phone, amount, last4) in PEOPLE.items():
        lines.append(f"{account_id},{name},{phone},{amount},2026-10-01,cash_flow,{zone},us,mobile,true,{last4}")
    for i in range(extra):
        lines.append(f"B-{i},Sub {i},+1415555{2000 + i:04d},{100 + i}.50,2026-10-01,forgot,{zone},us,mobile,true,"
                     f"{1000 + i}")
    # accounts the gate holds back, so the preview has reasons to show: it is night where these live
    night = next(f"Etc/GMT{n:+d}" for n in range(-14, 13)
                 if 1 <= dt.datetime.now(ZoneInfo(f"Etc/GMT{n:+d}")).hour <= 5)
    for i in range(3):
        lines.append(f"N-{i},Night {i},+1415555{3000 + i:04d},75.00,2026-10-01,forgot,{night},us,mobile,true,"
                     f"{3000 + i}")
    path.write_text("\n".join(lines) + "\n")
    return path


def tone_wav(seconds: float = 0.6, hz: float = 440.0) -> bytes:
    """A real 8 kHz mono WAV (the voice pipeline stores the same format)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * n / 8000)))
                               for n in range(int(8000 * seconds))))
    return buf.getvalue()


def stamp(offset: float = 0.0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + offset)) + ".000000Z"


def seed_conversations(inbox: EvidenceInbox) -> None:
    """Three conversations as the channels, Rasa's event broker, the actions and the voice pipeline submit them."""
    def turn(conv: str, speaker: str, text: str, channel: str = "sms", **extra: object) -> None:
        inbox.submit("turn", {"speaker": speaker, "channel": channel, "started_at": stamp(), "ended_at": stamp(),
                              **extra}, conversation_id=conv, payloads={"text": text.encode()})

    # a complete SMS conversation that ends in a promise
    c = "sms:A-1"
    turn(c, "bot", "Hello, this is Acme Telecom. Please reply with the last 4 digits of your ID number.")
    turn(c, "debtor", "4472, this is Maria Lopez", intent="inform", emotion_label="neutral", emotion_score=0.1)
    turn(c, "bot", "Thank you for confirming, Maria Lopez. You owe $210.00 on +14155550101, due by 2026-12-05.",
         legal_elements=["identity_confirmed", "amount", "deadline"])
    turn(c, "debtor", "I can pay 210 on Friday", intent="promise_to_pay", emotion_label="neutral", emotion_score=0.2)
    inbox.submit("outcome", {"type": "promise", "account_id": "A-1", "amount": "210.00", "due_date": "2026-11-27"},
                 conversation_id=c)
    # angry, a dispute, and the deadline never stated (the writer's three-element check flags it)
    c = "sms:A-2"
    turn(c, "bot", "Thank you for confirming, Wei Zhang. Your balance is $580.00.",
         legal_elements=["identity_confirmed"])
    turn(c, "debtor", "This is outrageous, I never used 580 dollars of data!", intent="dispute",
         emotion_label="angry", emotion_score=0.93)
    inbox.submit("outcome", {"type": "dispute", "account_id": "A-2", "case_number": "DSP-1001"}, conversation_id=c)
    # a phone call heard with low ASR confidence, with its audio, ending in an opt-out
    c = "voice:A-3"
    turn(c, "bot", "Am I speaking with John Carter?", channel="voice")
    turn(c, "debtor", "yes speaking, stop calling me", channel="voice", asr_confidence=0.52, intent="opt_out")
    for speaker, text, conf in (("bot", "Am I speaking with John Carter?", None),
                                ("caller", "yes speaking, stop calling me", 0.52)):
        inbox.submit("voice_turn", {"call_id": "call-A-3", "sender": c, "speaker": speaker, "text": text,
                                    "started_at": 0.5, "ended_at": 2.0, "asr_confidence": conf},
                     conversation_id=c, payloads={"audio_wav": tone_wav(hz=300 if speaker == "bot" else 500)})
    # the whole call as voice/recorder.py stores it: each side on its own
    inbox.submit("voice_call", {"call_id": "call-A-3", "sender": c}, conversation_id=c,
                 payloads={"caller_wav": tone_wav(1.2, hz=500), "bot_wav": tone_wav(1.2, hz=300)})
    inbox.submit("outcome", {"type": "opt_out", "account_id": "A-3"}, conversation_id=c)


@dataclass
class Stack:
    url: str
    data_dir: Path
    console: Console
    client: redis.Redis
    log_dir: Path
    campaign_id: str
    env: dict[str, str]


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.2):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s")


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_address: RedisAddress) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("console")
    data_dir = tmp / "var"
    data_dir.mkdir()
    db_url = f"sqlite:///{data_dir / 'duebot.sqlite3'}"
    env = {**os.environ, "REDIS_URL": redis_address.url, "DUEBOT_DB_URL": db_url, "DUEBOT_DATA_DIR": str(data_dir)}
    saved = {k: os.environ.get(k) for k in ("REDIS_URL", "DUEBOT_DB_URL", "DUEBOT_DATA_DIR")}
    os.environ.update({k: env[k] for k in saved})
    client = redis.Redis(host=redis_address.host, port=redis_address.port)
    client.flushdb()
    store = AccountStore(db_url)
    users = Users(store)
    for name, role in ROLES.items():
        users.add(name, role, PASSWORDS[name])
    console = Console(store, client, data_dir, secure_cookies=False)
    imported = console.campaigns.import_file(accounts_csv(tmp / "october.csv"), "demo", "October arrears")

    # the evidence log's single writer, draining the inbox like `duebot evidence writer`
    log = EvidenceLog.open(data_dir / "evidence", checkpoint_interval=1.0)
    writer = EvidenceWriter(client, log, assess_after=1.0)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    seed_conversations(EvidenceInbox(client))
    wait_until(lambda: len([c for c in log.conversations() if any(
        r.kind == "three_elements" for r in log.records_for(c))]) == 3 and log.last_checkpoint
        and log.last_checkpoint.size >= log.size)

    worker = subprocess.Popen([sys.executable, "-m", "duebot.campaigns.cli", "worker", "--concurrency", "2",
                               "--sim-latency", "0.4", "--scheduler-interval", "0.5"], env=env,
                              stdout=(tmp / "worker.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    from duebot.web import create_app

    set_console(console)
    server = ServerThread(create_app())
    try:
        with server:
            yield Stack(server.url, data_dir, console, client, tmp, imported.campaign_id, env)
    finally:
        set_console(None)
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        writer.close()
        thread.join(timeout=5)
        log.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="package")
def browser(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p, tmp_path_factory


class Browser:
    """One logged-in Chromium profile (its own cookies) at a 1366x768 laptop viewport; `locale` is the browser's
    language (its Accept-Language), en-US by default."""

    def __init__(self, playwright, profile: Path, base: str, locale: str | None = None) -> None:  # noqa: ANN001
        self.context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1366, "height": 768}, accept_downloads=True, **({"locale": locale} if locale else {}))
        self.page = self.context.pages[0] if self.context.pages else self.context.new_page()
        self.base = base

    def go(self, path: str):  # noqa: ANN201
        response = self.page.goto(self.base + path)
        return response

    def login(self, user: str, password: str | None = None) -> None:
        self.go("/console/login")
        self.page.fill("#username", user)
        self.page.fill("#password", password or PASSWORDS[user])
        self.press(self.page.locator("main button[type=submit]"))

    def press(self, locator) -> None:  # noqa: ANN001 - a Playwright Locator
        """Click a button that submits a form, and wait for the page the server answers with."""
        with self.page.expect_navigation():
            locator.click()

    def button(self, name: str) -> None:
        self.press(self.page.get_by_role("button", name=name, exact=True))

    def post(self, path: str, form: dict[str, str] | None = None, csrf: bool = True) -> int:
        """A request straight from the page (as a hand-made form or script would send it), not through a button."""
        return self.page.evaluate(
            """async ([url, form, csrf]) => {
                 const headers = {"Content-Type": "application/x-www-form-urlencoded"};
                 const meta = document.querySelector('meta[name="csrf-token"]');
                 if (csrf && meta) headers["X-CSRF-Token"] = meta.content;
                 const r = await fetch(url, {method: "POST", headers, body: new URLSearchParams(form).toString(),
                                             redirect: "manual"});
                 return r.status;
               }""", [path, form or {}, csrf])

    def get_status(self, path: str) -> int:
        return self.page.evaluate("async (url) => (await fetch(url, {redirect: 'manual'})).status", path)

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="package")
def open_browser(browser, stack: Stack) -> Iterator:  # noqa: ANN001
    playwright, factory = browser
    opened: list[Browser] = []

    def make(user: str | None = None, locale: str | None = None) -> Browser:
        b = Browser(playwright, factory.mktemp("chromium"), stack.url, locale)
        opened.append(b)
        if user:
            b.login(user)
        return b

    yield make
    for b in opened:
        b.close()


# ------------------------------------------------------------------------------------ the app without a browser
# (test_hardening.py, test_console_polish.py): the real web app under Starlette's TestClient, a real Redis, the
# SQLite account store and a real evidence log drained by its single writer.

SITE_REDIS_DB = 8  # its own database: the browser tests' stack shares this Redis server (db 0)
SITE_ROLES = {"quinn": "qa_reviewer", "ada": "admin", "audrey": "auditor"}
CONVERSATION = "sms:A-1"


@dataclass
class Site:
    app: object
    console: Console
    log: EvidenceLog
    store: AccountStore
    tmp: Path

    def client(self, address: str = "198.51.100.1") -> TestClient:
        return TestClient(self.app, client=(address, 40000), follow_redirects=False)


@pytest.fixture
def site(tmp_path: Path, redis_address: RedisAddress, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    client = redis.Redis(host=redis_address.host, port=redis_address.port, db=SITE_REDIS_DB)
    client.flushdb()
    url = f"sqlite:///{tmp_path / 'duebot.sqlite3'}"
    data_dir = tmp_path / "var"
    for name, value in {"REDIS_URL": f"redis://{redis_address.host}:{redis_address.port}/{SITE_REDIS_DB}",
                        "DUEBOT_DB_URL": url, "DUEBOT_DATA_DIR": str(data_dir)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DUEBOT_PUBLIC_URL", raising=False)
    store = AccountStore(url)
    for name, role in SITE_ROLES.items():
        Users(store).add(name, role, PASSWORDS[name])
    log = EvidenceLog.open(data_dir / "evidence", checkpoint_interval=1.0)
    writer = EvidenceWriter(client, log, assess_after=3600)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    inbox = EvidenceInbox(client)
    for speaker, text in (("bot", "Thank you, Maria Lopez. You owe $210.00, due by 2026-12-05."),
                          ("debtor", "I will pay on Friday, my number is +14155550101")):
        inbox.submit("turn", {"speaker": speaker, "channel": "sms", "started_at": "2026-11-24T14:00:00Z",
                              "ended_at": "2026-11-24T14:00:01Z"}, conversation_id=CONVERSATION,
                     payloads={"text": text.encode()})
    deadline = time.monotonic() + 20
    while log.size < 2 or log.last_checkpoint is None:
        assert time.monotonic() < deadline, "the evidence writer did not store the seed conversation"
        time.sleep(0.1)
    console = Console(store, client, data_dir, secure_cookies=False)
    from duebot.web import create_app

    set_console(console)
    try:
        yield Site(create_app(), console, log, store, tmp_path)
    finally:
        set_console(None)
        writer.close()
        thread.join(timeout=5)
        log.close()
        client.flushdb()
        client.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf[-_]token" (?:value|content)="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(b: TestClient, user: str, password: str | None = None, origin: str | None = None):  # noqa: ANN201
    csrf = csrf_of(b.get("/console/login").text)
    headers = {"Origin": origin} if origin else {}
    return b.post("/console/login", data={"username": user, "password": password or PASSWORDS[user],
                                          "csrf_token": csrf}, headers=headers)
