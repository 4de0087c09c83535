"""The Twilio SMS channel against the Twilio fake and a real redis-server, over real HTTP both ways.

No Rasa here: every request that reaches these tests' assertions is handled before the dialogue model
(signatures, replays, keywords, opt-out). test_sms_conversation.py covers the conversation with real Rasa."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from duebot.accounts.store import AccountStore
from duebot.channels.rasa_client import RasaClient
from duebot.channels.sms import webhook as twilio_sms
from duebot.channels.sms.sender import RebasedHttpClient, SmsSender, twilio_client
from duebot.demo.twilio_fake import FakeConfig, TwilioFake
from duebot.evidence.inbox import STREAM, EvidenceInbox
from duebot.policies.audit import JsonlAuditSink
from duebot.policies.reserve import LiveGate
from duebot.processes import free_port
from duebot.web import create_app
from tests.channels.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM, SHARED_KEY, ServerThread, sms_settings

JANE, WANG = "+14155550101", "+8613910998888"


class Rig:
    def __init__(self, server: ServerThread, channel: twilio_sms.SmsChannel, fake: TwilioFake,
                 sender: SmsSender, audit: Path) -> None:
        self.server, self.channel, self.fake, self.sender, self.audit = server, channel, fake, sender, audit
        self.sms_url = f"{server.url}/twilio/sms"

    def text(self, from_: str, body: str, sid: str | None = None) -> tuple[int, str]:
        status, reply, _ = self.fake.inbound_sms(self.sms_url, from_, body, sid=sid)
        return status, reply.decode()

    def evidence(self) -> list[tuple[str, str, dict, str | None]]:
        """(kind, conversation_id, body, text) of every record submitted to the evidence inbox."""
        out = []
        for _, fields in self.channel.redis.xrange(STREAM):
            text = fields.get(b"p:text")
            out.append((fields[b"kind"].decode(), fields[b"conversation_id"].decode(), json.loads(fields[b"body"]),
                        text.decode() if text else None))
        return out


def daytime() -> float:
    """19:00 UTC today: 11:00-12:00 in California, inside the us pack's 08:00-21:00."""
    return dt.datetime.now(dt.UTC).replace(hour=19, minute=0, second=0, microsecond=0).timestamp()


@pytest.fixture
def rig(store: AccountStore, fake: TwilioFake, redis_client: redis.Redis, tmp_path: Path) -> Iterator[Rig]:
    app = create_app()
    app.include_router(twilio_sms.router)
    server = ServerThread(app)
    settings = sms_settings(server.url, fake.url)
    # No Rasa on this port: anything that would reach the dialogue model answers 503.
    channel = twilio_sms.SmsChannel(settings, store, redis_client, RasaClient(f"http://127.0.0.1:{free_port()}"),
                                    EvidenceInbox(redis_client))
    app.dependency_overrides[twilio_sms.get_channel] = lambda: channel
    audit = tmp_path / "gate.jsonl"
    gates = {name: LiveGate(redis_client, name, sink=JsonlAuditSink(audit)) for name in ("us", "cn")}
    sender = SmsSender(settings, gates, store, twilio_client(settings), redis_client, EvidenceInbox(redis_client),
                       clock=daytime)
    with server:
        yield Rig(server, channel, fake, sender, audit)


# ---------------------------------------------------------------- signatures and replays

def test_signed_help_is_answered_with_twiml(rig: Rig) -> None:
    status, reply = rig.text(JANE, "HELP")
    assert status == 200 and reply.startswith("<?xml") and "<Response><Message>" in reply
    assert "Acme Telecom billing" in reply and "Reply STOP to opt out" in reply and "800-555-0100" in reply
    assert "230" not in reply and "Jane" not in reply  # HELP says who texts, never what is owed


