"""Emotion-aware de-escalation (issue 11): policy data in policies/emotion.yml, applied before every routed
conversation action.

The NLU component puts the emotion of each subscriber line in its parse data (`emotion`: label, score,
scores, negative, legal_threat); it is absent when the emotion service is down, and then nothing here changes
what the bot does.
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
            legal_threat=str(data["legal_threat"]))
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


class Step(enum.Enum):
    PROCEED = "proceed"  # answer as usual
    ACKNOWLEDGE = "acknowledge"  # acknowledge the feeling, then answer
    DEESCALATE = "deescalate"  # acknowledge, slow down, offer options and a person; no collection push
    HANDOFF = "handoff"  # de-escalation did not calm the subscriber: a person takes over
    LEGAL_HANDOFF = "legal_handoff"
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
    if now.legal_threat and policy.legal_threat == "handoff":
        return Step.LEGAL_HANDOFF
    if now.negative < policy.strong_negative:
        return Step.PROCEED
    if deescalation_turns >= policy.handoff_after:
        return Step.HANDOFF
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
            lines.append(Emotion.parse((event.get("parse_data") or {}).get("emotion")))
    return list(reversed(lines[1:]))  # lines[0] is the current message


Record = Callable[..., None]
Handoff = Callable[[Turn, str], None]


def guard(turn: Turn, answer: Callable[[], None], *, serving: bool, record: Record, handoff: Handoff) -> None:
    """Run `answer` (the routed action) as the policy allows, saying what de-escalation calls for around it."""
    policy = load_policy()
    if turn.slot("collection_paused"):
        turn.say("utter_collection_paused")
        turn.expect(None)
        return
    now = Emotion.parse(turn.tracker.latest_message.get("emotion"))
    turns = int(turn.slot("deescalation_turns") or 0)
    serving = serving or turn.intent in policy.serve_while_angry
    step = decide(policy, now, earlier_emotions(turn.tracker), turn.intent, turns, serving)
    first_message = len(turn.dispatcher.messages)
    if step is Step.PAUSE:
        _flag_vulnerable(turn, now, record)
        turn.say("utter_vulnerability_pause")
        turn.set("collection_paused", True)
        turn.expect(None)
    elif step is Step.HARDSHIP_REVIEW:
        _flag_vulnerable(turn, now, record)
        answer()
    elif step is Step.LEGAL_HANDOFF:
        turn.say("utter_legal_threat_noted")
        handoff(turn, "legal_threat")
    elif step is Step.HANDOFF:
        turn.say("utter_deescalate_ack")
        handoff(turn, "sustained_negative_emotion")
    elif step is Step.DEESCALATE:
        turn.say("utter_deescalate_options")
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


def _flag_vulnerable(turn: Turn, now: Emotion | None, record: Record) -> None:
    """Collection pauses (campaigns skip `human_review` accounts) and QA sees why; once per conversation."""
    if turn.slot("vulnerability_flagged"):
        return
    if turn.account is not None:
        store().set_status(turn.account.id, "human_review")
    record(turn, "human_review", reason="vulnerability", emotion=now.label if now else "",
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
