"""Evidence record kinds and their canonical, hashed serialisation.

A record's leaf data is canonical JSON (sorted keys, no whitespace, UTF-8) of
{"v", "kind", "ts", "conversation_id", "body", "payloads"}. The UTC timestamp is inside the hashed bytes
(unlike Rekor's integrated time), and payloads (turn text, audio) appear only as {"sha256", "size"} so
retention can erase them while every leaf stays verifiable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1

# kind -> body fields that must be present (extra fields are allowed and hashed like the rest).
KINDS: dict[str, tuple[str, ...]] = {
    "turn": ("speaker", "channel", "started_at", "ended_at"),
    "gate_decision": ("decision",),
    "gate_release": ("release",),
    "outcome": ("type",),
    "annotation": ("author", "label"),
    "access": ("user", "purpose"),
    "three_elements": ("identity_confirmed", "amount_stated", "deadline_stated", "flagged_for_qa"),
    "erasure": ("erased", "reason"),
    "legal_hold": ("reason", "by"),
    "legal_hold_release": ("reason", "by"),
    "conversation": ("pack",),
    # the voice pipeline's own view of a call: ASR data and the audio of each turn, and the whole call
    "voice_turn": ("call_id", "speaker"),
    "voice_call": ("call_id",),
    "voice_voicemail": ("call_id",),
}
# Settlements, and the other things a conversation can end in or lead to (all of them QA looks at).
OUTCOME_TYPES = ("promise", "plan", "dispute", "opt_out", "payment", "payment_link", "partial", "handoff",
                 "callback", "wrong_number", "third_party", "complaint", "hardship", "human_review", "legal_track",
                 "identity_verified", "verification_failed", "disclosure")
SPEAKERS = ("bot", "debtor", "agent", "system")
# Kinds that describe something said or done in a conversation and therefore need its id.
NEEDS_CONVERSATION = {"turn", "outcome", "three_elements", "erasure", "legal_hold", "legal_hold_release",
                      "conversation", "access"}
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class RecordError(ValueError):
    pass


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def validate(kind: str, body: dict[str, Any], conversation_id: str | None) -> None:
    if not _KIND_RE.match(kind):
        raise RecordError(f"bad record kind {kind!r}")
    required = KINDS.get(kind)
    if required is None:
        raise RecordError(f"unknown record kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    missing = [name for name in required if name not in body]
    if missing:
        raise RecordError(f"{kind} record lacks {', '.join(missing)}")
    if kind in NEEDS_CONVERSATION and not conversation_id:
        raise RecordError(f"{kind} record needs a conversation_id")
    if kind == "outcome" and body["type"] not in OUTCOME_TYPES:
        raise RecordError(f"outcome type must be one of {OUTCOME_TYPES}")
    if kind == "turn" and body["speaker"] not in SPEAKERS:
        raise RecordError(f"turn speaker must be one of {SPEAKERS}")


def encode(kind: str, ts: str, conversation_id: str | None, body: dict[str, Any],
           payload_refs: dict[str, dict[str, Any]]) -> bytes:
    data = canonical_json({"v": SCHEMA_VERSION, "kind": kind, "ts": ts, "conversation_id": conversation_id,
                           "body": body, "payloads": payload_refs})
    if b"\n" in data:  # impossible for JSON output, but records.jsonl in bundles relies on it
        raise RecordError("record serialisation contains a newline")
    return data


@dataclass(frozen=True)
class Record:
    """A decoded record as stored at `index`; `data` are the exact hashed bytes."""

    index: int
    data: bytes
    kind: str
    ts: str
    conversation_id: str | None
    body: dict[str, Any]
    payloads: dict[str, dict[str, Any]]
    v: int = SCHEMA_VERSION

    @classmethod
    def decode(cls, index: int, data: bytes) -> Record:
        obj = json.loads(data)
        return cls(index, data, obj["kind"], obj["ts"], obj.get("conversation_id"), obj.get("body", {}),
                   obj.get("payloads", {}), obj.get("v", SCHEMA_VERSION))


# ---------------------------------------------------------------- typed constructors for callers


@dataclass(frozen=True)
class Turn:
    conversation_id: str
    speaker: str
    channel: str
    started_at: str
    ended_at: str
    text: str | None = None
    asr_confidence: float | None = None
    emotion_score: float | None = None
    audio: bytes | None = None
    legal_elements: tuple[str, ...] = ()  # tags set by the dialogue: identity_confirmed, amount, deadline
    extra: dict[str, Any] = field(default_factory=dict)
    kind = "turn"

    def body(self) -> dict[str, Any]:
        body = {"speaker": self.speaker, "channel": self.channel, "started_at": self.started_at,
                "ended_at": self.ended_at, "asr_confidence": self.asr_confidence,
                "emotion_score": self.emotion_score, "legal_elements": list(self.legal_elements)}
        return {**self.extra, **body}

    def payloads(self) -> dict[str, bytes]:
        out = {}
        if self.text is not None:
            out["text"] = self.text.encode("utf-8")
        if self.audio is not None:
            out["audio"] = self.audio
        return out


@dataclass(frozen=True)
class _Simple:
    conversation_id: str | None

    def body(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "conversation_id"}

    def payloads(self) -> dict[str, bytes]:
        return {}


@dataclass(frozen=True)
class GateDecision(_Simple):
    decision: str
    rule: str | None = None
    reason: str | None = None
    kind = "gate_decision"


@dataclass(frozen=True)
class Outcome(_Simple):
    type: str
    amount: str | None = None
    currency: str | None = None
    due_date: str | None = None
    note: str | None = None
    kind = "outcome"


@dataclass(frozen=True)
class Annotation(_Simple):
    author: str
    label: str
    comment: str | None = None
    turn_index: int | None = None
    kind = "annotation"


@dataclass(frozen=True)
class Access(_Simple):
    user: str
    purpose: str
    kind = "access"


@dataclass(frozen=True)
class LegalHold(_Simple):
    reason: str
    by: str
    kind = "legal_hold"


@dataclass(frozen=True)
class LegalHoldRelease(_Simple):
    reason: str
    by: str
    kind = "legal_hold_release"


@dataclass(frozen=True)
class ConversationStart(_Simple):
    pack: str  # policy pack ("cn", "us"): decides the retention period
    channel: str | None = None
    kind = "conversation"
