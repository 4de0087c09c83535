"""Campaign SMS steps through the real Twilio client (the `twilio_sms` contactor) against the local Twilio fake:
worker processes on a real Redis text every account exactly once, with the pack's opt-out notice in the text's
language and no debt."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator

import pytest
import redis

from duebot.accounts.store import AccountStore
from duebot.campaigns.contactors import ContactJob, build
from duebot.channels.sms.contactor import MARKER, STARTED, TwilioSmsContactor
from duebot.demo.twilio_fake import FakeConfig, TwilioFake
from duebot.policies.reserve import LiveGate
from tests.campaigns.conftest import wait_for, write_accounts

SID, TOKEN, FROM = "AC" + "2" * 32, "campaign-token-" + "y" * 16, "+15005550006"


@pytest.fixture
def fake() -> Iterator[TwilioFake]:
    with TwilioFake(FakeConfig(account_sid=SID, auth_token=TOKEN, numbers=(FROM,))) as running:
        yield running


@pytest.fixture
def twilio_env(env: dict[str, str], fake: TwilioFake, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM_NUMBER": FROM,
              "TWILIO_API_BASE": fake.url, "DUEBOT_SMS_BRAND": "Acme Telecom"}
    for key, value in values.items():
        env[key] = value
        monkeypatch.setenv(key, value)
    return env


def test_a_launch_texts_each_account_once_through_twilio(campaigns, workers, tmp_path, fast_strategy, fake,
                                                         twilio_env) -> None:
    n = 24
    imported = campaigns.import_file(write_accounts(tmp_path / "t.csv", n), strategy=fast_strategy())
    cid = imported.campaign_id
    pool = workers("--concurrency", "3", "--scheduler-interval", "0.2", "--contactor", "sms=twilio_sms",
                   "--sim-certain", "--no-evidence")
    pool.start()
    pool.start()
    assert campaigns.launch(cid) == n
    assert wait_for(lambda: len(fake.snapshot()["messages"]) >= n and campaigns.status(cid)["steps"][0]["completed"]
                    == n, 60), campaigns.status(cid)
    messages = fake.snapshot()["messages"]
    per_number = Counter(m["to"] for m in messages)
    assert len(per_number) == n and set(per_number.values()) == {1}  # each account texted exactly once
    for m in messages:
        assert m["from"] == FROM and m["body"].startswith("Acme Telecom: a reminder about your account")
        # the cn pack's opt-out notice in the text's language: English readers are told to reply STOP
        assert m["body"].endswith("Reply STOP to opt out.") and "回复TD退订" not in m["body"]
        assert ".50" not in m["body"] and "¥" not in m["body"] and "owe" not in m["body"]  # no debt in a text
    step = campaigns.status(cid)["steps"][0]
    assert step["completed"] == n, step


def _job(key: str, account: str, phone: str, reservation: str | None) -> ContactJob:
    return ContactJob(key, "C-1", account, "sms_reminder", "sms", "reminder", phone, "en", "forgot", "100.50",
                      "CNY", reservation)


def _reserve(client: redis.Redis, store: AccountStore, account_id: str) -> str:
    account = store.get_account(account_id)
    assert account is not None
    request = {"now": dt.datetime.now(dt.UTC).isoformat(),
               "contact": {"channel": "sms", "purpose": "reminder", "to": account.phone, "debt_id": account.id},
               "subscriber": store.gate_subscriber(account.id), "history": []}
    reservation = LiveGate(client, account.pack).reserve(request)
    assert reservation.id is not None, reservation.decision.reasons
    return reservation.id


def test_the_contactor_never_texts_a_key_twice_and_reports_refusals(campaigns, tmp_path, fake, twilio_env,
                                                                    redis_client) -> None:
    campaigns.import_file(write_accounts(tmp_path / "c.csv", 3))
    store = campaigns.store
    contactor = build("twilio_sms", store, redis_client)
    assert isinstance(contactor, TwilioSmsContactor)
    phone = store.get_account("T-0").phone  # type: ignore[union-attr]

    assert not contactor.lookup("k-0").contacted
    first = contactor.contact(_job("k-0", "T-0", phone, _reserve(redis_client, store, "T-0")))
    assert first.outcome == "delivered" and first.conversation_id == "sms:T-0"
    again = contactor.contact(_job("k-0", "T-0", phone, None))  # a re-delivered job: answered from the marker
    assert again == first and len(fake.snapshot()["messages"]) == 1
    assert contactor.lookup("k-0").result == first

    redis_client.set(MARKER + "k-1", STARTED)  # a worker died between the marker and Twilio's answer
    assert contactor.contact(_job("k-1", "T-1", phone, None)).outcome is None
    assert contactor.lookup("k-1").contacted and contactor.lookup("k-1").result is None
    assert len(fake.snapshot()["messages"]) == 1  # perhaps sent: never repeated

    refused = store.get_account("T-2").phone  # type: ignore[union-attr]
    fake.state.unsubscribed.add(refused)  # Twilio's Advanced Opt-Out knows this number said STOP
    result = contactor.contact(_job("k-2", "T-2", refused, _reserve(redis_client, store, "T-2")))
    assert result.outcome == "failed" and len(fake.snapshot()["messages"]) == 1
    assert store.is_opted_out(refused)  # honoured on every channel from now on


def test_serve_reads_the_contactors_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from duebot.settings import load_settings

    monkeypatch.delenv("DUEBOT_CAMPAIGN_CONTACTORS", raising=False)
    assert load_settings().campaigns.contactors == ()
    monkeypatch.setenv("DUEBOT_CAMPAIGN_CONTACTORS", " sms=twilio_sms, voice=simulated ")
    assert load_settings().campaigns.contactors == ("sms=twilio_sms", "voice=simulated")
    monkeypatch.setenv("DUEBOT_CAMPAIGN_CONTACTORS", "fax=twilio_sms")
    with pytest.raises(ValueError, match="CHANNEL=NAME"):
        _ = load_settings().campaigns.contactors
