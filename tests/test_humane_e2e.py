"""Humane with every subscriber, in both languages (issue 21), through the real stack: `duebot serve` with its en
and zh Rasa servers, the emotion service and the action server's conduct guard; SMS through the Twilio fake and the
signed webhook, and the web chat's HTTP API. What each conversation must and must not say is read from the replies;
what it must do, from the account store."""

# ruff: noqa: F811 - the tests take the imported `stack` fixture by its name
from __future__ import annotations

import re

import httpx
import pytest

from duebot.channels.chat import webchat
from tests.served import import_fixture_accounts, served_fixture
from tests.test_zh_conversation import Stack, _import_zh_accounts, stack  # noqa: F401 - built on this module's `served`

pytestmark = pytest.mark.rasa


def _english_and_chinese_accounts(data_dir) -> None:  # noqa: ANN001 - a Path
    import_fixture_accounts(data_dir)
    _import_zh_accounts(data_dir)


served = served_fixture(languages=("en", "zh"), accounts=_english_and_chinese_accounts)

# Payment talk, either language: none of it may follow a crisis, a bereavement or a legal threat.
PAYMENT = re.compile(r"pay|payment|balance|\$|installment|缴费|还款|分期|欠费|元", re.IGNORECASE)


def _chat(stack: Stack, account: str, transcript: list[str]):  # noqa: ANN202 - a small closure
    token = webchat.make_token(account)

    def say(text: str) -> str:
        reply = httpx.post(f"{stack.server.url}/chat/api/message", json={"text": text},
                           headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert reply.status_code == 200, reply.text
        said = " ".join(m["text"] for m in reply.json()["messages"])
        transcript.extend([f"subscriber: {text}", f"duebot: {said}"])
        return said

    return say


def _events(stack: Stack, account: str, kind: str) -> list:
    return [e for e in stack.store.events(account) if e.kind == kind]


def test_a_legal_threat_by_sms_ends_collection_with_a_handoff(stack: Stack) -> None:
    phone, transcript = "+14155550101", []  # A-1, English
    before = len(_events(stack, "A-1", "handoff"))
    stack.text(phone, "hello", transcript)
    stack.text(phone, "4472", transcript)
    reply = stack.text(phone, "I'm not paying a cent, my lawyer will be in touch and I'll see you in court", transcript)
    assert "noted" in reply and "member of our team" in reply and not PAYMENT.search(reply), transcript
    handoffs = _events(stack, "A-1", "handoff")[before:]
    assert [h.detail["reason"] for h in handoffs] == ["legal_threat"], transcript
    later = stack.text(phone, "ok how do I pay then", transcript)
    assert "nothing you need to do right now" in later and "link" not in later, transcript


def test_a_chinese_legal_threat_by_web_chat_goes_to_a_person(stack: Stack) -> None:
    transcript: list[str] = []
    say = _chat(stack, "Z-3", transcript)
    before = len(_events(stack, "Z-3", "handoff"))
    say("您好")
    say("四四七二")
    reply = say("你们再催我就去工信部投诉，还要起诉你们")
    assert "已经记录" in reply and not PAYMENT.search(reply), transcript
    assert [h.detail["reason"] for h in _events(stack, "Z-3", "handoff")[before:]] == ["legal_threat"], transcript


def test_crisis_language_gets_the_helpline_and_a_person_in_english(stack: Stack) -> None:
    transcript: list[str] = []
    say = _chat(stack, "A-2", transcript)  # us pack: the 988 lifeline
    say("hi")
    reply = say("I can't pay any of this, honestly I don't want to live anymore")
    assert "988" in reply and "member of our team" in reply and not PAYMENT.search(reply), transcript
    assert any(h.detail["reason"] == "crisis" for h in _events(stack, "A-2", "handoff")), transcript
    assert stack.store.get_account("A-2").status == "human_review"


def test_crisis_language_gets_the_helpline_and_a_person_in_mandarin_by_sms(stack: Stack) -> None:
    phone, transcript = "+8613910997777", []  # Z-1, cn pack: the national helpline 12356
    reply = stack.text(phone, "我真的活不下去了，欠的钱也还不上", transcript)
    assert "12356" in reply and "工作人员" in reply, transcript
    assert not re.search(r"缴费|还款|分期|\d+\.\d\d元", reply), transcript
    assert any(h.detail["reason"] == "crisis" for h in _events(stack, "Z-1", "handoff")), transcript


def test_a_bereaved_relative_is_told_nothing_and_the_account_is_paused(stack: Stack) -> None:
    phone, transcript = "+8613800135555", []  # Z-2
    reply = stack.text(phone, "机主是我父亲，他上个月去世了，现在这个手机是我在用", transcript)
    assert "节哀" in reply and not PAYMENT.search(reply.replace("回复TD退订", "")), transcript
    assert stack.store.get_account("Z-2").status == "human_review"
    (review,) = [e for e in _events(stack, "Z-2", "human_review") if e.detail["reason"] == "bereavement"]
    assert review.conversation_id == "sms:Z-2"
    again = stack.text(phone, "那欠了多少钱？", transcript)
    assert not re.search(r"\d+\.\d\d元", again), transcript  # nothing disclosed, whatever is asked next


def test_an_english_bereavement_by_web_chat(stack: Stack) -> None:
    transcript: list[str] = []
    say = _chat(stack, "A-4", transcript)
    reply = say("Hello, my mother passed away last week and this was her phone")
    assert "sorry for your loss" in reply and not PAYMENT.search(reply), transcript
    assert stack.store.get_account("A-4").status == "human_review"


@pytest.mark.parametrize("line", ["are you a bot? you useless idiots", "who the hell is this, fuck off"])
def test_abuse_read_as_any_intent_is_de_escalated(stack: Stack, line: str) -> None:
    transcript: list[str] = []
    say = _chat(stack, "A-3", transcript)
    reply = say(line)
    assert "speak with a person" in reply, transcript
    assert "automated assistant of your telephone operator. You can ask" not in reply, transcript
    assert not PAYMENT.search(reply), transcript  # not verified: no word of a bill


def test_chinese_abuse_read_as_any_intent_is_de_escalated(stack: Stack) -> None:
    transcript: list[str] = []
    say = _chat(stack, "Z-4", transcript)
    reply = say("你们是机器人吧？一群骗子，滚")
    assert "转接" in reply and not PAYMENT.search(reply), transcript
