"""Issue 18: an identity check that cannot be rewound. Every finding is performed as an attack, on the real
component and end to end, and each test fails if its hole reopens.

- Subscriber text in Rasa's control syntax (`/restart`, `/back`, `/session_start`, `/intent{entities}`,
  `EXTERNAL: `) never reaches Rasa as a command: channels/rasa_client.py `subscriber_text`, checked against Rasa
  3.6's own parser and then over SMS and web chat (Rasa's tracker must show no restart, no rewind).
- Failed checks are counted per account in Redis (bot/actions/verification.py), so no reset, new conversation or
  other channel gives more tries; the check closes for a cool-down, with a person offered, then opens again.
- `verified` lapses after the idle time and is never carried into a new Rasa session.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from duebot.accounts.store import AccountStore
from duebot.actions import verification
from duebot.channels.chat import webchat
from duebot.channels.rasa_client import RasaClient, subscriber_text
from duebot.channels.sms import webhook as twilio_sms
from duebot.demo.twilio_fake import FakeConfig, TwilioFake
from duebot.evidence.inbox import EvidenceInbox
from duebot.secrets import account_signature, secret
from duebot.settings import load_settings
from duebot.training.train import rasa_env
from duebot.web import create_app
from tests.channels.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM, ServerThread, sms_settings
from tests.served import Served, served_fixture

# What a subscriber may type to drive Rasa instead of talking to it (Rasa reads `text.strip()`).
ATTACKS = ["/restart", "/back", "/session_start", " /restart", "\t/back\n", "\u3000/restart", "\u00a0/back",
           "//restart", "/ /restart", "/restart@1.0", '/inform{"digits": "4472"}', "/affirm", "/nlu_fallback",
           "EXTERNAL: /restart", "EXTERNAL:/back", "/EXTERNAL: /restart", "/"]
WORDS = ["4472", "hello", "I said /restart yesterday", "my id ends 4472 / thanks", "  hi  ", "External: a word", ""]


# --- the filter ------------------------------------------------------------------------------------------------

def _is_command(text: str) -> bool:
    return text.strip().startswith(("/", "EXTERNAL:"))


@pytest.mark.parametrize("text", ATTACKS)
def test_control_syntax_is_read_as_words(text: str) -> None:
    words = subscriber_text(text)
    assert not _is_command(words), (text, words)
    assert words == words.strip()


@pytest.mark.parametrize("text", WORDS)
def test_a_subscriber_s_words_pass_unchanged(text: str) -> None:
    assert subscriber_text(text) == text


@given(st.lists(st.sampled_from(["/", " ", "\u3000", "\t", "EXTERNAL:", "EXTERNAL: ", "x", "{", "4"]) | st.characters(),
                max_size=12).map("".join))
def test_no_text_leaves_the_filter_as_a_command(text: str) -> None:
    assert not _is_command(subscriber_text(text))


@pytest.mark.rasa
def test_rasa_s_own_parser_takes_the_attacks_for_commands_and_the_filtered_text_for_words(tmp_path: Path) -> None:
    """Rasa 3.6's RegexMessageHandler (YAMLStoryReader.unpack_regex_message) with duebot's domain: the attacks
    are commands to it, what the filter makes of them is not."""
    settings = load_settings()
    script = tmp_path / "parse.py"
    script.write_text(
        "import json, sys\n"
        "from rasa.shared.core.domain import Domain\n"
        "from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader\n"
        "from rasa.shared.nlu.training_data.message import Message\n"
        "domain = Domain.load(sys.argv[1])\n"
        "parsed = [YAMLStoryReader.unpack_regex_message(Message({'text': t}), domain) for t in json.load(sys.stdin)]\n"
        "print('PARSED ' + json.dumps([(m.get('intent') or {}).get('name') for m in parsed]))\n")
    texts = ATTACKS + [subscriber_text(text) for text in ATTACKS]
    result = subprocess.run([str(settings.rasa_venv / "bin" / "python"), str(script),
                             str(settings.bot_dir / "domain.yml")], input=json.dumps(texts), env=rasa_env(),
                            capture_output=True, text=True, timeout=300)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("PARSED ")), None)
    assert line is not None, result.stdout[-2000:] + result.stderr[-2000:]
    intents = dict(zip(texts, json.loads(line.removeprefix("PARSED ")), strict=True))
    assert intents["/restart"] == "restart" and intents["\u3000/restart"] == "restart"  # the attack is real
    assert intents["/back"] == "back" and intents["/session_start"] == "session_start"
    assert intents['/inform{"digits": "4472"}'] == "inform"
    assert {text: intents[subscriber_text(text)] for text in ATTACKS} == dict.fromkeys(ATTACKS)


def _capturing_client(sent: list[dict]) -> RasaClient:
    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json=[{"text": "ok"}])

    client = RasaClient("http://rasa.invalid")
    client._client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return client


def test_every_channel_s_path_to_rasa_sends_words(monkeypatch: pytest.MonkeyPatch) -> None:
    """RasaClient.messages is the one way to Rasa (SMS and chat through `ask`, voice through RasaRestDialogue):
    a command arrives as words, with what was written kept beside them in the metadata; the voice session's own
    opening command (metadata `input: call_start`) is the one that stays a command."""
    monkeypatch.setenv("DUEBOT_CHANNEL_SECRET", secrets.token_urlsafe(32))
    sent: list[dict] = []
    client = _capturing_client(sent)

    async def talk() -> None:
        await client.ask("sms:A-1", "/restart", "A-1", "sms")
        await client.ask("chat:A-1", '/inform{"digits": "4472"}', "A-1", "chat")
        await client.messages("call-1", " /back", {"account_id": "A-1", "channel": "voice", "input": "speech"})
        await client.messages("call-1", "/greet", {"account_id": "A-1", "channel": "voice", "input": "call_start"})
        await client.ask("sms:A-1", "4472", "A-1", "sms")
        await client.aclose()

    asyncio.run(talk())
    assert [body["message"] for body in sent] == ["restart", 'inform{"digits": "4472"}', "back", "/greet", "4472"]
    assert [body["metadata"].get("text_as_written") for body in sent] == [
        "/restart", '/inform{"digits": "4472"}', " /back", None, None]
    assert all(body["metadata"]["account_sig"] == account_signature(body["sender"], "A-1") for body in sent)


# --- the counter (real redis-server) -----------------------------------------------------------------------------

def test_failures_close_the_check_for_the_cool_down_without_counting_what_comes_after(
        redis_client: redis.Redis) -> None:
    attempts = verification.Attempts(redis_client, limit=2, cooldown=60)
    assert attempts.closed_for("A-1") == 0
    assert attempts.take("A-1") == verification.Attempt(True, 1, 60)
    assert attempts.take("A-1") == verification.Attempt(True, 2, 60)
    refused = attempts.take("A-1")
    assert not refused.admitted and refused.failures == 2 and 55 <= refused.retry_after <= 60
    assert 55 <= attempts.closed_for("A-1") <= 60
    for _ in range(5):  # attempts while closed are neither compared nor counted, nor do they extend the lock
        assert not attempts.take("A-1").admitted
    assert int(redis_client.get(verification.KEY + "A-1")) == 2
    assert attempts.closed_for("A-2") == 0 and attempts.take("A-2").admitted  # per account


def test_a_success_clears_the_count(redis_client: redis.Redis) -> None:
    attempts = verification.Attempts(redis_client, limit=2, cooldown=60)
    assert attempts.take("A-1").failures == 1
    attempts.succeeded("A-1")
    assert attempts.take("A-1").failures == 1 and attempts.take("A-1").failures == 2


def test_the_check_opens_again_after_the_cool_down(redis_client: redis.Redis) -> None:
    attempts = verification.Attempts(redis_client, limit=2, cooldown=1)
    attempts.take("A-1"), attempts.take("A-1")
    assert not attempts.take("A-1").admitted
    time.sleep(2.1)
    assert attempts.closed_for("A-1") == 0 and attempts.take("A-1") == verification.Attempt(True, 1, 1)


def test_simultaneous_attempts_get_no_more_tries_than_the_limit(redis_address) -> None:  # noqa: ANN001 - fixture
    """Guesses sent at the same moment from many conversations (each its own Rasa lock): the limit holds."""
    client = redis.Redis(host=redis_address.host, port=redis_address.port)
    client.delete(verification.KEY + "race")
    start, results = threading.Barrier(24), []

    def guess() -> None:
        attempts = verification.Attempts(redis.Redis(host=redis_address.host, port=redis_address.port), 2, 60)
        start.wait()
        results.append(attempts.take("race").admitted)

    threads = [threading.Thread(target=guess) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 2 and len(results) == 24
    client.delete(verification.KEY + "race")


# --- lapse and wording -----------------------------------------------------------------------------------------

def _events(*said: tuple[str, float]) -> list[dict]:
    return [{"event": kind, "timestamp": at} for kind, at in said]


def test_the_silence_before_the_latest_message_decides() -> None:
    conversation = _events(("user", 100.0), ("bot", 101.0), ("user", 110.0), ("bot", 111.0))
    assert verification.quiet_before_latest_message(conversation) == 9.0  # the latest message: 110 after 101
    assert not verification.lapsed(conversation, idle=60)
    late = [*conversation, {"event": "action", "timestamp": 500.0}, *_events(("user", 1000.0))]
    assert verification.lapsed(late, idle=60)
    # later actions of the same turn may have spoken already: the silence is still the one before the message
    assert verification.quiet_before_latest_message([*late, *_events(("bot", 1000.5))]) == 889.0
    assert verification.quiet_before_latest_message(_events(("user", 5.0))) == 0.0
    assert verification.quiet_before_latest_message([]) == 0.0


def test_waits_are_said_in_whole_minutes_in_each_language() -> None:
    from duebot.actions.locale import load_locale

    en, zh = load_locale("en").data["minutes"], load_locale("zh").data["minutes"]
    assert [verification.wait_text(en, s) for s in (1, 60, 61, 1800)] == ["1 minute", "1 minute", "2 minutes",
                                                                          "30 minutes"]
    assert verification.wait_text(zh, 1800) == "30分钟"


# --- end to end: the real stack, the real SMS webhook and web chat ----------------------------------------------

CHANNEL_KEY = secrets.token_urlsafe(32)  # the stack's and this process's: the channels here sign for the actions
COOLDOWN, IDLE = 10, 8
served = served_fixture(env={"DUEBOT_CHANNEL_SECRET": CHANNEL_KEY, "DUEBOT_VERIFICATION_COOLDOWN": str(COOLDOWN),
                             "DUEBOT_VERIFICATION_IDLE": str(IDLE), "DUEBOT_EVIDENCE_ASSESS_AFTER": "2"})
PHONES = {"A-1": "+14155550101", "A-2": "+12125550102", "A-3": "+13125550103", "A-4": "+16025550104"}
CLOSED = ("paused", "could not confirm your identity")
PERSON = "Would you like a member of our team to help you"


class Stack:
    def __init__(self, served: Served, url: str, fake: TwilioFake, client: redis.Redis) -> None:
        self.served, self.url, self.fake, self.redis = served, url, fake, client
        self.transcript: list[str] = []

    def _said(self, who: str, text: str, replies: list[str]) -> str:
        self.transcript += [f"{who}: {text}", *(f"duebot: {r}" for r in replies)]
        return " ".join(replies)

    def sms(self, account: str, body: str) -> str:
        """The subscriber of `account` texts duebot: Twilio's signed webhook, the real SMS channel."""
        status, reply, _ = self.fake.inbound_sms(f"{self.url}/twilio/sms", PHONES[account], body)
        assert status == 200, reply
        said = [html.unescape(m) for m in re.findall(r"<Message>(.*?)</Message>", reply.decode(), re.S)]
        return self._said(f"sms {account}", body, said)

    def chat(self, account: str, text: str) -> str:
        """The web chat's API with the account's signed link, as the page posts it."""
        reply = httpx.post(f"{self.url}/chat/api/message", json={"text": text}, timeout=60,
                           headers={"Authorization": f"Bearer {webchat.make_token(account)}"})
        assert reply.status_code == 200, reply.text
        return self._said(f"chat {account}", text, [m["text"] for m in reply.json()["messages"]])

    def rasa(self, sender: str, account: str, text: str, channel: str) -> str:
        """Straight to Rasa's REST webhook, signed as a channel would (a new conversation, another channel)."""
        metadata = {"account_id": account, "channel": channel, "account_sig": account_signature(sender, account)}
        return self._said(f"{channel} {sender}", text, self.served.say(sender, text, metadata))

    def tracker(self, sender: str) -> dict:
        """Rasa's tracker of a conversation (its HTTP API, with the stack's token)."""
        token = secret("rasa_token", load_settings().changed(DUEBOT_DATA_DIR=self.served.data_dir))
        reply = httpx.get(f"{self.served.rasa}/conversations/{quote(sender, safe=':')}/tracker",
                          params={"token": token, "include_events": "ALL"}, timeout=30)
        reply.raise_for_status()
        return reply.json()


