"""Words match deeds for the payment link (issue 20): the bot says the link was texted only after the real SMS sender
(built by duebot.clients.sms_sender from the settings) has sent it through Twilio (the local fake), as a
`transactional` text to the account's own number, on every channel; otherwise it says it could not, and the
`payment_link` outcome records why. The actions run as the action server runs them (rasa-sdk Action.run with a
Tracker and a CollectingDispatcher), against a real Redis and the fixture accounts."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
import redis
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from duebot import clients
from duebot.accounts.importer import import_csv
from duebot.accounts.store import AccountStore
from duebot.actions import conversation, registry, turn
from duebot.channels.sms.sender import SmsSender, wants_notice
from duebot.demo.twilio_fake import FakeConfig, TwilioFake
from duebot.evidence.inbox import STREAM, EvidenceInbox
from duebot.payments.links import verify_token
from duebot.payments.notify import NO_CARRIER
from duebot.policies.packs import load_pack, parse_pack
from duebot.settings import RedisAddress, Settings, load_settings
from tests.channels.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM
from tests.served import ACCOUNTS_CSV

US_PHONE, CN_PHONE = "+14155550101", "+8613910998888"  # A-1 (us pack, Los Angeles), A-5 (cn pack, Shanghai)


# --- fixtures: the account store, the Twilio fake, the sender the action server would build ----------------------
@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("accounts") / "duebot.sqlite3"
    template = AccountStore(f"sqlite:///{path}")
    report = import_csv(ACCOUNTS_CSV, template)
    assert report.created == 5, report
    template.engine.dispose()  # everything in the file itself before it is copied
    return path


@pytest.fixture
def store(tmp_path: Path, template_db: Path) -> AccountStore:
    shutil.copy(template_db, tmp_path / "duebot.sqlite3")
    return AccountStore(f"sqlite:///{tmp_path / 'duebot.sqlite3'}")


@pytest.fixture
def fake() -> Iterator[TwilioFake]:
    with TwilioFake(FakeConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, numbers=(FROM,))) as running:
        yield running


def carrier(redis_address: RedisAddress, api_base: str) -> Settings:
    """The settings of an action server whose Twilio SMS is configured (here: against the fake)."""
    return load_settings().changed(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                                   TWILIO_FROM_NUMBER=FROM, TWILIO_MESSAGING_SERVICE_SID=None,
                                   TWILIO_API_BASE=api_base, REDIS_URL=redis_address.url,
                                   DUEBOT_PUBLIC_URL="http://127.0.0.1:9")  # status callbacks go nowhere


def no_carrier(redis_address: RedisAddress) -> Settings:
    return load_settings().changed(TWILIO_AUTH_TOKEN="", TWILIO_FROM_NUMBER=None, TWILIO_MESSAGING_SERVICE_SID=None,
                                   REDIS_URL=redis_address.url)


class Bot:
    """The action server's view: its store, its evidence inbox and its SMS sender (None: no carrier)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: AccountStore, client: redis.Redis,
                 sender: SmsSender | None) -> None:
        self.store, self.client, self.sender = store, client, sender
        inbox = EvidenceInbox(client)
        for module in (turn, conversation):
            monkeypatch.setattr(module, "store", lambda: store)
        monkeypatch.setattr(conversation, "evidence", lambda: inbox)
        monkeypatch.setattr(conversation, "link_sender", lambda: sender)

    def act(self, action: str, account_id: str, text: str, intent: str, *, channel: str = "chat",
            language: str = "en", slots: dict[str, Any] | None = None) -> list[str]:
        """Run a registered action on one message of a verified subscriber; the responses it uttered. The channel
        and the conversation's language come in the message's metadata, as the channels send them."""
        cls = getattr(registry, "".join(part.title() for part in action.split("_")))
        latest = {"text": text, "intent": {"name": intent, "confidence": 0.99}, "entities": [],
                  "metadata": {"channel": channel, "language": language}}
        events = [{"event": "session_started"},
                  {"event": "user", "text": text, "parse_data": latest, "timestamp": time.time()}]
        tracker = Tracker(f"{account_id}-{channel}", {"account_id": account_id, "verified": True,
                                                      "language": language, "channel": channel, **(slots or {})},
                          latest, events, False, None, {}, "action_listen")
        dispatcher = CollectingDispatcher()
        self.events = cls().run(dispatcher, tracker, {})
        self.said = dispatcher.messages
        return [message["response"] for message in dispatcher.messages]

    def links(self, account_id: str) -> list[dict[str, str]]:
        return [e.detail for e in self.store.events(account_id) if e.kind == "payment_link"]

    def texts(self, account_id: str) -> list[dict[str, str]]:
        return [e.detail | {"conversation_id": e.conversation_id} for e in self.store.events(account_id)
                if e.kind == "sms_sent"]

    def gate_decisions(self) -> list[dict[str, Any]]:
        out = []
        for _, fields in self.client.xrange(STREAM):
            if fields[b"kind"] == b"gate_decision":
                out.append(json.loads(fields[b"body"])["decision"])
        return out


