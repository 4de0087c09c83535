"""Issue 21: an opt-out in either language on every channel, and the SMS opt-out notice in the conversation's language.

Through the real webhook code (FastAPI TestClient, Twilio-signed requests, a real redis-server, the account store);
the dialogue model is a stand-in that answers every text the same, so what reaches it is visible."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from duebot.accounts.importer import import_csv
from duebot.accounts.store import AccountStore
from duebot.channels.chat import webchat
from duebot.channels.rasa_client import RasaRouter
from duebot.channels.sms import webhook as twilio_sms
from duebot.channels.sms.keywords import Keyword, KeywordMatcher, cease_contact
from duebot.channels.twilio_signature import sign
from duebot.evidence.inbox import EvidenceInbox
from duebot.web import create_app
from tests.channels.conftest import AUTH_TOKEN, FROM, sms_settings

PUBLIC = "https://duebot.example"
JANE = "+14155550101"  # A-1, us pack, English
CN_EN, CN_ZH = "+8613800000001", "+8613800000002"  # cn pack, one English conversation and one Chinese
EXTRA = ("account_id,name,phone,amount,due_date,currency,id_last4,birth_date,segment,timezone,pack,line_type,"
         "consent_ai_voice,consent_sms,language\n"
         f"C-EN,Zhou Min,{CN_EN},120.00,2026-10-25,CNY,1111,1990-01-01,cash_flow,Asia/Shanghai,cn,mobile,true,true,en\n"
         f"C-ZH,周敏,{CN_ZH},120.00,2026-10-25,CNY,2222,1990-01-01,cash_flow,Asia/Shanghai,cn,mobile,true,true,zh\n")


class Dialogue:
    """Stands in for a Rasa server: records what reaches it and answers with payment options."""

    def __init__(self, answer: str) -> None:
        self.answer, self.calls = answer, []  # type: ignore[var-annotated]

    async def ask(self, sender: str, text: str, account_id: str, channel: str, **_: Any) -> list[dict[str, Any]]:
        self.calls.append((sender, text))
        return [{"text": self.answer}]


class Sms:
    def __init__(self, client: TestClient, channel: twilio_sms.SmsChannel, en: Dialogue, zh: Dialogue) -> None:
        self.client, self.channel, self.en, self.zh, self.n = client, channel, en, zh, 0

    def text(self, from_: str, body: str) -> str:
        self.n += 1
        params = {"MessageSid": f"SM{self.n:032d}", "From": from_, "To": FROM, "Body": body}
        signature = sign(f"{PUBLIC}/twilio/sms", params, AUTH_TOKEN)
        response = self.client.post("/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200, response.text
        return response.text


@pytest.fixture
def sms(store: AccountStore, redis_client: redis.Redis, tmp_path: Path) -> Sms:
    csv = tmp_path / "cn.csv"
    csv.write_text(EXTRA, encoding="utf-8")
    assert import_csv(csv, store, default_region="CN").created == 2
    en, zh = Dialogue("You can pay in full or set up a plan."), Dialogue("您可以全额缴费或办理分期。")
    channel = twilio_sms.SmsChannel(sms_settings(PUBLIC, "http://127.0.0.1:9"), store, redis_client,
                                    RasaRouter({"en": en, "zh": zh}),  # type: ignore[dict-item]
                                    EvidenceInbox(redis_client))
    app = create_app()
    app.include_router(twilio_sms.router)
    app.dependency_overrides[twilio_sms.get_channel] = lambda: channel
    return Sms(TestClient(app), channel, en, zh)


# ---------------------------------------------------------------- the rule

@pytest.mark.parametrize("said", [
    "不要再打了", "别再联系我", "停止发送", "取消订阅", "拒收", "退订谢谢", "以后不要再联系我了！", "别给我打电话",
    "麻烦停止联系我", "不要打我手机", "电话短信都别来了", "ＳＴＯＰ", "stop pls", "Please STOP.", "stop texting me",
    "I'll pay Friday, stop calling me", "don't call me again", "never text me again", "take me off your list",
    "if you don't stop calling me I'll complain", "no more texts",
])
def test_cease_contact_in_either_language(said: str) -> None:
    assert cease_contact(said), said
    assert KeywordMatcher(phrases=True).classify(said) is Keyword.OPT_OUT


@pytest.mark.parametrize("said", [
    "don't stop the service", "please don't stop the plan", "I can't stop worrying", "don't stop texting me",
    "stop the late fee", "I want to end my contract early", "if you don't call me back I'll pay late",
    "why don't you call me", "I'll stop by the store", "不要停止服务", "停止服务", "我不想退订", "别取消订阅",
    "不要停止发送", "我想退订流量包", "别发火", "不要打折", "不要打扰你了，我明天还", "我明天还款", "好的谢谢",
])
def test_mentioning_stopping_is_not_an_opt_out(said: str) -> None:
    assert not cease_contact(said), said
    assert KeywordMatcher(phrases=True).classify(said) is None


def test_phrases_are_off_for_the_carrier_keyword_layer() -> None:
    plain = KeywordMatcher()  # Twilio's Advanced Opt-Out (the demo fake) knows only whole-message keywords
    assert plain.classify("不要再打了") is None and plain.classify("STOP") is Keyword.OPT_OUT
    assert KeywordMatcher(phrases=True).classify("START") is Keyword.OPT_IN


# ---------------------------------------------------------------- SMS

def test_a_chinese_cease_contact_opts_out_an_english_account_over_sms(sms: Sms) -> None:
    reply = sms.text(JANE, "不要再打了")
    assert "you are unsubscribed" in reply  # answered in the conversation's (the account's) language
    assert sms.channel.store.is_opted_out(JANE)
    assert sms.en.calls == sms.zh.calls == []  # it never reached the dialogue
    assert sms.text(JANE, "what are my options?") == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    assert sms.en.calls == []


def test_english_phrases_opt_out_a_chinese_account_and_mentions_do_not(sms: Sms) -> None:
    sms.text(CN_ZH, "don't stop the service")
    assert not sms.channel.store.is_opted_out(CN_ZH) and len(sms.zh.calls) == 1
    reply = sms.text(CN_ZH, "Please stop texting me")
    assert sms.channel.store.is_opted_out(CN_ZH) and len(sms.zh.calls) == 1
    assert "您已成功退订" in reply  # in the conversation's (the account's) language


# ---------------------------------------------------------------- notices per language

def test_the_opt_out_notice_follows_the_conversation_language(sms: Sms) -> None:
    english = sms.text(CN_EN, "how can I pay?")
    assert "You can pay in full" in english and "Reply STOP to opt out." in english and "回复TD退订" not in english
    chinese = sms.text(CN_ZH, "怎么缴费")
    assert "您可以全额缴费" in chinese and "回复TD退订" in chinese and "Reply STOP" not in chinese
    us = sms.text(JANE, "how can I pay?")
    assert "Reply STOP to opt out." in us and "回复" not in us
    assert "回复TD退订" in sms.text(CN_ZH, "帮助")


def test_packs_carry_a_notice_per_language_and_stay_backward_compatible() -> None:
    from duebot.policies.packs import load_pack, parse_pack

    cn, us = load_pack("cn"), load_pack("us")
    assert cn.sms_opt_out_notice == "回复TD退订" and cn.notice_for("en") == "Reply STOP to opt out."
    assert cn.notice_for("zh") == "回复TD退订" and cn.notice_for(None) == "回复TD退订"
    assert us.notice_for("en") == us.sms_opt_out_notice == "Reply STOP to opt out."
    assert "reply stop to opt out." in (us.notice_for("zh") or "").casefold()  # what the us gate rule looks for
    old = parse_pack({**cn.doc, "sms_opt_out_notice": "回复TD退订"})  # a pack written before: one string
    assert old.notice_for("en") == old.notice_for("zh") == "回复TD退订"


# ---------------------------------------------------------------- web chat

def _chat(store: AccountStore) -> tuple[TestClient, Dialogue]:
    dialogue = Dialogue("You can pay in full or set up a plan.")
    app = create_app()
    app.include_router(webchat.router)
    chat = webchat.ChatChannel(dialogue, None, store=store)  # type: ignore[arg-type]
    app.dependency_overrides[webchat.get_chat] = lambda: chat
    return TestClient(app), dialogue


def test_a_chat_opt_out_ends_the_chat_and_later_messages_get_the_opted_out_answer(store: AccountStore) -> None:
    client, dialogue = _chat(store)
    headers = {"Authorization": f"Bearer {webchat.make_token('A-1')}"}

    def say(text: str) -> str:
        response = client.post("/chat/api/message", json={"text": text}, headers=headers)
        assert response.status_code == 200
        (message,) = response.json()["messages"]
        return message["text"]

    assert "pay in full" in say("hi")
    assert "this chat has ended" in say("别再联系我")  # a Chinese request on an English account
    assert store.is_opted_out(JANE)  # the store records it: every channel holds
    assert [e.kind for e in store.events("A-1")].count("opt_out") == 1
    later = say("what are my payment options?")
    assert "opted out" in later and "pay" not in later.replace("payment", "")
    assert dialogue.calls == [("chat:A-1", "hi")]


def test_an_sms_opt_out_closes_the_chat_and_cancel_in_chat_is_not_an_opt_out(store: AccountStore) -> None:
    client, dialogue = _chat(store)
    headers = {"Authorization": f"Bearer {webchat.make_token('A-2')}"}
    reply = client.post("/chat/api/message", json={"text": "cancel"}, headers=headers).json()
    assert "pay in full" in reply["messages"][0]["text"]  # a dialogue word in chat, not a cease request
    store.set_opt_out("+12125550102", True, channel="sms", source="keyword:STOP")
    reply = client.post("/chat/api/message", json={"text": "hello"}, headers=headers).json()
    assert "opted out" in reply["messages"][0]["text"] and len(dialogue.calls) == 1
