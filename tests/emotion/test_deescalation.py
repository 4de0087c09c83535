"""The conduct guard on its own: decisions from emotion scores and explicit signals, and what it says."""

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


def test_vulnerability_pauses(policy):
    assert decide(policy, e(GRIEF), [], "out_of_scope", 0, False) is Step.PAUSE
    assert decide(policy, e(GRIEF), [], "hardship", 0, False) is Step.HARDSHIP_REVIEW


@pytest.mark.parametrize("intent", ["bot_challenge", "help", "ask_who_is_calling", "third_party", "nlu_fallback"])
def test_an_angry_line_misread_as_a_question_gets_a_person_offered_not_an_answer(policy, intent):
    assert decide(policy, e(ANGRY), [], intent, 0, False) is Step.DEESCALATE
    assert decide(policy, e(CALM), [], intent, 0, False) is Step.PROCEED


def test_the_policy_file_is_checked():
    with pytest.raises(ValueError, match="k <= n"):
        Policy.from_dict({"strong_negative": 0.7, "calm_below": 0.4, "sustained": {"k": 4, "n": 3},
                          "handoff_after": 2, "max_amount_repeats_after_anger": 1, "amount_responses": [],
                          "serve_while_angry": [], "vulnerability": {"distressed_at_least": 0.6},
                          "legal_threat": "handoff", "honoured_first": [], "misread_when_angry": [],
                          "while_paused": []})


# --- guard(): what the routed wrapper does with one message ----------------------------------------------
def _turn(emotions: list[dict[str, Any] | None], intent: str = "deny", slots: dict[str, Any] | None = None,
          text: str = "…") -> Turn:
    events = [{"event": "session_started"}]
    for emotion in emotions:
        parse = {"intent": {"name": intent}, "text": text, **({"emotion": emotion} if emotion else {})}
        events += [{"event": "user", "text": text, "parse_data": parse}, {"event": "action", "name": "x"}]
    latest = events[-2]["parse_data"]
    tracker = Tracker("c-1", dict(slots or {}), latest, events, False, None, {}, "action_listen")
    return Turn(CollectingDispatcher(), tracker, None, load_strategy())


def _run(turn: Turn) -> tuple[list[str], list[tuple], list[str]]:
    answered, records, handoffs = [], [], []

    def answer() -> None:
        answered.append("answer")
        turn.say("utter_amount", amount="$230.50", deadline="Monday")

    guard(turn, answer, serving=False, record=lambda t, kind, **d: records.append((kind, d)),
          handoff=lambda t, reason, announce=True: handoffs.append(reason))
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
    turn = _turn([ANGRY, ANGRY], slots={"deescalation_turns": 1, "verified": True})
    said, _, _ = _run(turn)
    assert said == ["utter_deescalate_options"]
    said, _, _ = _run(_turn([ANGRY, ANGRY], slots={"deescalation_turns": 1}))
    assert said == ["utter_deescalate_options_unverified"]  # before verification: no word of a bill
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
    assert said == ["utter_vulnerability_pause_unverified"]
    assert records == [("human_review", {"reason": "vulnerability", "emotion": "distressed", "distressed": 0.95})]
    assert _slot(turn, "collection_paused") is True
    later = _turn([GRIEF, CALM], intent="pay_now", slots={"collection_paused": True, "vulnerability_flagged": True})
    said, records, _ = _run(later)
    assert said == ["utter_collection_paused_unverified"] and records == []


def test_guard_hands_a_legal_threat_to_a_person():
    said, records, handoffs = _run(_turn([LAWYER]))
    assert said == ["utter_legal_threat_noted"] and handoffs == ["legal_threat"]
    assert [kind for kind, _ in records] == ["legal_threat"]


# --- explicit signals: the same steps without (or despite) the emotion model ---------------------------------
@pytest.mark.parametrize("text", ["I'm going to sue you", "I will report you to the regulator",
                                  "我要去工信部投诉你们", "你们等着收法院传票吧，我要起诉"])
def test_a_legal_threat_in_either_language_stops_collection_without_the_emotion_service(text):
    turn = _turn([None], intent="promise_to_pay", text=text)
    said, records, handoffs = _run(turn)
    assert said == ["utter_legal_threat_noted"] and handoffs == ["legal_threat"]
    assert _slot(turn, "collection_paused") is True and "answer" not in said


@pytest.mark.parametrize("text,intent", [("I can't go on like this, I want to end my life", "hardship"),
                                         ("I'm going to kill myself, I can't pay", "out_of_scope"),
                                         ("我真的活不下去了，没钱交话费", "hardship"),
                                         ("stop calling me, I want to kill myself", "opt_out")])
def test_crisis_language_gets_the_helpline_and_a_person_and_nothing_about_money(text, intent):
    turn = _turn([CALM], intent=intent, text=text)
    said, records, handoffs = _run(turn)
    assert [r for r in said if r != "answer"][-1] == "utter_crisis_support" and handoffs == ["crisis"]
    assert ("answer" in said) is (intent == "opt_out")  # an opt-out is honoured too; nothing else is answered
    assert ("human_review", {"reason": "crisis", "emotion": "", "distressed": ""}) in records
    message = turn.dispatcher.messages[-1]
    assert message["helpline"] and "12356" in message["helpline"]  # no account: the default (cn) pack's helpline
    assert _slot(turn, "collection_paused") is True


@pytest.mark.parametrize("text", ["My husband passed away last month, this was his phone", "我父亲上个月去世了"])
def test_a_bereavement_pauses_the_account_and_discloses_nothing(text):
    turn = _turn([CALM], intent="third_party", text=text)
    said, records, handoffs = _run(turn)
    assert said == ["utter_bereavement"] and handoffs == []
    assert records == [("human_review", {"reason": "bereavement", "emotion": "", "distressed": ""})]
    assert _slot(turn, "collection_paused") is True and _slot(turn, "outcome") == "bereavement"


@pytest.mark.parametrize("text,intent", [("are you a stupid bot, you idiots", "bot_challenge"),
                                         ("滚，你们这些骗子", "third_party"),
                                         ("fuck off, who is this", "ask_who_is_calling")])
def test_abuse_read_as_any_intent_is_de_escalated_even_without_the_emotion_service(text, intent):
    turn = _turn([None], intent=intent, text=text)
    said, _, _ = _run(turn)
    assert said == ["utter_deescalate_options_unverified"] and _slot(turn, "awaiting") == "offer_human"


def test_illness_pauses_collection_for_review():
    turn = _turn([CALM], intent="promise_to_pay", text="I've been in hospital with cancer for two months",
                 slots={"verified": True})
    said, records, _ = _run(turn)
    assert said == ["utter_vulnerability_pause"] and records[0][1]["reason"] == "vulnerability"


def test_an_opt_out_and_a_request_for_a_person_are_honoured_whatever_the_mood():
    for intent in ("opt_out", "request_human"):
        said, _, _ = _run(_turn([ANGRY, ANGRY, ANGRY], intent=intent, slots={"deescalation_turns": 5},
                                text="you idiots, stop"))
        assert said == ["utter_amount", "answer"], intent
