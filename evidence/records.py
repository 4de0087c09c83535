"""Evidence record kinds and their canonical, hashed serialisation.

A record's leaf data is canonical JSON (sorted keys, no whitespace, UTF-8) of
{"v", "kind", "ts", "conversation_id", "body", "payloads"}. The UTC timestamp is inside the hashed bytes
(unlike Rekor's integrated time), and payloads (turn text, audio) appear only as {"sha256", "size"} so
retention can erase them while every leaf stays verifiable.

Personal values in bodies are sealed (issue 18; such a record says "v": 2). A leaf commits to its body, and
erasure cannot rewrite a leaf, so whatever a body holds stays readable for as long as the log exists. So before a
record of a conversation is encoded, every value under a personal field name (PERSONAL_FIELDS, at any depth: what
was said or keyed, phone numbers, names, notes) moves into one payload of the record, `personal`: canonical JSON of
{"salt": 128 random bits, "fields": [[path, value], ...]}, and the body keeps `{"sealed": "personal"}` in its
place. The leaf commits to the payload's SHA-256, a salted commitment: it proves the values while the payload
exists, and says nothing about them once erasure deleted it (a digest of "4472" alone could be reversed by trying
every 4-digit string; with the salt it cannot). Readers get bodies back whole from `EvidenceLog.get`, with
ERASED in place of each erased value. Pseudonymous ids (account, call, conversation) and the facts of the
conversation (outcome types, amounts, dates, timings, confidences) are not personal fields: they stay.
"""

from __future__ import annotations

import copy
import json
import math
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1
SEALED_SCHEMA_VERSION = 2  # a record whose personal body values are sealed into its `personal` payload

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
                 "identity_verified", "verification_failed", "disclosure", "legal_threat",
                 "billing_update",
                 "promise_kept", "promise_broken", "reminder_due", "campaign_reentry")  # the last 4: follow-through
# a person's decisions in the console's work queue (issue 20, console/views_work.py)
OUTCOME_TYPES += ("dispute_resolution", "review_decision", "work_item_closed")
SPEAKERS = ("bot", "debtor", "agent", "system")
# Kinds that describe something said or done in a conversation and therefore need its id.
NEEDS_CONVERSATION = {"turn", "outcome", "three_elements", "erasure", "legal_hold", "legal_hold_release",
                      "conversation", "access"}
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# meta.idx is one tab-separated line per record: a conversation id never holds a control character.
_CONVERSATION_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,512}$")
MAX_DEPTH = 32  # nesting of a record body; deeper is junk (and would exhaust the recursion of a reader)


# Body field names whose values are personal (at any depth of a record of a conversation): sealed, so erasure
# removes them. Producers outside duebot write bodies too, hence the generous list.
PERSONAL_FIELDS = frozenset({
    # what the subscriber said, wrote or keyed
    "text", "message", "transcript", "text_as_written", "last_message", "keyword", "dtmf", "digits",
    # who they are and how they are reached
    "sender", "caller", "callee", "from", "to", "phone", "phone_number", "msisdn", "email", "address",
    "name", "full_name", "first_name", "last_name", "birth_date", "date_of_birth", "dob", "id_last4", "id_number",
    # notes about them, and links made for them
    "details", "note", "notes", "comment", "url",
})
PERSONAL_PAYLOAD = "personal"
ERASED = "[erased under retention]"


class RecordError(ValueError):
    pass


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def check_json(value: Any, where: str = "body", depth: int = 0) -> None:
    """Refuse what canonical JSON cannot hold exactly: NaN and infinities (Rasa's ujson and Python's json write
    them, the log's encoder refuses them), non-string keys, and any value that is not JSON (bytes, dates, sets).
    The error names the offending path, e.g. `body.metadata.score`."""
    if depth > MAX_DEPTH:
        raise RecordError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordError(f"{where}: {value!r} is not a finite number (JSON has no NaN or Infinity)")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise RecordError(f"{where}: key {key!r} is not a string")
            check_json(item, f"{where}.{key}", depth + 1)
        return
    if isinstance(value, list | tuple):
        for n, item in enumerate(value):
            check_json(item, f"{where}[{n}]", depth + 1)
        return
    raise RecordError(f"{where}: a {type(value).__name__} is not a JSON value")


