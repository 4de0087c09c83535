"""Mandarin conversations through the real stack: `duebot serve` with its second (zh) Rasa server, the action
server, Redis and the evidence writer; SMS through the real Twilio client against the Twilio fake and the signed
webhook; every path of the zh test stories also checked for what the actions say in Chinese."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis

from duebot.accounts.importer import import_csv
from duebot.accounts.store import AccountStore
from duebot.actions.locale import load_locale
from duebot.channels.chat import webchat
from duebot.channels.rasa_client import RasaClient, RasaRouter
from duebot.channels.sms import webhook as twilio_sms
from duebot.channels.sms.segments import segment_info
from duebot.channels.sms.sender import SmsSender, twilio_client
from duebot.demo.twilio_fake import FakeConfig, TwilioFake
from duebot.evidence.inbox import EvidenceInbox
from duebot.policies.audit import JsonlAuditSink
from duebot.policies.reserve import LiveGate
from duebot.secrets import account_signature
from duebot.settings import load_settings
from duebot.training.train import model_path, rasa_env
from duebot.web import create_app
from tests.channels.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM, ServerThread, sms_settings
from tests.served import Served, served_fixture, wait_for_evidence

ZH_ACCOUNTS = Path(__file__).parent / "fixtures" / "accounts_zh.csv"
SHANGHAI = ZoneInfo("Asia/Shanghai")
ZH = load_locale("zh")


def _import_zh_accounts(data_dir: Path) -> None:
    report = import_csv(ZH_ACCOUNTS, AccountStore(f"sqlite:///{data_dir / 'duebot.sqlite3'}"))
    assert report.created == 4 and not report.errors, report


class Stack:
    def __init__(self, served: Served, zh_url: str, server: ServerThread, fake: TwilioFake, sender: SmsSender,
                 store: AccountStore) -> None:
        self.served, self.zh_url, self.server, self.fake, self.sender, self.store = (
            served, zh_url, server, fake, sender, store)

    def text(self, phone: str, body: str, transcript: list[str]) -> str:
        """The subscriber texts duebot's number; returns what duebot answered (TwiML)."""
        status, reply, _ = self.fake.inbound_sms(f"{self.server.url}/twilio/sms", phone, body)
        assert status == 200, reply
        said = " ".join(re.findall(r"<Message>(.*?)</Message>", reply.decode(), re.S))
        transcript.extend([f"subscriber: {body}", f"duebot: {said}"])
        return said


served = served_fixture(languages=("en", "zh"), env={"DUEBOT_EVIDENCE_ASSESS_AFTER": "2", "TWILIO_AUTH_TOKEN": "",
                                                     "TWILIO_FROM_NUMBER": "", "TWILIO_MESSAGING_SERVICE_SID": ""},
                        accounts=_import_zh_accounts)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_address, served: Served) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("zh-conversation")
    zh_url = served.rasa_urls["zh"]
    client = redis.Redis(host=redis_address.host, port=redis_address.port)
    store = AccountStore(f"sqlite:///{served.data_dir / 'duebot.sqlite3'}")
    app = create_app()
    server = ServerThread(app)
    with TwilioFake(FakeConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, numbers=(FROM,))) as fake:
        settings_sms = sms_settings(server.url, fake.url)
        router = RasaRouter({"en": RasaClient(served.rasa), "zh": RasaClient(zh_url)})
        channel = twilio_sms.SmsChannel(settings_sms, store, client, router, EvidenceInbox(client))
        app.dependency_overrides[twilio_sms.get_channel] = lambda: channel
        chat = webchat.ChatChannel(router, client, store=store)  # the account's language picks the server
        app.dependency_overrides[webchat.get_chat] = lambda: chat
        # noon in Shanghai: inside the cn pack's 08:00-22:00
        noon = dt.datetime.now(SHANGHAI).replace(hour=12, minute=0, second=0, microsecond=0).timestamp()
        gate = LiveGate(client, "cn", sink=JsonlAuditSink(tmp / "gate.jsonl"), prefix=f"zh:{time.time_ns()}")
        sender = SmsSender(settings_sms, gate, store, twilio_client(settings_sms), client, EvidenceInbox(client),
                           clock=lambda: noon)
        with server:
            yield Stack(served, zh_url, server, fake, sender, store)


