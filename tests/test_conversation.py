"""The collection conversation through the real Rasa server and action server (REST webhook).

Every path of the issue: right party / wrong number / third party / failed verification, each settlement,
dispute, hardship, opt-out (then refused by the gate on every channel), human request, escalations.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from duebot.accounts.store import AccountStore
from duebot.evidence.log import EvidenceLog
from duebot.policies.gate import decide
from duebot.settings import load_settings
from tests.served import Chat, Served, served_fixture

# No SMS carrier, whatever the developer's shell holds: the bot must say a payment link was not texted.
NO_CARRIER = {"TWILIO_AUTH_TOKEN": "", "TWILIO_FROM_NUMBER": "", "TWILIO_MESSAGING_SERVICE_SID": ""}
served = served_fixture(env={"DUEBOT_EVIDENCE_ASSESS_AFTER": "2", **NO_CARRIER})


@pytest.fixture(scope="module")
def store(served) -> AccountStore:
    return served.account_store()


def _today(zone: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(zone)).date()


def test_nothing_about_the_debt_before_verification(served):
    chat = Chat(served, "A-1")
    for text in ("hello", "how much do I owe?", "who is this?", "I want to pay now", "I can pay on Friday"):
        reply = chat(text)
        assert "230" not in reply and "overdue" not in reply and "debt" not in reply, chat.transcript


def test_right_party_verifies_then_hears_the_three_elements(served):
    chat = Chat(served, "A-1", channel="voice")
    assert "May I speak with Jane" in chat("hello")
    assert "last four digits" in chat("yes, speaking")
    disclosure = chat("four four seven two")
    assert "identity is confirmed" in disclosure
    assert "This is a communication from a debt collector" in disclosure  # us pack notice
    assert "$230.50" in disclosure
    deadline = _today("America/Los_Angeles") + dt.timedelta(days=14)
    assert f"{deadline:%A} {deadline.day} {deadline:%B}" in disclosure
    assert "How would you like to proceed" in disclosure


def test_pay_now_makes_a_signed_link_and_says_honestly_it_could_not_be_texted(served, store):
    """This stack has no SMS carrier (no TWILIO_*): the bot must not claim a text it did not send. The texted link
    itself: tests/test_payment_link_sent.py (the SmsSender against the Twilio fake)."""
    chat = Chat(served, "A-1")
    chat.verified()
    reply = chat("send me the link, I'll pay it now")
    assert "couldn't send the payment link by text" in reply and "sent" not in reply, chat.transcript
    links = [e for e in store.events("A-1") if e.kind == "payment_link" and e.conversation_id == chat.sender]
    assert links and "?t=" in links[0].detail["url"] and "Jane" not in links[0].detail["url"]
    assert links[0].detail["sent"] == "false" and links[0].detail["reason"] == "NO_SMS_CARRIER"


def test_promise_to_pay_is_read_back_and_recorded(served, store):
    chat = Chat(served, "A-1")
    chat.verified()
    reply = chat("I can pay on Friday")
    today = _today("America/Los_Angeles")
    friday = today + dt.timedelta(days=(4 - today.weekday()) % 7 or 7)
    assert f"So you will pay $230.50 by Friday {friday.day} {friday:%B}. Is that right?" == reply, chat.transcript
    assert "recorded" in chat("yes, that's right")
    promise = [p for p in store.promises("A-1") if p.conversation_id == chat.sender][0]
    assert promise.due_date == friday and promise.amount == Decimal("230.50") and not promise.needs_review


def test_promise_beyond_the_horizon_is_refused_and_asked_again(served):
    chat = Chat(served, "A-1")
    chat.verified()
    assert "we can only accept a date up to" in chat("I'll pay by the end of next month but not before")
    assert "So you will pay" in chat("next week")


def test_installment_plan_in_three_interest_free_parts(served, store):
    chat = Chat(served, "A-1")
    chat.verified()
    offer = chat("can I pay in installments?")
    assert "three interest-free payments" in offer and offer.count("$") == 4, chat.transcript
    assert "plan is set up" in chat("yes, that works")
    plan = [p for p in store.plans("A-1") if p.conversation_id == chat.sender][0]
    assert len(plan.schedule) == 3
    assert sum(Decimal(p["amount"]) for p in plan.schedule) == Decimal("230.50")


def test_no_plan_for_the_malicious_segment(served):
    chat = Chat(served, "A-2")
    chat.verified()
    assert "installment plan is not available" in chat("could we do monthly payments")


def test_partial_payment_now_and_the_rest_by_a_date(served, store):
    chat = Chat(served, "A-1")
    chat.verified()
    assert "How much can you pay today" in chat("I can only pay part of it")
    assert "remaining $180.50" in chat("fifty dollars")
    confirm = chat("the 15th")
    assert "So you'll pay $50.00 today" in confirm and "remaining $180.50" in confirm, chat.transcript
    assert "couldn't send the link for $50.00" in chat("yes")  # no SMS carrier in this stack: said so
    rest = [p for p in store.promises("A-1") if p.conversation_id == chat.sender][0]
    assert rest.kind == "partial_rest" and rest.amount == Decimal("180.50") and rest.due_date.day == 15


def test_dispute_opens_a_case_and_holds_collection(served, store):
    chat = Chat(served, "A-5")  # cn account: the 168 information charges of the field report
    chat.verified()
    assert "what looks wrong" in chat("I don't recognise these charges")
    reply = chat("I never called the 168 information line, my nephew did")
    case = re.search(r"case (D-[0-9A-F]{8})", reply)
    assert case and "paused" in reply, chat.transcript
    assert store.get_account("A-5").status == "disputed"
    assert store.has_open_dispute("A-5")


def test_hardship_is_met_with_a_plan_or_a_person(served, store):
    chat = Chat(served, "A-1")
    chat.verified()
    assert "very sorry to hear that" in chat("I lost my job last month")
    assert "three interest-free payments" in chat("yes please")
    assert "plan is set up" in chat("yes")
    assert any(e.kind == "hardship" and e.conversation_id == chat.sender for e in store.events("A-1"))


def test_wrong_number_is_marked_and_told_nothing(served, store):
    chat = Chat(served, "A-2", channel="voice")
    chat("hello")
    reply = chat("you have the wrong number")
    assert "update our records" in reply and "580" not in reply
    assert store.get_account("A-2").wrong_number
    assert "conversation has ended" in chat("wait, how much is it?")


def test_third_party_gets_a_neutral_message(served):
    chat = Chat(served, "A-1", channel="voice")
    chat("hello")
    reply = chat("she's not home, this is her husband")
    assert "personal matter" in reply and "230" not in reply and "debt" not in reply


def test_two_failed_verifications_close_the_check_and_offer_a_person(served, store):
    # The account's check stays closed for the cool-down (DUEBOT_VERIFICATION_COOLDOWN): no later test verifies A-5.
    chat = Chat(served, "A-5")
    chat("hello")
    assert "try once more" in chat("1111")
    failed = chat("2222")
    assert "could not confirm your identity" in failed and "member of our team" in failed, chat.transcript
    closed = chat("4472")  # no third guess, not even the right one
    assert "paused" in closed and "210" not in closed, chat.transcript
    assert "passing you to a member of our team" in chat("yes"), chat.transcript
    assert any(e.kind == "verification_failed" and e.conversation_id == chat.sender for e in store.events("A-5"))


def test_human_request_leaves_a_summary_for_the_agent(served, store):
    chat = Chat(served, "A-1")
    chat.verified()
    assert "passing you to a member of our team" in chat("can I talk to a real person")
    handoff = [e for e in store.events("A-1") if e.kind == "handoff" and e.conversation_id == chat.sender][0]
    assert handoff.detail["verified"] == "True" and handoff.detail["last_message"] == "can I talk to a real person"


def test_escalations_large_amount_and_legal_track(served, store):
    big = Chat(served, "A-3")
    big.verified()
    big("I'll pay next week")
    assert "a colleague will review" in big("yes")
    assert [p.needs_review for p in store.promises("A-3")] == [True]
    old = Chat(served, "A-4")
    disclosure = old.verified()
    assert "legal team" in disclosure and "no discount can be offered" in disclosure, old.transcript


def test_opt_out_at_any_point_then_the_gate_refuses_every_channel(served, store):
    chat = Chat(served, "A-4")
    chat("hello")
    assert "will not be contacted again" in chat("stop calling me")
    account = store.get_account("A-4")
    assert store.is_opted_out(account.phone)
    now = dt.datetime.now(dt.UTC).replace(hour=18, minute=0).isoformat()  # 11:00 in Phoenix: not quiet hours
    for channel in ("voice", "sms"):
        request = {"now": now, "contact": {"channel": channel, "purpose": "collection", "to": account.phone,
                                           "debt_id": account.id, "ai_voice": True},
                   "subscriber": store.gate_subscriber(account.id)}
        decision = decide(request, account.pack)
        assert not decision.allowed and "OPTED_OUT" in decision.reasons, (channel, decision)


def test_always_available_questions(served):
    chat = Chat(served, "A-1")
    assert "automated assistant" in chat("are you a robot?")
    assert "call you back" in chat("I'm driving, can you call me back tomorrow")
    assert "noted your complaint" in chat("this is harassment")
    assert "Say STOP to opt out" in chat("what are my options")


def _evidence(served: Served, conversation_id: str, until: str, timeout: float = 30.0) -> list:
    """The conversation's records once a record of kind `until` is in the log (the writer runs apart)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with EvidenceLog.open(served.data_dir / "evidence", readonly=True) as log:
            records = log.records_for(conversation_id)
            if any(r.kind == until for r in records):
                return [(r, log.payload(r.payloads["text"]["sha256"]).decode() if "text" in r.payloads else None)
                        for r in records]
        time.sleep(0.5)
    pytest.fail(f"no {until} record for {conversation_id} after {timeout}s")


