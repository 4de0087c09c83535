"""The vulnerability and conduct guard: one policy every conversation action passes through, before it acts
(issues 11, 21). Policy data: policies/emotion.yml (thresholds) and policies/vulnerability.yml (phrases).

What it reads of each subscriber line: the explicit signals in its text (crisis, bereavement, illness, legal
action, abuse; English and Mandarin, whatever the conversation's language) and the emotion the NLU component
puts in the parse data (`emotion`: label, scores, negative, legal_threat; absent when the emotion service is
down, and then the signals alone decide). In order: an opt-out or a request for a person is honoured; crisis
language gets the pack's helpline and a person; a bereavement gets condolence and the account paused for review;
a legal threat stops collection and goes to a person; distress or illness pauses collection for review; anger is
acknowledged, and a line that is angry but not a request to settle is answered with an offer of a person rather
than whatever intent NLU read into it. Nothing said before verification hints at a bill (`_unverified` variants).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import Tracker

from duebot.actions.turn import Turn, store
from duebot.policies.vulnerability import Signal, signals
from duebot.settings import PROJECT_ROOT, load_settings

DEFAULT_POLICY = PROJECT_ROOT / "policies" / "emotion.yml"
HELD_AMOUNT = "utter_deescalate_amount_held"


@dataclass(frozen=True)
class Policy:
    strong_negative: float
    calm_below: float
    sustained_k: int
    sustained_n: int
    handoff_after: int
    max_amount_repeats: int
    amount_responses: frozenset[str]
    serve_while_angry: frozenset[str]
    distressed_at_least: float
    hardship_intents: frozenset[str]
    legal_threat: str
    honoured_first: frozenset[str]
    misread_when_angry: frozenset[str]
    while_paused: frozenset[str]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        vulnerability = data["vulnerability"]
        policy = cls(
            strong_negative=float(data["strong_negative"]), calm_below=float(data["calm_below"]),
            sustained_k=int(data["sustained"]["k"]), sustained_n=int(data["sustained"]["n"]),
            handoff_after=int(data["handoff_after"]),
            max_amount_repeats=int(data["max_amount_repeats_after_anger"]),
            amount_responses=frozenset(data["amount_responses"]),
            serve_while_angry=frozenset(data["serve_while_angry"]),
            distressed_at_least=float(vulnerability["distressed_at_least"]),
            hardship_intents=frozenset(vulnerability.get("hardship_intents") or ()),
            legal_threat=str(data["legal_threat"]),
            honoured_first=frozenset(data["honoured_first"]),
            misread_when_angry=frozenset(data["misread_when_angry"]),
            while_paused=frozenset(data["while_paused"]))
        if not 0 < policy.sustained_k <= policy.sustained_n:
            raise ValueError("emotion policy: sustained needs 0 < k <= n")
        if policy.legal_threat not in ("handoff", "ignore"):
            raise ValueError("emotion policy: legal_threat must be handoff or ignore")
        return policy


@lru_cache(maxsize=4)
def load_policy(path: str | None = None) -> Policy:
    source = Path(path or load_settings().emotion.policy or DEFAULT_POLICY)
    return Policy.from_dict(yaml.safe_load(source.read_text()))


@dataclass(frozen=True)
class Emotion:
    label: str
    negative: float
    distressed: float
    legal_threat: bool

    @classmethod
    def parse(cls, data: Any) -> Emotion | None:
        if not isinstance(data, Mapping) or "label" not in data:
            return None
        scores = data.get("scores") or {}
        negative = data.get("negative")
        if negative is None:
            negative = 1.0 - float(scores.get("neutral", 1.0))
        return cls(str(data["label"]), float(negative), float(scores.get("distressed", 0.0)),
                   bool(data.get("legal_threat")))

    @classmethod
    def of_line(cls, data: Any, found: frozenset[Signal]) -> Emotion | None:
        """The model's emotion, made at least as negative as the line's explicit signals: abuse is anger and
        a legal threat is flagged even when the model (or the whole emotion service) missed it."""
        emotion = cls.parse(data)
        if Signal.ABUSE in found:
            emotion = cls("angry", 1.0, emotion.distressed if emotion else 0.0,
                          emotion.legal_threat if emotion else False)
        if Signal.LEGAL in found:
            emotion = cls(emotion.label, emotion.negative, emotion.distressed, True) if emotion else \
                cls("angry", 0.0, 0.0, True)
        return emotion


class Step(enum.Enum):
    PROCEED = "proceed"  # answer as usual
    ACKNOWLEDGE = "acknowledge"  # acknowledge the feeling, then answer
    DEESCALATE = "deescalate"  # acknowledge, slow down, offer options and a person; no collection push
    HANDOFF = "handoff"  # de-escalation did not calm the subscriber: a person takes over
    PAUSE = "pause"  # vulnerable: stop collecting, a person reviews the account
    HARDSHIP_REVIEW = "hardship_review"  # vulnerable through money trouble: the hardship path, and a review


def decide(policy: Policy, now: Emotion | None, earlier: list[Emotion | None], intent: str,
           deescalation_turns: int, serving: bool) -> Step:
    """The step for this line. `earlier`: the emotions of the subscriber's previous lines, oldest first;
    `serving`: the line asks for something the bot should do whatever the mood (a settlement, an awaited answer)."""
    if now is None:
        return Step.PROCEED
    if now.distressed >= policy.distressed_at_least:
        return Step.HARDSHIP_REVIEW if intent in policy.hardship_intents else Step.PAUSE
    if now.negative < policy.strong_negative:
        return Step.PROCEED
    if deescalation_turns >= policy.handoff_after:
        return Step.HANDOFF
    if intent in policy.misread_when_angry:
        # an insult that NLU read as "are you a bot?", help or "not me": no canned answer to it, a person offered
        return Step.DEESCALATE
    recent = [*earlier, now][-policy.sustained_n:]
    strong = sum(e is not None and e.negative >= policy.strong_negative for e in recent)
    if strong >= policy.sustained_k and not serving:
        return Step.DEESCALATE
    return Step.ACKNOWLEDGE


def earlier_emotions(tracker: Tracker) -> list[Emotion | None]:
    """Emotions of the subscriber's lines in this session before the current one, oldest first."""
    lines: list[Emotion | None] = []
    for event in reversed(tracker.events):
        if event.get("event") == "session_started":
            break
        if event.get("event") == "user":
            lines.append(Emotion.of_line((event.get("parse_data") or {}).get("emotion"),
                                         signals(event.get("text") or "")))
    return list(reversed(lines[1:]))  # lines[0] is the current message