def _today() -> dt.date:
    return dt.datetime.now(SHANGHAI).date()


def test_chinese_sms_from_the_gated_reminder_to_a_recorded_promise(stack: Stack) -> None:
    reminder = stack.sender.send_reminder("Z-1")
    assert reminder.sent, reminder
    assert reminder.body.startswith("【账单助手】") and reminder.body.endswith("回复TD退订"), reminder.body
    assert reminder.encoding == "UCS-2" and reminder.segments == segment_info(reminder.body).segments
    sent = [m for m in stack.fake.snapshot()["messages"] if m["sid"] == reminder.sid]
    assert sent and sent[0]["body"] == reminder.body and sent[0]["to"] == "+8613910997777"

    phone, transcript = "+8613910997777", []
    assert "身份证号码的最后四位" in stack.text(phone, "你好", transcript), transcript
    disclosure = stack.text(phone, "四四七二", transcript)
    deadline = _today() + dt.timedelta(days=14)
    assert "身份已核实" in disclosure and "210.00元" in disclosure, transcript
    assert f"{deadline.month}月{deadline.day}日" in disclosure and "分三期免息还款" in disclosure, transcript
    next_friday = _today() - dt.timedelta(days=_today().weekday()) + dt.timedelta(days=11)  # 下周五
    confirm = stack.text(phone, "我下周五还", transcript)
    assert f"您将在{ZH.day(next_friday)}前缴清210.00元" in confirm, transcript
    done = stack.text(phone, "对", transcript)
    assert "已记录" in done and done.endswith("回复TD退订"), transcript  # the cn pack's opt-out wording
    promise = [p for p in stack.store.promises("Z-1") if p.conversation_id == "sms:Z-1"]
    assert promise and promise[-1].due_date == next_friday and str(promise[-1].amount) == "210.00", transcript
    # One thread, one evidence conversation: the reminder, every Chinese turn, the outcomes, the three elements.
    records = wait_for_evidence(stack.served, "sms:Z-1", lambda rs: any(r.kind == "three_elements" for r in rs))
    assert any(r.kind == "turn" and r.body.get("message_sid") == reminder.sid for r in records)
    assert [r.body["type"] for r in records if r.kind == "outcome"] == ["identity_verified", "disclosure", "promise"]
    verdict = [r for r in records if r.kind == "three_elements"][-1].body
    assert verdict["flagged_for_qa"] is False and verdict["amount"] == "210.00元", verdict


def test_the_td_keyword_answers_in_chinese_and_holds_every_contact(stack: Stack) -> None:
    phone, transcript = "+8613600003333", []
    reply = stack.text(phone, "退订", transcript)
    assert "您已成功退订" in reply and "START" in reply, transcript
    assert stack.store.is_opted_out(phone)
    assert stack.text(phone, "你好", transcript) == "", transcript  # opted out: no answer at all
    refused = stack.sender.send_reminder("Z-4")
    assert not refused.sent and "OPTED_OUT" in refused.reasons, refused


