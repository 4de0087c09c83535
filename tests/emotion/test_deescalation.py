"""The de-escalation policy on its own: decisions from emotion scores, and what the routed wrapper says."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from duebot.actions.deescalation import Emotion, Policy, Step, decide, earlier_emotions, guard, load_policy
from duebot.actions.strategy import load_strategy
from duebot.actions.turn import Turn

CALM = {"label": "neutral", "scores": {"neutral": 0.9, "angry": 0.08, "distressed": 0.02}, "negative": 0.1}
ANGRY = {"label": "angry", "scores": {"neutral": 0.05, "angry": 0.93, "distressed": 0.02}, "negative": 0.95}
GRIEF = {"label": "distressed", "scores": {"neutral": 0.02, "angry": 0.03, "distressed": 0.95}, "negative": 0.98}
LAWYER = {**ANGRY, "legal_threat": True}


@pytest.fixture
def policy() -> Policy:
    return load_policy()


def e(data: dict[str, Any]) -> Emotion:
    emotion = Emotion.parse(data)
    assert emotion is not None
    return emotion


def test_no_emotion_changes_nothing(policy):
    assert decide(policy, None, [e(ANGRY)] * 3, "pay_now", 5, False) is Step.PROCEED
    assert Emotion.parse(None) is None and Emotion.parse({"scores": {}}) is None


def test_anger_is_acknowledged_then_de_escalated_then_handed_off(policy):
    assert decide(policy, e(CALM), [], "greet", 0, False) is Step.PROCEED
    assert decide(policy, e(ANGRY), [e(CALM)], "deny", 0, False) is Step.ACKNOWLEDGE
    assert decide(policy, e(ANGRY), [e(CALM), e(ANGRY)], "deny", 1, False) is Step.DEESCALATE
    assert decide(policy, e(ANGRY), [e(ANGRY), e(ANGRY)], "deny", policy.handoff_after, False) is Step.HANDOFF


def test_an_angry_request_to_settle_is_still_served(policy):
    assert decide(policy, e(ANGRY), [e(ANGRY), e(ANGRY)], "pay_now", 1, True) is Step.ACKNOWLEDGE


def test_vulnerability_pauses_and_legal_threats_hand_off(policy):
    assert decide(policy, e(GRIEF), [], "out_of_scope", 0, False) is Step.PAUSE
    assert decide(policy, e(GRIEF), [], "hardship", 0, False) is Step.HARDSHIP_REVIEW
    assert decide(policy, e(LAWYER), [], "complain", 0, False) is Step.LEGAL_HANDOFF


def test_the_policy_file_is_checked():
    with pytest.raises(ValueError, match="k <= n"):
        Policy.from_dict({"strong_negative": 0.7, "calm_below": 0.4, "sustained": {"k": 4, "n": 3},
                          "handoff_after": 2, "max_amount_repeats_after_anger": 1, "amount_responses": [],
                          "serve_while_angry": [], "vulnerability": {"distressed_at_least": 0.6},
                          "legal_threat": "handoff"})


# --- guard(): what the routed wrapper does with one message ----------------------------------------------
def _turn(emotions: list[dict[str, Any] | None], intent: str = "deny", slots: dict[str, Any] | None = None) -> Turn:
    events = [{"event": "session_started"}]
    for emotion in emotions:
        parse = {"intent": {"name": intent}, "text": "…", **({"emotion": emotion} if emotion else {})}
        events += [{"event": "user", "text": "…", "parse_data": parse}, {"event": "action", "name": "x"}]
    latest = events[-2]["parse_data"]
    tracker = Tracker("c-1", dict(slots or {}), latest, events, False, None, {}, "action_listen")
    return Turn(CollectingDispatcher(), tracker, None, load_strategy())


def _run(turn: Turn) -> tuple[list[str], list[tuple], list[str]]:
    answered, records, handoffs = [], [], []

    def answer() -> None:
        answered.append("answer")
        turn.say("utter_amount", amount="$230.50", deadline="Monday")

    guard(turn, answer, serving=False, record=lambda t, kind, **d: records.append((kind, d)),
          handoff=lambda t, reason: handoffs.append(reason))
    said = [m["response"] for m in turn.dispatcher.messages]
    return said + answered, records, handoffs


def _slot(turn: Turn, name: str) -> Any:
    return turn.slot(name)


def test_earlier_emotions_stop_at_the_session_start():
    turn = _turn([ANGRY, CALM, GRIEF])
    assert [x.label if x else None for x in earlier_emotions(turn.tracker)] == ["angry", "neutral"]


def test_guard_acknowledges_first_anger_and_answers():
    turn = _turn([CALM, ANGRY])
    said, _, _ = _run(turn)
    assert said == ["utter_deescalate_ack", "utter_amount", "answer"]
    assert _slot(turn, "deescalation_turns") == 1 and _slot(turn, "anger_seen") is True


def test_guard_caps_the_amount_after_anger():
    turn = _turn([ANGRY, CALM], intent="ask_amount", slots={"anger_seen": True, "amount_repeats": 1})
    said, _, _ = _run(turn)
    assert said == ["utter_deescalate_amount_held", "answer"]


def test_guard_de_escalates_sustained_anger_without_pushing_collection():
    turn = _turn([ANGRY, ANGRY], slots={"deescalation_turns": 1})
    said, _, _ = _run(turn)
    assert said == ["utter_deescalate_options"]
    assert _slot(turn, "awaiting") == "offer_human" and _slot(turn, "deescalation_turns") == 2


def test_guard_hands_off_when_de_escalation_did_not_calm():
    turn = _turn([ANGRY, ANGRY, ANGRY], slots={"deescalation_turns": 2})
    said, _, handoffs = _run(turn)
    assert said == ["utter_deescalate_ack"] and handoffs == ["sustained_negative_emotion"]


def test_guard_calm_again_resets_the_count():
    turn = _turn([ANGRY, CALM], slots={"deescalation_turns": 1})
    said, _, _ = _run(turn)
    assert said == ["utter_amount", "answer"] and _slot(turn, "deescalation_turns") == 0


def test_guard_pauses_collection_for_a_vulnerable_subscriber_once():
    turn = _turn([GRIEF], intent="out_of_scope")
    said, records, _ = _run(turn)
    assert said == ["utter_vulnerability_pause"]
    assert records == [("human_review", {"reason": "vulnerability", "emotion": "distressed", "distressed": 0.95})]
    assert _slot(turn, "collection_paused") is True
    later = _turn([GRIEF, CALM], intent="pay_now", slots={"collection_paused": True, "vulnerability_flagged": True})
    said, records, _ = _run(later)
    assert said == ["utter_collection_paused"] and records == []


def test_guard_hands_a_legal_threat_to_a_person():
    said, _, handoffs = _run(_turn([LAWYER]))
    assert said == ["utter_legal_threat_noted"] and handoffs == ["legal_threat"]