@pytest.fixture
def bot(monkeypatch: pytest.MonkeyPatch, store: AccountStore, redis_client: redis.Redis, redis_address: RedisAddress,
        fake: TwilioFake) -> Bot:
    sender = clients.sms_sender(carrier(redis_address, fake.url), client=redis_client, store=store)
    assert isinstance(sender, SmsSender)
    return Bot(monkeypatch, store, redis_client, sender)


def local(zone: str, hour: int) -> float:
    return dt.datetime.now(ZoneInfo(zone)).replace(hour=hour, minute=0, second=0, microsecond=0).timestamp()


def the_link(body: str) -> tuple[str, str]:
    found = re.search(r"(https?://\S+)$", body)
    assert found, body
    url = found.group(1)
    return url, parse_qs(urlparse(url).query)["t"][0]


# --- the link really goes out, before the bot says so ---------------------------------------------------------
@pytest.mark.parametrize("channel", ["chat", "sms", "voice"])
def test_asking_for_the_link_texts_exactly_one_verifiable_link_to_the_accounts_number(bot: Bot, fake: TwilioFake,
                                                                                     channel: str) -> None:
    assert bot.sender is not None
    bot.sender.clock = lambda: local("America/Los_Angeles", 12)
    assert bot.act("action_pay_now", "A-1", "send me the link", "pay_now", channel=channel) == [
        "utter_payment_link_sent"]
    assert bot.said[0]["phone_last4"] == "0101" and bot.said[0]["amount"] == "$230.50"
    assert [e["value"] for e in bot.events if e.get("name") == "outcome"] == ["pay_now"]
    messages = fake.snapshot()["messages"]
    assert len(messages) == 1 and messages[0]["to"] == US_PHONE and messages[0]["from"] == FROM
    url, token = the_link(messages[0]["body"])
    link = verify_token(token)
    assert (link.account_id, link.amount) == ("A-1", Decimal("230.50"))
    assert url.startswith(load_settings().payment_link_base_url + "?t=")
    assert "230" not in messages[0]["body"].replace(url, "") and "Jane" not in messages[0]["body"]  # no debt named
    assert "Reply STOP" not in messages[0]["body"]  # us: the notice rule lists collection and reminder only
    # a transactional text, recorded in the conversation that asked for it, under a gate reservation
    [sent] = bot.texts("A-1")
    assert sent["purpose"] == "transactional" and sent["sid"] == messages[0]["sid"]
    assert sent["conversation_id"] == f"A-1-{channel}" and sent["reservation_id"]
    [decision] = bot.gate_decisions()
    assert decision["purpose"] == "transactional" and decision["allowed"] is True and decision["channel"] == "sms"
    [outcome] = bot.links("A-1")
    assert outcome["sent"] == "true" and outcome["sid"] == messages[0]["sid"] and outcome["url"] == url
    assert outcome["to"] == US_PHONE and "reason" not in outcome


def test_a_zh_conversation_gets_the_link_text_in_chinese(bot: Bot, fake: TwilioFake) -> None:
    assert bot.sender is not None
    bot.sender.clock = lambda: local("Asia/Shanghai", 12)
    assert bot.act("action_pay_now", "A-5", "把缴费链接发给我", "pay_now", language="zh", channel="sms") == [
        "utter_payment_link_sent"]
    assert bot.said[0]["amount"] == "210.00元" and bot.said[0]["phone_last4"] == "8888"
    [message] = fake.snapshot()["messages"]
    assert message["body"].startswith("【账单助手】您申请的安全缴费链接") and message["to"] == CN_PHONE
    assert "回复TD退订" not in message["body"]  # the cn pack has no notice rule for transactional texts
    assert verify_token(the_link(message["body"])[1]).amount == Decimal("210.00")