def validate(kind: str, body: dict[str, Any], conversation_id: str | None) -> None:
    if not isinstance(kind, str) or not _KIND_RE.match(kind):
        raise RecordError(f"bad record kind {kind!r}")
    if not isinstance(body, dict):
        raise RecordError(f"a record body is a JSON object, not a {type(body).__name__}")
    if conversation_id not in (None, "") and not (isinstance(conversation_id, str)
                                                  and _CONVERSATION_RE.match(conversation_id)):
        raise RecordError(f"bad conversation_id {conversation_id!r}: a string of 1 to 512 characters, "
                          "none of them a control character")
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
    check_json(body)


def _is_seal(value: Any) -> bool:
    return isinstance(value, dict) and value == {"sealed": PERSONAL_PAYLOAD}


def seal(body: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """The body with every personal value replaced by a seal, and the salted `personal` payload holding them
    (None when the body holds no personal value)."""
    found: list[list[Any]] = []

    def walk(value: Any, path: list[str | int]) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key in PERSONAL_FIELDS and item not in (None, ""):
                    found.append([[*path, key], item])
                    out[key] = {"sealed": PERSONAL_PAYLOAD}
                else:
                    out[key] = walk(item, [*path, key])
            return out
        if isinstance(value, list | tuple):
            return [walk(item, [*path, n]) for n, item in enumerate(value)]
        return value

    sealed = walk(body, [])
    if not found:
        return body, None
    return sealed, canonical_json({"salt": secrets.token_hex(16), "fields": found})


def unseal(body: dict[str, Any], personal: bytes | None) -> dict[str, Any]:
    """The body as it was appended, from its sealed form and its `personal` payload; with the payload erased (None),
    or unreadable, every seal reads ERASED."""
    out = copy.deepcopy(body)
    try:
        fields = json.loads(personal)["fields"] if personal is not None else []
        for path, value in fields:
            holder: Any = out
            for step in path[:-1]:
                holder = holder[step]
            if _is_seal(holder[path[-1]]):
                holder[path[-1]] = value
    except (ValueError, TypeError, KeyError, IndexError):
        pass  # damaged: `duebot evidence verify` names it (its digest no longer matches); shown as erased

    def erase(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ERASED if k in PERSONAL_FIELDS and _is_seal(v) else erase(v) for k, v in value.items()}
        if isinstance(value, list):
            return [erase(item) for item in value]
        return value

    return erase(out)


def unsealed_personal_values(body: dict[str, Any]) -> bool:
    """A body holding a personal value in the clear (appended before values were sealed): erasure cannot remove it."""
    def walk(value: Any) -> bool:
        if isinstance(value, dict):
            return any((k in PERSONAL_FIELDS and v not in (None, "") and not _is_seal(v)) or walk(v)
                       for k, v in value.items())
        if isinstance(value, list):
            return any(walk(item) for item in value)
        return False

    return walk(body)


def encode(kind: str, ts: str, conversation_id: str | None, body: dict[str, Any],
           payload_refs: dict[str, dict[str, Any]]) -> bytes:
    version = SEALED_SCHEMA_VERSION if PERSONAL_PAYLOAD in payload_refs else SCHEMA_VERSION
    data = canonical_json({"v": version, "kind": kind, "ts": ts, "conversation_id": conversation_id,
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
    # Read through EvidenceLog.get, `body` is as appended (sealed values put back, or ERASED) and `payloads` names
    # the payloads a reader shows (text, audio), the sealed personal values' own ref being `personal`; `data` holds
    # the exact leaf, sealed, with every ref.
    body: dict[str, Any]
    payloads: dict[str, dict[str, Any]]
    v: int = SCHEMA_VERSION
    personal: dict[str, Any] | None = None  # {"sha256", "size"} of the `personal` payload, when sealed
    personal_erased: bool = False  # its personal values were erased under retention (they read ERASED)

    def committed_payloads(self) -> dict[str, dict[str, Any]]:
        """Every payload ref the leaf commits to, the personal values' included: what erasure and export handle."""
        return {**self.payloads, **({PERSONAL_PAYLOAD: self.personal} if self.personal is not None else {})}

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