def test_unsigned_tampered_and_wrong_url_requests_are_refused(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    params = {"MessageSid": "SM" + "a" * 32, "From": JANE, "To": FROM, "Body": "HELP", "AccountSid": ACCOUNT_SID}
    signed = rig.fake.signed_headers(rig.sms_url, params)
    assert httpx.post(rig.sms_url, data=params).status_code == 403  # unsigned
    tampered = {**params, "Body": "STOP"}
    assert httpx.post(rig.sms_url, data=tampered, headers=signed).status_code == 403
    other_url = rig.fake.signed_headers("https://attacker.example/twilio/sms", params)
    assert httpx.post(rig.sms_url, data=params, headers=other_url).status_code == 403
    forged = {"X-Twilio-Signature": signed["X-Twilio-Signature"][:-4] + "AAA="}
    assert httpx.post(rig.sms_url, data=params, headers=forged).status_code == 403
    assert not rig.channel.store.is_opted_out(JANE) and rig.evidence() == []
    assert caplog.text.count("rejected: unsigned") == 1 and caplog.text.count("rejected: bad signature") == 3
    assert httpx.post(rig.sms_url, data=params, headers=signed).status_code == 200  # the genuine one passes


def test_a_replayed_message_sid_gets_no_second_reply(rig: Rig) -> None:
    params = {"MessageSid": "SM" + "b" * 32, "From": JANE, "To": FROM, "Body": "HELP", "AccountSid": ACCOUNT_SID}
    headers = rig.fake.signed_headers(rig.sms_url, params)
    first = httpx.post(rig.sms_url, data=params, headers=headers)
    replay = httpx.post(rig.sms_url, data=params, headers=headers)
    assert first.status_code == replay.status_code == 200
    assert "<Message>" in first.text and "<Message>" not in replay.text
    assert [kind for kind, *_ in rig.evidence()] == ["turn", "turn"]  # one HELP in, one answer out


def test_sha256_signed_webhooks_with_the_configured_shared_key(rig: Rig) -> None:
    rig.fake.config.shared_key = SHARED_KEY
    assert rig.text(JANE, "help")[0] == 200
    rig.fake.config.shared_key = ("webhooks_sharedkey_other", "other-secret")
    assert rig.text(JANE, "help")[0] == 403


def test_a_dialogue_outage_lets_twilio_retry(rig: Rig) -> None:
    sid = "SM" + "c" * 32
    assert rig.text(JANE, "hello", sid=sid)[0] == 503
    assert rig.text(JANE, "hello", sid=sid)[0] == 503  # not swallowed as a duplicate: Rasa is still down


# ---------------------------------------------------------------- keywords

@pytest.mark.parametrize(("stop", "start"), [("STOP", "START"), ("stop", "unstop"), ("Unsubscribe.", "Start"),
                                             ("cancel", "START"), ("End", "start"), ("QUIT!", "UNSTOP"),
                                             ("revoke", "start"), ("OptOut", "start"), ("opt out", "start"),
                                             ("StopAll", "START")])
def test_stop_and_start_in_many_spellings(rig: Rig, stop: str, start: str) -> None:
    status, reply = rig.text(JANE, stop)
    assert status == 200 and "unsubscribed" in reply
    assert rig.channel.store.is_opted_out(JANE)
    assert rig.channel.store.gate_subscriber("A-1")["opted_out"] is True
    status, reply = rig.text(JANE, start)
    assert status == 200 and "opted back in" in reply and not rig.channel.store.is_opted_out(JANE)
    records = rig.evidence()
    assert [(k, b.get("type") or b["speaker"]) for k, _, b, _ in records] == [
        ("turn", "debtor"), ("outcome", "opt_out"), ("turn", "system"),
        ("turn", "debtor"), ("turn", "system")]
    assert {conversation for _, conversation, _, _ in records} == {"sms:A-1"}
    assert records[0][3] == stop and records[2][3].startswith("Acme Telecom billing: you are unsubscribed")
    # the account's history holds the opt-out too (billing's relay reads it: channels/billing)
    [event] = [e for e in rig.channel.store.events("A-1") if e.kind == "opt_out"]
    assert event.conversation_id == "sms:A-1" and event.detail == {"channel": "sms", "keyword": stop}


def test_chinese_opt_out_for_a_cn_pack_account(rig: Rig) -> None:
    assert "回复" not in rig.text(WANG, "帮助")[1] and "TD" in rig.text(WANG, "帮助")[1]
    assert "unsubscribed" in rig.text(WANG, "退订")[1] and rig.channel.store.is_opted_out(WANG)
    rig.text(WANG, "START")
    assert "unsubscribed" in rig.text(WANG, "td")[1] and rig.channel.store.is_opted_out(WANG)


def test_an_opted_out_number_gets_no_reply_and_never_reaches_the_bot(rig: Rig) -> None:
    rig.text(JANE, "STOP")
    status, reply = rig.text(JANE, "hello? how much do I owe")  # Rasa is down: reaching it would be a 503
    assert status == 200 and "<Message>" not in reply
    last = rig.evidence()[-1]
    assert last[0] == "turn" and last[2]["reason"] == "opted_out" and last[3] == "hello? how much do I owe"


def test_unknown_numbers_are_not_answered_but_stop_still_works(rig: Rig) -> None:
    stranger = "+14155550199"
    assert "<Message>" not in rig.text(stranger, "hello")[1]
    assert "unsubscribed" in rig.text(stranger, "stop")[1] and rig.channel.store.is_opted_out(stranger)
    assert all(stranger not in conversation for _, conversation, _, _ in rig.evidence())  # no number in ids


# ---------------------------------------------------------------- outbound

def test_a_reminder_carries_the_notice_and_delivery_callbacks_update_the_history(rig: Rig) -> None:
    result = rig.sender.send("A-1", "Acme Telecom: a reminder about your bill. Reply to this text to talk to us.")
    assert result.sent and result.sid and result.sid.startswith("SM") and result.reservation_id, result
    sent = rig.fake.snapshot()["messages"]
    assert [m["body"] for m in sent] == [result.body] and result.body.endswith("Reply STOP to opt out.")
    assert sent[0]["to"] == JANE and sent[0]["from"] == FROM and result.segments == 1
    callbacks = rig.fake.wait_callbacks(2, timeout=30)
    assert [(c["params"]["MessageStatus"], c["response"]) for c in callbacks] == [("sent", 204), ("delivered", 204)]
    statuses = [e.detail["status"] for e in rig.channel.store.events("A-1") if e.kind == "sms_status"]
    assert statuses == ["sent", "delivered"]
    assert rig.sender.history("A-1")[0]["outcome"] == "delivered"
    bot_turn = next(b for k, _, b, text in rig.evidence() if k == "turn" and b["speaker"] == "bot")
    assert bot_turn["message_sid"] == result.sid and bot_turn["channel"] == "sms"


def test_opt_out_by_sms_then_the_gate_refuses_the_next_text(rig: Rig) -> None:
    rig.text(JANE, "Stop")
    result = rig.sender.send("A-1", "Acme Telecom: a reminder about your bill.")
    assert not result.sent and "OPTED_OUT" in result.reasons and result.reservation_id is None
    assert rig.fake.snapshot()["messages"] == []  # Twilio was never asked


def test_twilio_refusal_releases_the_reservation_and_21610_opts_out(rig: Rig) -> None:
    rig.fake.state.unsubscribed.add(JANE)  # STOP reached Twilio's Advanced Opt-Out but not duebot
    result = rig.sender.send("A-1", "Acme Telecom: a reminder about your bill.")
    assert not result.sent and result.reasons == ("TWILIO_21610",)
    assert rig.channel.store.is_opted_out(JANE)
    lines = [json.loads(line) for line in rig.audit.read_text().splitlines()]
    assert lines[-1]["kind"] == "gate.release" and lines[-1]["reason"] == "twilio_21610" and lines[-1]["released"]


def test_rate_limit_and_length_are_enforced(rig: Rig) -> None:
    too_long = rig.sender.send("A-1", "Acme Telecom: " + "x" * 600)
    assert not too_long.sent and too_long.reasons == ("TOO_LONG",) and too_long.segments == 5
    assert rig.sender.send("A-1", "Acme Telecom: first reminder.").sent
    again = rig.sender.send("A-1", "Acme Telecom: second reminder.")
    assert not again.sent and again.reasons == ("RATE_LIMITED_MINUTE",) and 0 < (again.retry_after or 0) <= 60
    assert len(rig.fake.snapshot()["messages"]) == 1


# ---------------------------------------------------------------- the fake speaks Twilio

def test_the_fake_speaks_twilio_to_the_real_client(fake: TwilioFake) -> None:
    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=RebasedHttpClient(fake.url))
    with pytest.raises(TwilioRestException) as bad_auth:
        Client(ACCOUNT_SID, "wrong", http_client=RebasedHttpClient(fake.url)).messages.create(
            to=JANE, from_=FROM, body="hi")
    assert (bad_auth.value.status, bad_auth.value.code) == (401, 20003)
    with pytest.raises(TwilioRestException) as bad_to:
        client.messages.create(to="555-0101", from_=FROM, body="hi")
    assert (bad_to.value.status, bad_to.value.code) == (400, 21211)
    with pytest.raises(TwilioRestException) as bad_from:
        client.messages.create(to=JANE, from_="+15550000000", body="hi")
    assert bad_from.value.code == 21606
    fake.config.allowed_prefixes = ("+1",)
    with pytest.raises(TwilioRestException) as region:
        client.messages.create(to=WANG, from_=FROM, body="hi")
    assert region.value.code == 21408
    message = client.messages.create(to=JANE, from_=FROM, body="回复TD退订")
    assert message.status == "queued" and message.num_segments == "1" and message.date_created is not None
    assert client.messages(message.sid).fetch().body == "回复TD退订"
    call = client.calls.create(to=JANE, from_=FROM, url="https://duebot.example/twilio/voice")
    assert call.sid.startswith("CA") and call.status == "queued"
    with pytest.raises(TwilioRestException) as no_url:
        client.calls.create(to=JANE, from_=FROM)
    assert no_url.value.code == 21205


def test_the_fake_runs_as_a_process(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "duebot.demo.twilio_fake", "--port", str(port),
                                "--auth-token", AUTH_TOKEN, "--account-sid", ACCOUNT_SID],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                state = httpx.get(f"http://127.0.0.1:{port}/fake/state").json()
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        assert state["messages"] == []
        client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=RebasedHttpClient(f"http://127.0.0.1:{port}"))
        assert client.messages.create(to=JANE, from_=FakeConfig.numbers[0], body="hi").sid.startswith("SM")
    finally:
        process.terminate()
        process.wait(timeout=10)
