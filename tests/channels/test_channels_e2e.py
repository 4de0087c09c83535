"""SMS and web chat through the real stack: `duebot serve` (Rasa, action server, Redis, evidence writer),
the real twilio client against the Twilio fake, and real headless Chromium for the chat page."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis

from duebot.accounts.store import AccountStore
from duebot.channels.chat import webchat
from duebot.channels.rasa_client import RasaClient
from duebot.channels.sms import webhook as twilio_sms
from duebot.channels.sms.sender import SmsSender, twilio_client
from duebot.demo.twilio_fake import FakeConfig, TwilioFake
from duebot.evidence.inbox import EvidenceInbox
from duebot.policies.audit import JsonlAuditSink
from duebot.policies.reserve import LiveGate
from duebot.web import create_app
from tests.channels.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM, ServerThread, sms_settings
from tests.served import Served, served_fixture, wait_for_evidence

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Stack:
    def __init__(self, served: Served, server: ServerThread, fake: TwilioFake, sender: SmsSender,
                 store: AccountStore) -> None:
        self.served, self.server, self.fake, self.sender, self.store = served, server, fake, sender, store


served = served_fixture()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_address, served: Served) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("channels-e2e")
    client = redis.Redis(host=redis_address.host, port=redis_address.port)
    store = AccountStore(f"sqlite:///{served.data_dir / 'duebot.sqlite3'}")  # the action server's store
    app = create_app()
    app.include_router(twilio_sms.router)
    app.include_router(webchat.router)
    server = ServerThread(app)
    with TwilioFake(FakeConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, numbers=(FROM,))) as fake:
        settings = sms_settings(server.url, fake.url)
        channel = twilio_sms.SmsChannel(settings, store, client, RasaClient(served.rasa), EvidenceInbox(client))
        chat = webchat.ChatChannel(RasaClient(served.rasa), client)
        app.dependency_overrides[twilio_sms.get_channel] = lambda: channel
        app.dependency_overrides[webchat.get_chat] = lambda: chat
        noon = dt.datetime.now(dt.UTC).replace(hour=19, minute=0, second=0, microsecond=0).timestamp()
        gate = LiveGate(client, "us", sink=JsonlAuditSink(tmp / "gate.jsonl"), prefix=f"e2e:{time.time_ns()}")
        sender = SmsSender(settings, gate, store, twilio_client(settings), client, EvidenceInbox(client),
                           clock=lambda: noon)
        with server:
            yield Stack(served, server, fake, sender, store)


def _friday(zone: str) -> dt.date:
    today = dt.datetime.now(ZoneInfo(zone)).date()
    return today + dt.timedelta(days=(4 - today.weekday()) % 7 or 7)


def test_sms_from_reminder_to_promise_to_pay(stack: Stack) -> None:
    reminder = stack.sender.send("A-1", "Acme Telecom: a reminder about your account. Reply to this text to talk "
                                        "with our assistant.")
    assert reminder.sent, reminder
    url = f"{stack.server.url}/twilio/sms"
    transcript: list[str] = []

    def text(body: str) -> str:
        status, reply, _ = stack.fake.inbound_sms(url, "+14155550101", body)
        assert status == 200, reply
        said = " ".join(re.findall(r"<Message>(.*?)</Message>", reply.decode(), re.S))
        transcript.extend([f"subscriber: {body}", f"duebot: {said}"])
        return said

    # Written channels skip "May I speak with…": the bot asks for the ID digits before saying anything more.
    assert "last four digits" in text("hello"), transcript
    disclosure = text("4472")
    assert "identity is confirmed" in disclosure and "$230.50" in disclosure, transcript
    friday = _friday("America/Los_Angeles")
    assert f"So you will pay $230.50 by Friday {friday.day} {friday:%B}" in text("I can pay on Friday"), transcript
    confirmed = text("yes")
    assert "recorded" in confirmed and confirmed.endswith("Reply STOP to opt out."), transcript
    promise = [p for p in stack.store.promises("A-1") if p.conversation_id == "sms:A-1"]
    assert promise and promise[-1].due_date == friday, transcript
    # One thread, one evidence conversation: the outbound reminder (here) and the dialogue (Rasa's broker).
    records = wait_for_evidence(stack.served, "sms:A-1",
                                lambda rs: any(r.kind == "outcome" and r.body["type"] == "promise" for r in rs))
    assert any(r.kind == "turn" and r.body.get("message_sid") == reminder.sid for r in records)
    # Rasa's broker labels the subscriber's turns with the metadata channel (its bot turns say "rest": reported).
    assert {r.body["channel"] for r in records if r.kind == "turn" and r.body["speaker"] == "debtor"} == {"sms"}


@pytest.mark.browser
def test_web_chat_in_headless_chromium(stack: Stack, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    link = webchat.chat_url(stack.server.url, "A-2")
    assert "A-2" not in link and "Mark" not in link and "555" not in link
    with sync_playwright() as p:
        # A fresh profile per run (Playwright refuses --user-data-dir in args: it is this parameter).
        browser = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                       args=FLAGS, viewport={"width": 390, "height": 844})
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()  # a phone-sized window
            page.goto(link)
            log = page.get_by_role("log")
            expect(log).to_contain_text("last four digits", timeout=20_000)
            assert "?t=" not in page.url  # the token left the address bar
            box = page.get_by_label("Your message")

            def say(text: str, expect_text: str) -> None:
                count = page.locator(".msg--bot").count()
                box.fill(text)
                box.press("Enter")
                expect(page.locator(".msg--bot").nth(count)).to_be_visible(timeout=20_000)
                expect(log).to_contain_text(expect_text, timeout=20_000)

            say("4472", "$580.00")
            friday = _friday("America/New_York")
            say("I can pay on Friday", f"by Friday {friday.day} {friday:%B}")
            say("yes", "recorded")
            page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)
            assert (tmp_path / "chat.png").stat().st_size > 10_000
            # a forged request from the page's context cannot reach another account
            status = page.evaluate("""async () => (await fetch('/chat/api/message', {method: 'POST',
                headers: {'Content-Type': 'application/json', 'Authorization': 'Bearer forged.token'},
                body: JSON.stringify({text: 'hello'})})).status""")
            assert status == 403
        finally:
            browser.close()
    promise = [p for p in stack.store.promises("A-2") if p.conversation_id == "chat:A-2"]
    assert promise and promise[-1].due_date == friday
    expired = webchat.make_token("A-2", ttl_hours=-1)
    assert httpx.get(f"{stack.server.url}/chat?t={expired}").status_code == 403