def test_a_partial_payment_texts_the_part_then_says_so(bot: Bot, fake: TwilioFake) -> None:
    assert bot.sender is not None
    bot.sender.clock = lambda: local("America/Los_Angeles", 12)
    date = (dt.date.today() + dt.timedelta(days=7)).isoformat()
    pending = {"type": "partial", "part": "100.00", "rest": "130.50", "date": date}
    said = bot.act("action_handle_affirm", "A-1", "yes", "affirm", slots={"awaiting": "confirm", "pending": pending})
    assert said == ["utter_partial_recorded"]
    [message] = fake.snapshot()["messages"]
    assert verify_token(the_link(message["body"])[1]).amount == Decimal("100.00")
    assert [str(p.amount) for p in bot.store.promises("A-1")] == ["130.50"]
    assert bot.links("A-1")[0]["sent"] == "true"


def test_a_part_above_the_balance_texts_the_whole_balance(bot: Bot, fake: TwilioFake) -> None:
    assert bot.sender is not None
    bot.sender.clock = lambda: local("America/Los_Angeles", 12)
    said = bot.act("action_partial_payment", "A-1", "I can pay 500 dollars today", "partial_payment")
    assert said == ["utter_partial_too_much", "utter_payment_link_sent"]
    [message] = fake.snapshot()["messages"]
    assert verify_token(the_link(message["body"])[1]).amount == Decimal("230.50")


# --- when the text cannot go, the bot says so ------------------------------------------------------------------
def test_without_a_carrier_the_bot_says_it_could_not_and_the_log_says_why(
        monkeypatch: pytest.MonkeyPatch, store: AccountStore, redis_client: redis.Redis, redis_address: RedisAddress,
        fake: TwilioFake, caplog: pytest.LogCaptureFixture) -> None:
    settings = no_carrier(redis_address)
    assert clients.sms_sender(settings, client=redis_client, store=store) is None
    assert "TWILIO_AUTH_TOKEN" in (clients.sms_configured(settings) or "")
    bot = Bot(monkeypatch, store, redis_client, None)
    with caplog.at_level(logging.WARNING):
        said = bot.act("action_pay_now", "A-1", "send me the link", "pay_now")
    assert said == ["utter_payment_link_failed"] and "utter_payment_link_sent" not in said
    assert not [e for e in bot.events if e.get("name") == "outcome"]  # a link that never left is no pay-now outcome
    assert "NOT texted" in caplog.text and "no SMS carrier configured" in caplog.text
    [outcome] = bot.links("A-1")
    assert outcome["sent"] == "false" and outcome["reason"] == NO_CARRIER and "sid" not in outcome
    assert fake.snapshot()["messages"] == []
    # the partial payment is still written down, and the bot says the link did not go
    pending = {"type": "partial", "part": "100.00", "rest": "130.50",
               "date": (dt.date.today() + dt.timedelta(days=7)).isoformat()}
    said = bot.act("action_handle_affirm", "A-1", "yes", "affirm", slots={"awaiting": "confirm", "pending": pending})
    assert said == ["utter_partial_link_failed"]
    assert [str(p.amount) for p in store.promises("A-1")] == ["130.50"]
    assert bot.act("action_partial_payment", "A-1", "I can pay 500 dollars", "partial_payment") == [
        "utter_partial_too_much", "utter_payment_link_failed"]


def test_the_action_server_builds_its_sender_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                                  store: AccountStore,
                                                                  redis_address: RedisAddress) -> None:
    """What `duebot serve` hands the action server (its whole environment) is what link_sender reads."""
    monkeypatch.setattr(conversation, "store", lambda: store)
    for name in ("TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER", "TWILIO_MESSAGING_SERVICE_SID"):
        monkeypatch.delenv(name, raising=False)
    assert conversation.link_sender.__wrapped__() is None
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("TWILIO_FROM_NUMBER", FROM)
    monkeypatch.setenv("REDIS_URL", redis_address.url)
    assert isinstance(conversation.link_sender.__wrapped__(), SmsSender)