def test_web_chat_routes_a_zh_account_to_the_zh_server(stack: Stack) -> None:
    token = webchat.make_token("Z-3")

    def say(text: str) -> str:
        reply = httpx.post(f"{stack.server.url}/chat/api/message", json={"text": text},
                           headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert reply.status_code == 200, reply.text
        return " ".join(m["text"] for m in reply.json()["messages"])

    assert "身份证号码的最后四位" in say("您好")
    assert "身份已核实" in say("四四七二")
    assert "您将在" in say("15号前能还清")


class ZhChat:
    """One Chinese conversation through the zh Rasa server's REST webhook, as the router sends it."""

    counter = 0

    def __init__(self, stack: Stack, account: str) -> None:
        ZhChat.counter += 1
        self.url, self.sender = f"{stack.zh_url}/webhooks/rest/webhook", f"{account}-zh-{ZhChat.counter}"
        self.metadata = {"account_id": account, "channel": "chat", "language": "zh"}
        self.transcript: list[str] = []

    def __call__(self, text: str) -> str:
        metadata = {**self.metadata, "account_sig": account_signature(self.sender, self.metadata["account_id"])}
        reply = httpx.post(self.url, json={"sender": self.sender, "message": text, "metadata": metadata}, timeout=30)
        reply.raise_for_status()
        said = [m["text"] for m in reply.json() if "text" in m]
        self.transcript += [f"subscriber: {text}", *(f"duebot: {s}" for s in said)]
        return " ".join(said)


def test_nothing_about_the_debt_before_verification_and_two_failures_end_it(stack: Stack) -> None:
    chat = ZhChat(stack, "Z-1")  # two failures pause Z-1's checks (a Redis count per account): later tests use Z-3
    for text in ("你好", "我欠了多少钱？", "请问你是哪位？", "我现在就交"):
        said = chat(text)
        assert "元" not in said and "欠费" not in said, chat.transcript
    assert "不一致" in chat("1111"), chat.transcript
    assert "暂时无法核实您的身份" in chat("2222"), chat.transcript


def test_installments_in_chinese(stack: Stack) -> None:
    chat = ZhChat(stack, "Z-3")
    chat("你好")
    chat("4472")
    offer = chat("能不能分三期还")
    assert "三期免息" in offer and offer.count("70.00元") == 3 and "；" in offer, chat.transcript
    assert "三期还款计划已为您办好" in chat("可以"), chat.transcript
    assert any(p.conversation_id == chat.sender for p in stack.store.plans("Z-3"))


def test_partial_payment_half_now_the_rest_at_the_end_of_the_month(stack: Stack) -> None:
    chat = ZhChat(stack, "Z-3")
    chat("你好")
    chat("4472")
    assert "先还多少" in chat("我今天只能先还一部分"), chat.transcript
    assert "剩下的105.00元" in chat("先还一半"), chat.transcript
    today = _today()
    month_end = (today.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    assert f"剩余的105.00元在{ZH.day(month_end)}前缴清" in chat("月底"), chat.transcript
    # the stack's action server has no SMS carrier (no TWILIO_*): the rest is recorded, the link said not sent
    assert "105.00元的缴费链接暂时没能通过短信发送" in chat("是的"), chat.transcript


def test_dispute_then_opt_out_in_chinese(stack: Stack) -> None:
    chat = ZhChat(stack, "Z-2")
    chat("你好")
    disclosure = chat("4472")
    assert "580.00元" in disclosure and "分三期" not in disclosure, chat.transcript  # malicious: no plan offered
    assert "哪里有问题" in chat("这些168的电话我从来没打过，费用不对"), chat.transcript
    opened = chat("168信息费不是我订的，我根本没用过")
    case = re.search(r"工单(\S+?)。", opened)
    assert case and "催缴会暂停" in opened, chat.transcript
    disputes = [d for d in stack.store.disputes("Z-2") if d.case_number == case.group(1)]
    assert disputes and disputes[0].reason == "unrecognised_charges"
    assert "已为您办理退订" in chat("以后不要再联系我了"), chat.transcript
    assert stack.store.is_opted_out("+8613800135555")


def test_handoff_and_goodbye_in_chinese(stack: Stack) -> None:
    chat = ZhChat(stack, "Z-3")
    chat("你好")
    assert "转接人工客服" in chat("我要找人工客服"), chat.transcript
    assert "再见" in chat("好的，再见"), chat.transcript  # utter_goodbye, uttered by Rasa itself


@pytest.mark.rasa("zh")
def test_rasa_zh_test_stories_pass(tmp_path: Path) -> None:
    settings = load_settings()
    result = subprocess.run(
        [str(settings.rasa_bin), "test", "core", "--stories",
         str(settings.bot_dir / "tests" / "test_stories_zh.yml"), "--model", str(model_path(settings, "zh")),
         "--out", str(tmp_path), "--fail-on-prediction-errors"],
        cwd=settings.bot_dir, env=rasa_env(), capture_output=True, text=True, timeout=600)
    failed = (tmp_path / "failed_test_stories.yml").read_text() if (tmp_path / "failed_test_stories.yml").exists() \
        else ""
    assert result.returncode == 0, result.stdout[-3000:] + failed