Record = Callable[..., None]
Handoff = Callable[..., None]  # (turn, reason, *, announce=True)


def guard(turn: Turn, answer: Callable[[], None], *, serving: bool, record: Record, handoff: Handoff) -> None:
    """Run `answer` (the routed action) as the policy allows, saying what the subscriber's state calls for."""
    policy = load_policy()
    found = signals(turn.text)
    if Signal.CRISIS in found:
        if turn.intent in policy.honoured_first:
            answer()  # an opt-out is honoured even now; a request for a person is what follows anyway
        _crisis(turn, record, handoff)
        return
    if turn.intent in policy.honoured_first:
        answer()
        return
    if Signal.BEREAVEMENT in found:
        _bereavement(turn, record)
        return
    now = Emotion.of_line(turn.tracker.latest_message.get("emotion"), found)
    if now is not None and now.legal_threat and policy.legal_threat == "handoff":
        _legal_threat(turn, record, handoff)
        return
    if turn.slot("collection_paused"):
        if turn.intent in policy.while_paused:
            answer()
        else:
            turn.say(_private(turn, "utter_collection_paused"))
            turn.expect(None)
        return
    if Signal.ILLNESS in found and (now is None or now.distressed < policy.distressed_at_least):
        now = Emotion("distressed", max(now.negative if now else 0.0, policy.strong_negative),
                      policy.distressed_at_least, False)
    turns = int(turn.slot("deescalation_turns") or 0)
    serving = serving or turn.intent in policy.serve_while_angry
    step = decide(policy, now, earlier_emotions(turn.tracker), turn.intent, turns, serving)
    first_message = len(turn.dispatcher.messages)
    if step is Step.PAUSE:
        _flag_vulnerable(turn, now, record, "vulnerability")
        turn.say(_private(turn, "utter_vulnerability_pause"))
        turn.set("collection_paused", True)
        turn.expect(None)
    elif step is Step.HARDSHIP_REVIEW:
        _flag_vulnerable(turn, now, record, "vulnerability")
        answer()
    elif step is Step.HANDOFF:
        turn.say("utter_deescalate_ack")
        handoff(turn, "sustained_negative_emotion")
    elif step is Step.DEESCALATE:
        turn.say(_private(turn, "utter_deescalate_options"))
        turn.expect("offer_human", {})
        turn.set("deescalation_turns", turns + 1)
    elif step is Step.ACKNOWLEDGE:
        turn.say("utter_deescalate_ack")
        answer()
        turn.set("deescalation_turns", turns + 1)
    else:
        if now is not None and now.negative < policy.calm_below and turns:
            turn.set("deescalation_turns", 0)  # calmed down
        answer()
    if now is not None and now.negative >= policy.strong_negative:
        turn.set("anger_seen", True)
    if turn.slot("anger_seen"):
        _cap_amount(turn, policy, first_message)