def test_every_turn_and_outcome_is_evidence_with_the_three_elements(served):
    chat = Chat(served, "A-1")
    chat.verified()
    chat("I can pay on Friday")
    chat("yes")
    records = _evidence(served, chat.sender, until="three_elements")
    turns = [(r.body["speaker"], text) for r, text in records if r.kind == "turn"]
    said = [line.split(": ", 1) for line in chat.transcript]
    assert turns == [("debtor" if who == "subscriber" else "bot", text) for who, text in said]
    disclosure = next(r for r, text in records if r.kind == "turn" and "identity is confirmed" in (text or ""))
    assert disclosure.body["legal_elements"] == ["identity_confirmed", "amount", "deadline"]
    outcomes = [r.body["type"] for r, _ in records if r.kind == "outcome"]
    assert outcomes == ["identity_verified", "disclosure", "promise"]
    verdict = [r for r, _ in records if r.kind == "three_elements"][-1].body
    assert verdict["flagged_for_qa"] is False and verdict["amount"] == "$230.50"


def test_a_conversation_without_disclosure_is_flagged_for_qa(served):
    chat = Chat(served, "A-2", channel="voice")
    chat("hello")
    chat("wrong number")
    records = _evidence(served, chat.sender, until="three_elements")
    verdict = [r for r, _ in records if r.kind == "three_elements"][-1].body
    assert verdict["flagged_for_qa"] is True and set(verdict["missing"]) == {"identity_confirmed", "amount",
                                                                           "deadline"}
    assert [r.body["type"] for r, _ in records if r.kind == "outcome"] == ["wrong_number"]


@pytest.mark.rasa("en")
def test_rasa_test_stories_pass(tmp_path):
    settings = load_settings()
    from duebot.training.train import model_path, rasa_env

    result = subprocess.run(
        [str(settings.rasa_bin), "test", "core", "--stories", str(settings.bot_dir / "tests" / "test_stories.yml"),
         "--model", str(model_path(settings)), "--out", str(tmp_path), "--fail-on-prediction-errors"],
        cwd=settings.bot_dir, env=rasa_env(), capture_output=True, text=True, timeout=600)
    failed = (tmp_path / "failed_test_stories.yml").read_text() if (tmp_path / "failed_test_stories.yml").exists() \
        else ""
    assert result.returncode == 0, result.stdout[-3000:] + failed