def test_a_gate_refusal_is_said_honestly(bot: Bot, fake: TwilioFake) -> None:
    assert bot.sender is not None
    bot.sender.clock = lambda: local("America/Los_Angeles", 12)
    bot.store.set_opt_out(US_PHONE, True, "sms", "test")
    said = bot.act("action_pay_now", "A-1", "send me the link", "pay_now")
    assert said == ["utter_payment_link_failed"]
    assert bot.links("A-1")[0] | {"url": ""} == {"amount": "230.50", "url": "", "to": US_PHONE, "sent": "false",
                                                  "reason": "OPTED_OUT"}
    assert fake.snapshot()["messages"] == [] and bot.texts("A-1") == []


def test_a_twilio_error_is_said_honestly_and_gives_everything_back(
        monkeypatch: pytest.MonkeyPatch, store: AccountStore, redis_client: redis.Redis,
        redis_address: RedisAddress) -> None:
    config = FakeConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, numbers=(FROM,), allowed_prefixes=("+86",))
    with TwilioFake(config) as fake:
        sender = clients.sms_sender(carrier(redis_address, fake.url), client=redis_client, store=store)
        assert sender is not None
        sender.clock = lambda: local("America/Los_Angeles", 12)
        bot = Bot(monkeypatch, store, redis_client, sender)
        assert bot.act("action_pay_now", "A-1", "send me the link", "pay_now") == ["utter_payment_link_failed"]
        assert bot.links("A-1")[0]["reason"] == "TWILIO_21408" and fake.snapshot()["messages"] == []
    assert not any(redis_client.zcard(key) for key in redis_client.keys("duebot:sms:rate:*"))  # the slot is back


# --- quiet hours: each pack's decision, through the live sender ----------------------------------------------
def test_at_23h_cn_texts_the_link_and_us_holds_it(bot: Bot, fake: TwilioFake) -> None:
    assert bot.sender is not None
    bot.sender.clock = lambda: local("Asia/Shanghai", 23)
    assert bot.act("action_pay_now", "A-5", "send me the link", "pay_now") == ["utter_payment_link_sent"]
    assert [m["to"] for m in fake.snapshot()["messages"]] == [CN_PHONE]
    assert bot.sender.send_reminder("A-5").reasons == ("QUIET_HOURS",)  # a reminder at 23:00 still is not
    bot.sender.clock = lambda: local("America/Los_Angeles", 23)
    assert bot.act("action_pay_now", "A-1", "send me the link", "pay_now") == ["utter_payment_link_failed"]
    assert bot.links("A-1")[0]["reason"] == "QUIET_HOURS"
    assert [m["to"] for m in fake.snapshot()["messages"]] == [CN_PHONE]


# --- never a collection contact -------------------------------------------------------------------------------
def test_links_never_count_toward_the_reminder_cap_or_the_collection_rate(bot: Bot, fake: TwilioFake) -> None:
    assert bot.sender is not None
    now = [local("Asia/Shanghai", 10)]
    bot.sender.clock = lambda: now[0]
    for _ in range(3):  # three links (a minute apart: the per-number rate limit)
        assert bot.act("action_pay_now", "A-5", "send me the link", "pay_now") == ["utter_payment_link_sent"]
        now[0] += 61
    assert [t["purpose"] for t in bot.texts("A-5")] == ["transactional"] * 3
    first, second = bot.sender.send_reminder("A-5"), None
    now[0] += 61
    second = bot.sender.send_reminder("A-5")
    now[0] += 61
    third = bot.sender.send_reminder("A-5")
    assert first.sent and second.sent, (first, second)  # the links took neither the cap nor the day's texts
    assert third.reasons == ("REMINDER_CAP",)  # cn: 2 reminders per 7 days, counted without the links
    assert len(fake.snapshot()["messages"]) == 5


def test_the_notice_is_added_to_a_transactional_text_only_when_the_packs_rule_asks() -> None:
    assert not wants_notice(load_pack("cn"), "transactional") and not wants_notice(load_pack("us"), "transactional")
    assert wants_notice(load_pack("cn"), "reminder") and wants_notice(load_pack("us"), "collection")
    asks = parse_pack({"pack": "strict", "version": 1, "retention_years": 1, "sms_opt_out_notice": "Reply STOP",
                       "rules": [{"rule": "opt_out"}, {"rule": "quiet_hours"},
                                 {"rule": "sms_opt_out_notice", "params": {"purposes": ["collection", "reminder",
                                                                                        "transactional"]}}]})
    assert wants_notice(asks, "transactional")