def _private(turn: Turn, response: str) -> str:
    """The variation of `response` for who may be listening: before verification, one that says nothing that
    hints at a bill (a relative, a colleague, a wrong number)."""
    return response if turn.verified else f"{response}_unverified"


def _crisis(turn: Turn, record: Record, handoff: Handoff) -> None:
    """Self-harm or suicide: the pack's helpline and a person, now; no collection in this conversation."""
    _flag_vulnerable(turn, None, record, "crisis")
    turn.say("utter_crisis_support", helpline=turn.profile.text("crisis_helpline", turn.language))
    turn.set("collection_paused", True)
    if not turn.slot("handoff_requested"):
        handoff(turn, "crisis", announce=False)
    turn.expect(None)


def _bereavement(turn: Turn, record: Record) -> None:
    """The account holder or someone close has died: condolence, nothing disclosed, the account paused until a
    person has reviewed it (campaigns skip `human_review` accounts)."""
    _flag_vulnerable(turn, None, record, "bereavement")
    turn.say("utter_bereavement")
    turn.set("collection_paused", True)
    turn.set("outcome", turn.slot("outcome") or "bereavement")
    turn.expect(None)


def _legal_threat(turn: Turn, record: Record, handoff: Handoff) -> None:
    """Legal action, a lawyer or a regulator: collection stops in this conversation and a person takes over."""
    if not turn.slot("collection_paused"):
        record(turn, "legal_threat", text=turn.text)
    turn.say("utter_legal_threat_noted")
    turn.set("collection_paused", True)
    if not turn.slot("handoff_requested"):
        handoff(turn, "legal_threat", announce=False)
    turn.expect(None)


def _flag_vulnerable(turn: Turn, now: Emotion | None, record: Record, reason: str) -> None:
    """Collection pauses (campaigns skip `human_review` accounts) and QA sees why; once per conversation."""
    if turn.slot("vulnerability_flagged"):
        return
    if turn.account is not None:
        store().set_status(turn.account.id, "human_review")
    record(turn, "human_review", reason=reason, emotion=now.label if now else "",
           distressed=round(now.distressed, 3) if now else "")
    turn.set("vulnerability_flagged", True)


def _cap_amount(turn: Turn, policy: Policy, first_message: int) -> None:
    """After anger, the amount is repeated at most `max_amount_repeats` times; later ones are held back."""
    said = int(turn.slot("amount_repeats") or 0)
    for message in turn.dispatcher.messages[first_message:]:
        if message.get("response") not in policy.amount_responses:
            continue
        if said >= policy.max_amount_repeats:
            message["response"] = HELD_AMOUNT
        said += 1
    if said != int(turn.slot("amount_repeats") or 0):
        turn.set("amount_repeats", said)
