"""Emotion through the real stack: the emotion service, Rasa with the emotion component, the action server's
de-escalation policy, the evidence log. Conversations go through the REST webhook like a chat channel."""

from __future__ import annotations

import os
import signal
import time

import pytest

from duebot.accounts.store import AccountStore
from duebot.evidence.log import EvidenceLog
from tests.served import Chat, Served, served_fixture

served = served_fixture()


@pytest.fixture(scope="module")
def store(served) -> AccountStore:
    return served.account_store()


def parse(served: Served, text: str) -> dict:
    reply = served.rasa_api("POST", "/model/parse", json={"text": text})
    reply.raise_for_status()
    return reply.json()


def events(store: AccountStore, account: str, chat: Chat, kind: str) -> list:
    return [e for e in store.events(account) if e.kind == kind and e.conversation_id == chat.sender]


def test_model_parse_returns_the_emotion(served):
    calm, angry = parse(served, "sure, I can pay on Friday"), parse(served, "you people are crooks, leave me alone!")
    assert calm["emotion"]["label"] == "neutral" and calm["emotion"]["legal_threat"] is False
    assert angry["emotion"]["label"] == "angry" and angry["emotion"]["negative"] >= 0.7
    assert parse(served, "I'll see you in court")["emotion"]["legal_threat"] is True


def test_anger_is_acknowledged_de_escalated_then_handed_to_a_person(served, store):
    chat = Chat(served, "A-1")
    chat.verified()
    first = chat("how much?? seriously, how much do you idiots want")
    assert "I can hear this is difficult" in first and "$230.50" in first, chat.transcript
    second = chat("no, go away, you thieves")
    assert "one step at a time" in second and "speak with a person" in second, chat.transcript
    third = chat("no! you are useless idiots")
    assert "passing you to a member of our team" in third, chat.transcript
    (handoff,) = events(store, "A-1", chat, "handoff")
    assert handoff.detail["reason"] == "sustained_negative_emotion"


def test_the_amount_is_not_repeated_again_after_anger(served):
    chat = Chat(served, "A-1")
    chat.verified()
    assert "$230.50" in chat("how much?? seriously, how much do you idiots want"), chat.transcript
    again = chat("ok. how much do I owe?")
    assert "$230.50" not in again and "won't keep repeating the figure" in again, chat.transcript


def test_a_legal_threat_goes_to_a_person(served, store):
    chat = Chat(served, "A-1")
    chat.verified()
    reply = chat("I'm not paying that, I'll see you in court")
    assert "noted that" in reply and "a member of our team can deal with this" in reply, chat.transcript
    assert [h.detail["reason"] for h in events(store, "A-1", chat, "handoff")] == ["legal_threat"]


def test_vulnerability_pauses_collection_for_human_review(served, store):
    chat = Chat(served, "A-4")
    chat.verified()
    reply = chat("I am in tears every night, I can't cope with any of this anymore")
    assert "$1,200.00" not in reply, chat.transcript
    (review,) = events(store, "A-4", chat, "human_review")
    assert review.detail["reason"] == "vulnerability"
    assert store.get_account("A-4").status == "human_review"


def test_evidence_turns_carry_the_emotion(served):
    chat = Chat(served, "A-2")
    chat("hello")
    chat("stop bothering me, you thieves")  # whatever NLU makes of it, the turn carries its emotion
    deadline = time.monotonic() + 30
    turns: list = []
    while time.monotonic() < deadline and len(turns) < 2:
        with EvidenceLog.open(served.data_dir / "evidence", readonly=True) as log:
            turns = [r for r in log.records_for(chat.sender) if r.kind == "turn" and r.body["speaker"] == "debtor"]
        time.sleep(0.5)
    assert [t.body.get("emotion_label") for t in turns] == ["neutral", "angry"], [t.body for t in turns]
    assert turns[1].body["emotion_score"] >= 0.7 and turns[1].body["legal_threat"] is False


def test_without_the_emotion_service_parsing_still_works(served):
    pid = served.state()["emotion"]["pid"]
    os.killpg(pid, signal.SIGKILL)  # the supervisor restarts it; meanwhile Rasa must not fail
    deadline = time.monotonic() + 5
    result = parse(served, "you people are crooks")
    while "emotion" in result and time.monotonic() < deadline:  # until Rasa notices the service is gone
        result = parse(served, "you people are crooks")
    assert "emotion" not in result and result["intent"]["name"]
    chat = Chat(served, "A-5")
    assert chat("hello"), chat.transcript  # the conversation goes on without emotion
