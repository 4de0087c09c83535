"""Retention per policy pack, legal hold, and erasure (which is itself a logged record).

Erasure deletes a conversation's payload files: turn text and audio, and the `personal` payload that holds every
personal value of its record bodies (what was said or keyed, phone numbers, names, notes: records.py seals them
there when the record is appended). The records themselves stay, committing to the payloads only through their
SHA-256 (salted, for the personal values), so the log and every proof remain verifiable, and `duebot evidence
verify` counts the payloads as erased, not missing. The erasure record is appended *before* files are deleted:
a crash in between leaves files that are still present and valid, never a missing payload without an erasure
record; erasing again deletes what such a crash left.

Records appended before personal values were sealed keep theirs in the body, which no erasure can
remove: the erasure record lists them (`personal_left_in`), and the erasure is logged as incomplete.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from duebot.evidence.records import Record, unsealed_personal_values

if TYPE_CHECKING:
    from duebot.evidence.log import EvidenceLog, Receipt


_logger = logging.getLogger("duebot.evidence")


class RetentionError(RuntimeError):
    pass


class LegalHoldError(RetentionError):
    pass


@dataclass(frozen=True)
class RetentionPolicy:
    # cn: at least 2 years; us: 3 years (issue 5). Unknown packs get the longest period (fail safe).
    years: dict[str, int] = field(default_factory=lambda: {"cn": 2, "us": 3})

    def years_for(self, pack: str | None) -> int:
        return self.years.get(pack or "", max(self.years.values()))


def parse_ts(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def add_years(when: datetime, years: int) -> datetime:
    try:
        return when.replace(year=when.year + years)
    except ValueError:  # 29 February
        return when.replace(year=when.year + years, day=28)


def pack_of(records: list[Record]) -> str | None:
    for rec in records:
        if "pack" in rec.body:
            return str(rec.body["pack"])
    return None


def on_hold(records: list[Record]) -> bool:
    held = False
    for rec in records:
        if rec.kind == "legal_hold":
            held = True
        elif rec.kind == "legal_hold_release":
            held = False
    return held


def retained_until(records: list[Record], policy: RetentionPolicy) -> datetime:
    last = max(parse_ts(r.ts) for r in records if r.kind not in ("erasure", "access"))
    return add_years(last, policy.years_for(pack_of(records)))


def place_hold(log: EvidenceLog, conversation_id: str, *, reason: str, by: str) -> Receipt:
    return log.append("legal_hold", {"reason": reason, "by": by}, conversation_id=conversation_id)


def release_hold(log: EvidenceLog, conversation_id: str, *, reason: str, by: str) -> Receipt:
    return log.append("legal_hold_release", {"reason": reason, "by": by}, conversation_id=conversation_id)


def erase_conversation(log: EvidenceLog, conversation_id: str, *, reason: str, by: str,
                       policy: RetentionPolicy | None = None, now: datetime | None = None) -> Receipt:
    policy = policy or RetentionPolicy()
    now = now or datetime.now(UTC)
    records = log.records_for(conversation_id)
    if not records:
        raise KeyError(f"no records for conversation {conversation_id}")
    if on_hold(records):
        raise LegalHoldError(f"conversation {conversation_id} is under legal hold")
    until = retained_until(records, policy)
    if now < until:
        raise RetentionError(f"conversation {conversation_id} must be retained until {until.isoformat()}")
    already = {d for r in records if r.kind == "erasure" for d in r.body.get("erased", [])}
    everything = {ref["sha256"] for r in records for ref in r.committed_payloads().values()}
    digests = sorted(everything - already)
    # Content addressing shares identical payloads (e.g. a fixed bot prompt) across conversations: keep those.
    # A conversation releases a digest once one of its erasure records lists it (as erased or as kept_shared).
    released: dict[str, set[str]] = {}

    def releases(conv: str) -> set[str]:
        if conv not in released:
            released[conv] = {d for r in log.records_for(conv) if r.kind == "erasure"
                              for d in r.body.get("erased", []) + r.body.get("kept_shared", [])}
        return released[conv]

    def shared_with_others(digest: str) -> bool:
        return any(digest not in releases(c) for c in log.digest_refs.get(digest, set()) - {conversation_id})

    shared = [d for d in digests if shared_with_others(d)]
    erased = [d for d in digests if d not in shared]
    # Bodies of records appended before sealing hold their personal values in the leaf itself.
    left_in = [r.index for r in records if r.kind != "erasure" and unsealed_personal_values(json.loads(r.data)["body"])]
    receipt = log.append("erasure", {"erased": erased, "kept_shared": shared, "reason": reason, "by": by,
                                     "pack": pack_of(records), "retained_until": until.isoformat(),
                                     "personal_left_in": left_in},
                         conversation_id=conversation_id)
    # what this erasure lists, and what an earlier one listed but a crash left behind
    for digest in erased + [d for d in sorted(already) if not shared_with_others(d)]:
        log.payload_store.delete(digest)
    if left_in:
        _logger.warning("evidence: erasure of %s is incomplete: records %s predate sealed personal values and keep "
                        "them in their bodies", conversation_id, left_in)
    return receipt
