"""Retention per policy pack, legal hold, and payload erasure (which is itself a logged record).

Erasure removes payload files only (turn text, audio); the records and their digests stay, so the log and
every proof remain verifiable. The erasure record is appended *before* files are deleted: a crash in
between leaves files that are still present and valid, never a missing payload without an erasure record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from duebot.evidence.records import Record

if TYPE_CHECKING:
    from duebot.evidence.log import EvidenceLog, Receipt


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
    digests = sorted({ref["sha256"] for r in records for ref in r.payloads.values()} - already)
    # Content addressing shares identical payloads (e.g. a fixed bot prompt) across conversations: keep those.
    # A conversation releases a digest once one of its erasure records lists it (as erased or as kept_shared).
    released: dict[str, set[str]] = {}

    def releases(conv: str) -> set[str]:
        if conv not in released:
            released[conv] = {d for r in log.records_for(conv) if r.kind == "erasure"
                              for d in r.body.get("erased", []) + r.body.get("kept_shared", [])}
        return released[conv]

    shared = [d for d in digests
              if any(d not in releases(c) for c in log.digest_refs.get(d, set()) - {conversation_id})]
    erased = [d for d in digests if d not in shared]
    receipt = log.append("erasure", {"erased": erased, "kept_shared": shared, "reason": reason, "by": by,
                                     "pack": pack_of(records), "retained_until": until.isoformat()},
                         conversation_id=conversation_id)
    for digest in erased:
        log.payload_store.delete(digest)
    return receipt