@pytest.fixture(scope="module")
def stack(served: Served, redis_address) -> Iterator[Stack]:  # noqa: ANN001 - conftest fixture
    client = redis.Redis(host=redis_address.host, port=redis_address.port)
    with pytest.MonkeyPatch.context() as patch:
        # this process signs the account for the stack's actions (RasaClient) and makes and checks chat links
        patch.setenv("DUEBOT_CHANNEL_SECRET", CHANNEL_KEY)
        patch.setenv("DUEBOT_CHAT_SECRET", secrets.token_urlsafe(32))
        store = AccountStore(f"sqlite:///{served.data_dir / 'duebot.sqlite3'}")  # the action server's store
        app = create_app()
        app.include_router(twilio_sms.router)
        app.include_router(webchat.router)
        server = ServerThread(app)
        with TwilioFake(FakeConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, numbers=(FROM,))) as fake:
            sms = twilio_sms.SmsChannel(sms_settings(server.url, fake.url), store, client, RasaClient(served.rasa),
                                        EvidenceInbox(client))
            chat = webchat.ChatChannel(RasaClient(served.rasa), client)
            app.dependency_overrides[twilio_sms.get_channel] = lambda: sms
            app.dependency_overrides[webchat.get_chat] = lambda: chat
            with server:
                yield Stack(served, server.url, fake, client)


