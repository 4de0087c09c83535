"""The script elements a collection conversation must contain, per pack (`script_elements` in
policies/packs/<pack>.yml): the court's three (identity confirmed, amount, deadline) everywhere, and the pack's
own: cn adds the consequence of not paying (seed 000 §6.2, §9.2), us the debt-collector notice (Reg F).
The record kind keeps its first name, `three_elements`.

Detector, in order of trust:
1. explicit tags the dialogue puts on a turn: body["legal_elements"] ⊇ {"identity_confirmed", "amount",
   "deadline"}; a record whose body has "identity_verified": true (e.g. the identity step's gate decision)
   also confirms identity;
2. fallback text patterns over *bot* turns only (what the debtor was told): currency amounts, calendar
   dates or "within N days", and phrases acknowledging a confirmed identity (English and Chinese).
The result names the log index and transcript position (n-th turn) of each hit and is appended as a
`three_elements` record; conversations missing any element their pack requires are flagged for QA. The pack is
the one a record of the conversation names (the disclosure outcome carries it); none: the court's three.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from duebot.evidence.records import Record
from duebot.policies.packs import DEFAULT_SCRIPT, SCRIPT_ELEMENTS, script_of

if TYPE_CHECKING:
    from duebot.evidence.log import EvidenceLog, Receipt

ELEMENTS = SCRIPT_ELEMENTS
_AMOUNT = re.compile(r"(?:[$¥￥]|\b(?:USD|CNY|RMB)\s?)\s?\d[\d,]*(?:\.\d{1,2})?"
                     r"|\d[\d,]*(?:\.\d{1,2})?\s?(?:元|块|美元|dollars?\b|yuan\b|USD\b|CNY\b|RMB\b)", re.I)
_MONTHS = "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:tember)?" \
          "|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
_DEADLINE = re.compile(rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\d{{1,2}}月\d{{1,2}}[日号]"
                       rf"|\b(?:{_MONTHS})\.? \d{{1,2}}(?:st|nd|rd|th)?\b"
                       rf"|\b\d{{1,2}}(?:st|nd|rd|th)? (?:of )?(?:{_MONTHS})\b"
                       r"|\bwithin \d+ (?:business )?days\b"
                       r"|\d+\s?(?:天|日)内", re.I)
_IDENTITY = re.compile(r"thank(?:s| you) for confirming|identity (?:has been |is )?(?:confirmed|verified)"
                       r"|身份(?:已)?(?:确认|核实|验证)", re.I)
_CONSEQUENCE = re.compile(r"\b(?:suspend\w*|disconnect\w*|legal (?:action|means|proceedings)|court)\b"
                          r"|停机|暂停.{0,8}服务|依法追缴|法律(?:责任|后果|途径)|起诉", re.I)
_COLLECTOR = re.compile(r"communication from a debt collector|债务催收方", re.I)
_PATTERNS = {"amount": _AMOUNT, "deadline": _DEADLINE, "identity_confirmed": _IDENTITY,
             "consequence": _CONSEQUENCE, "collector_notice": _COLLECTOR}


@dataclass(frozen=True)
class Hit:
    element: str
    index: int  # log index of the record
    turn: int | None  # position in the transcript (0-based turn number), None for non-turn records
    via: str  # "tag", "identity_verified" or "text"
    match: str | None = None


@dataclass(frozen=True)
class ThreeElements:
    conversation_id: str
    hits: tuple[Hit, ...] = field(default_factory=tuple)
    required: tuple[str, ...] = DEFAULT_SCRIPT

    def found(self, element: str) -> bool:
        return any(h.element == element for h in self.hits)

    @property
    def missing(self) -> list[str]:
        return [e for e in self.required if not self.found(e)]

    def first_match(self, element: str) -> str | None:
        return next((h.match for h in self.hits if h.element == element and h.match), None)

    def body(self) -> dict[str, Any]:
        return {"identity_confirmed": self.found("identity_confirmed"), "amount_stated": self.found("amount"),
                "deadline_stated": self.found("deadline"), "amount": self.first_match("amount"),
                "deadline": self.first_match("deadline"), "missing": self.missing,
                "consequence_stated": self.found("consequence"),
                "collector_notice_stated": self.found("collector_notice"), "required": list(self.required),
                "flagged_for_qa": bool(self.missing), "where": [asdict(h) for h in self.hits],
                "detector": "tags+patterns/2"}


def required_by(records: list[Record]) -> tuple[str, ...]:
    """The script elements of the pack the conversation's records name (a string `pack` in a body)."""
    for rec in records:
        pack = rec.body.get("pack")
        if isinstance(pack, str) and pack:
            return script_of(pack.partition("@")[0])  # "cn" or a pack id, "cn@1"
    return DEFAULT_SCRIPT


def assess(conversation_id: str, records: list[Record],
           text_of: Callable[[Record], str | None]) -> ThreeElements:
    hits: list[Hit] = []
    turn_no = -1
    for rec in records:
        turn = None
        if rec.kind == "turn":
            turn_no += 1
            turn = turn_no
        if rec.body.get("identity_verified") is True:
            hits.append(Hit("identity_confirmed", rec.index, turn, "identity_verified"))
        if rec.kind != "turn":
            continue
        raw_tags = rec.body.get("legal_elements")  # any JSON may arrive here: only a list of strings is tags
        tags = {t for t in raw_tags if isinstance(t, str)} if isinstance(raw_tags, list) else set()
        for element in ELEMENTS:
            if element in tags:
                hits.append(Hit(element, rec.index, turn, "tag"))
        if rec.body.get("speaker") != "bot":
            continue
        text = text_of(rec)
        if not text:
            continue
        for element, pattern in _PATTERNS.items():
            m = pattern.search(text)
            if m and element not in tags:
                hits.append(Hit(element, rec.index, turn, "text", m.group(0)))
    return ThreeElements(conversation_id, tuple(hits), required_by(records))


def record_three_elements(log: EvidenceLog, conversation_id: str) -> tuple[ThreeElements, Receipt]:
    records = [r for r in log.records_for(conversation_id) if r.kind != "three_elements"]

    def text_of(rec: Record) -> str | None:
        ref = rec.payloads.get("text")
        raw = log.payload(ref["sha256"]) if ref else None
        return raw.decode("utf-8", "replace") if raw is not None else None

    result = assess(conversation_id, records, text_of)
    return result, log.append("three_elements", result.body(), conversation_id=conversation_id)


def flagged_for_qa(log: EvidenceLog) -> list[str]:
    """Conversations whose latest three-elements assessment misses an element."""
    flagged = []
    for conv in log.conversations():
        latest = [r for r in log.records_for(conv) if r.kind == "three_elements"]
        if latest and latest[-1].body.get("flagged_for_qa"):
            flagged.append(conv)
    return flagged