def _no_rasa_command_was_obeyed(tracker: dict) -> None:
    intents = [(e.get("parse_data") or {}).get("intent", {}).get("name") for e in tracker["events"]
               if e["event"] == "user"]
    assert len(intents) >= 4, tracker  # the conversation, not an empty tracker Rasa made up for a wrong id
    assert not {"restart", "back", "session_start"} & set(intents), intents
    assert not {"restart", "rewind", "undo"} & {e["event"] for e in tracker["events"]}  # Restarted, reverted
    assert not any(e["event"] == "action" and e.get("name") in ("action_restart", "action_back")
                   for e in tracker["events"])


def test_commands_over_sms_neither_rewind_nor_reset_a_failed_check(stack: Stack) -> None:
    """The finding: /back undid a failed attempt and /restart cleared the lock-out, so the ID could be guessed
    without limit and the debt disclosed."""
    assert "last four digits" in stack.sms("A-1", "hello"), stack.transcript
    assert "try once more" in stack.sms("A-1", "1111"), stack.transcript
    stack.sms("A-1", "/back")  # Rasa's action_back would take the failure back; read as words ("back")
    assert int(stack.redis.get(verification.KEY + "A-1")) == 1
    assert "last four digits" in stack.sms("A-1", "hello"), stack.transcript
    closed = stack.sms("A-1", "2222")
    assert "could not confirm your identity" in closed and PERSON in closed, stack.transcript
    for command in ("/restart", "/session_start", " /back", '/inform{"digits": "4472"}', "EXTERNAL: /restart"):
        stack.sms("A-1", command)
    reply = stack.sms("A-1", "4472")  # the right answer, while the check is closed, is not even compared
    assert "paused" in reply and PERSON in reply, stack.transcript
    assert "230.50" not in " ".join(stack.transcript), stack.transcript
    tracker = stack.tracker("sms:A-1")
    _no_rasa_command_was_obeyed(tracker)
    written = [e["metadata"].get("text_as_written") for e in tracker["events"] if e["event"] == "user"]
    assert "/restart" in written and '/inform{"digits": "4472"}' in written  # what was sent is still on record


def test_failures_add_up_across_channels_and_conversations_then_the_check_reopens(stack: Stack) -> None:
    """A new sender id or another channel gives no more tries; the lock-out is a cool-down with a person offered,
    not the end of the SMS thread."""
    assert "last four digits" in stack.chat("A-2", "hello"), stack.transcript
    assert "try once more" in stack.chat("A-2", "1111"), stack.transcript
    stack.chat("A-2", "/restart")
    assert "last four digits" in stack.sms("A-2", "hello"), stack.transcript  # one failure so far: still open
    closed = stack.sms("A-2", "2222")  # the second failure, on another channel: the limit
    failed_at = time.monotonic()
    assert "could not confirm your identity" in closed and "1 minute" in closed and PERSON in closed, \
        stack.transcript
    call = f"call-{secrets.token_hex(4)}"  # a new conversation: a phone call, through Rasa's REST channel
    assert "May I speak with Mark" in stack.rasa(call, "A-2", "hello", "voice"), stack.transcript
    assert "paused" in stack.rasa(call, "A-2", "yes, speaking", "voice"), stack.transcript
    assert "paused" in stack.rasa(call, "A-2", "four four seven two", "voice"), stack.transcript
    assert "paused" in stack.rasa(f"chat-new-{secrets.token_hex(4)}", "A-2", "4472", "chat"), stack.transcript
    assert "paused" in stack.chat("A-2", "4472"), stack.transcript
    assert "580.00" not in " ".join(stack.transcript), stack.transcript
    assert "passing you to a member of our team" in stack.chat("A-2", "yes please"), stack.transcript
    _no_rasa_command_was_obeyed(stack.tracker("chat:A-2"))

    time.sleep(max(0.0, COOLDOWN + 1.5 - (time.monotonic() - failed_at)))
    disclosure = stack.sms("A-2", "4472")  # the same SMS thread, after the cool-down
    assert "identity is confirmed" in disclosure and "$580.00" in disclosure, stack.transcript


def test_verification_lapses_after_the_idle_time(stack: Stack) -> None:
    """Whoever holds the phone or the link next is not verified by the one before."""
    stack.chat("A-3", "hello")
    assert "$6,200.00" in stack.chat("A-3", "4472"), stack.transcript
    assert "$6,200.00" in stack.chat("A-3", "how much do I owe?"), stack.transcript
    time.sleep(IDLE + 1.5)
    again = stack.chat("A-3", "how much do I owe?")
    assert "6,200" not in again and "confirm I am speaking with the account holder" in again, stack.transcript
    assert "$6,200.00" in stack.chat("A-3", "4472"), stack.transcript


def test_verification_is_never_carried_into_a_new_session(stack: Stack) -> None:
    stack.sms("A-4", "hello")
    assert "$1,200.00" in stack.sms("A-4", "4472"), stack.transcript
    assert stack.tracker("sms:A-4")["slots"]["verified"] is True
    # A new session, as Rasa starts one after `session_expiration_time` (bot/domain.yml). Rasa's own REST webhook
    # is the only way to send the command: the channels turn it into words.
    stack.rasa("sms:A-4", "A-4", "/session_start", "sms")
    slots = stack.tracker("sms:A-4")["slots"]
    assert slots["verified"] is False and slots["account_id"] == "A-4", slots
    reply = stack.sms("A-4", "how much do I owe?")
    assert "1,200" not in reply and "confirm I am speaking with the account holder" in reply, stack.transcript
