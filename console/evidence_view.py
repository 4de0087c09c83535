"""What the console reads from the evidence log, and how it writes to it.

The web process never opens the log for writing: `duebot evidence writer` is its single writer. It reads a
read-only view, reopened when the log files change, and submits its own records (access, annotation) through
the Redis inbox, then waits until the writer made them durable."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duebot.console.i18n import N_, Msg
from duebot.console.masking import Masker
from duebot.evidence.checkpoint import Checkpoint, list_checkpoints
from duebot.evidence.inbox import EvidenceInbox
from duebot.evidence.log import EvidenceLog
from duebot.evidence.records import Record
from duebot.evidence.verifier import leaf_hash, verify_inclusion
from duebot.settings import load_settings

LOW_ASR = 0.75  # below this the voice pipeline reads amounts and dates back: QA should listen
STRONG_NEGATIVE = 0.7  # policies/emotion.yml strong_negative
FLAGS = {
    "missing_legal_element": N_("missing legal element"),
    "emotion_escalation": N_("emotion escalation"),
    "opt_out": N_("opt-out"),
    "dispute": N_("dispute"),
    "low_asr_confidence": N_("low ASR confidence"),
}
# Records the console itself writes about a conversation (who read it, QA's notes): not part of the conversation,
# so they do not make it "newer" in the transcript list or its date filter.
CONSOLE_KINDS = frozenset({"access", "annotation"})


class LogReader:
    """A read-only EvidenceLog snapshot. Opening one re-reads the index (~1.5 s for 50k records here), so when the
    writer has appended or signed since, a background thread opens the next snapshot while requests keep using the
    current one: pages are at most one reopen behind the log and never wait for it."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._log: EvidenceLog | None = None
        self._stamp: tuple[Any, ...] | None = None
        self._lock = threading.Lock()
        self._refreshing = False

    def _fingerprint(self) -> tuple[Any, ...]:
        stamps = []
        for name in ("leaves.idx", "checkpoint"):
            try:
                st = (self.dir / name).stat()
                stamps.append((st.st_size, st.st_mtime_ns))
            except FileNotFoundError:
                stamps.append(None)
        segments = sorted((self.dir / "segments").glob("*.seg")) if (self.dir / "segments").is_dir() else []
        last = segments[-1].stat().st_size if segments else 0
        return (*stamps, len(segments), last)

    def log(self) -> EvidenceLog | None:
        """The latest snapshot; None until the writer has created the log."""
        with self._lock:
            if self._log is None:
                stamp = self._fingerprint()
                try:
                    self._log = EvidenceLog.open(self.dir, readonly=True)
                except FileNotFoundError:
                    return None
                self._stamp = stamp
            elif not self._refreshing and self._fingerprint() != self._stamp:
                self._refreshing = True
                threading.Thread(target=self._refresh, name="evidence-snapshot", daemon=True).start()
            return self._log

    def _refresh(self) -> None:
        try:
            stamp = self._fingerprint()  # taken first: a change during the open triggers the next refresh
            fresh = EvidenceLog.open(self.dir, readonly=True)
            with self._lock:
                self._log, self._stamp = fresh, stamp
        except Exception:  # noqa: BLE001 - keep serving the last good snapshot; the next request retries
            logging.getLogger("duebot.console").exception("evidence snapshot refresh failed")
        finally:
            with self._lock:
                self._refreshing = False


@dataclass
class Summary:
    conversation_id: str
    account_id: str | None = None
    first_ts: str = ""
    last_ts: str = ""  # of the last record of the conversation itself (not an access or annotation record)
    channels: set[str] = field(default_factory=set)
    turns: int = 0
    outcomes: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    annotations: int = 0

    def add(self, rec: Record) -> None:
        body = rec.body
        if rec.kind not in CONSOLE_KINDS:
            self.first_ts = self.first_ts or rec.ts
            self.last_ts = rec.ts
        if isinstance(body.get("account_id"), str) and body["account_id"]:
            self.account_id = body["account_id"]
        if rec.kind in ("turn", "voice_turn"):
            if rec.kind == "turn":
                self.turns += 1
                if body.get("channel"):
                    self.channels.add(str(body["channel"]))
            else:
                self.channels.add("voice")
            conf = body.get("asr_confidence")
            if isinstance(conf, int | float) and conf < LOW_ASR:
                self.flags.add("low_asr_confidence")
            score = body.get("emotion_score")
            if body.get("speaker") in ("debtor", "caller") and (
                    body.get("emotion_label") in ("angry", "distressed") and isinstance(score, int | float)
                    and score >= STRONG_NEGATIVE or body.get("legal_threat") is True):
                self.flags.add("emotion_escalation")
        elif rec.kind == "outcome":
            kind = str(body.get("type"))
            self.outcomes.append(kind)
            if kind in ("opt_out", "dispute"):
                self.flags.add(kind)
        elif rec.kind == "three_elements":
            # the latest assessment wins: a later, complete conversation clears an earlier flag
            if body.get("flagged_for_qa"):
                self.flags.add("missing_legal_element")
            else:
                self.flags.discard("missing_legal_element")
        elif rec.kind == "annotation":
            self.annotations += 1


@dataclass(frozen=True)
class Filters:
    campaign_accounts: frozenset[str] | None = None  # accounts of the chosen campaign
    outcome: str | None = None
    flag: str | None = None
    date_from: str | None = None  # YYYY-MM-DD, on the conversation's last record
    date_to: str | None = None

    def match(self, s: Summary) -> bool:
        if self.campaign_accounts is not None and s.account_id not in self.campaign_accounts:
            return False
        if self.outcome and self.outcome not in s.outcomes:
            return False
        if self.flag and self.flag not in s.flags:
            return False
        day = s.last_ts[:10]
        if self.date_from and day < self.date_from:
            return False
        return not (self.date_to and day > self.date_to)


class Catalog:
    """Per-conversation summaries, updated incrementally from the records appended since the last look."""

    def __init__(self, reader: LogReader, account_of_conversation=None) -> None:  # noqa: ANN001
        self.reader = reader
        self.summaries: dict[str, Summary] = {}
        self.seen = 0
        self._lock = threading.Lock()
        # fallback when no record names the account: "sms:<account id>" and similar ids
        self.account_of_conversation = account_of_conversation or (lambda _c: None)

    def refresh(self) -> EvidenceLog | None:
        log = self.reader.log()
        if log is None:
            return None
        with self._lock:
            if log.size < self.seen:  # a different log (tests reuse processes): start over
                self.summaries, self.seen = {}, 0
            for rec in log.iter_records(self.seen):
                if rec.conversation_id:
                    summary = self.summaries.setdefault(rec.conversation_id, Summary(rec.conversation_id))
                    summary.add(rec)
            self.seen = log.size
            for s in self.summaries.values():
                if s.account_id is None:
                    s.account_id = self.account_of_conversation(s.conversation_id)
        return log

    def search(self, filters: Filters) -> list[Summary]:
        self.refresh()
        with self._lock:
            found = [s for s in self.summaries.values() if s.turns and filters.match(s)]
        return sorted(found, key=lambda s: s.last_ts, reverse=True)

    def outcomes(self) -> list[str]:
        with self._lock:
            return sorted({o for s in self.summaries.values() for o in s.outcomes})


# ------------------------------------------------------------------------------------ integrity


@dataclass(frozen=True)
class Integrity:
    state: str  # verified | pending | failed | unsigned
    checked: int
    pending: int
    checkpoint: Checkpoint | None
    problem: str | None = None
    pinned: bool = False  # the checkpoint's signature was checked against the pinned key (DUEBOT_EVIDENCE_TRUSTED_KEY)

    @property
    def label(self) -> str:
        key = " (pinned key)" if self.pinned else ""
        if self.state == "verified":
            return (f"Integrity verified{key}: {self.checked} records in the signed checkpoint of "
                    f"{self.checkpoint.size}")
        if self.state == "pending":
            return (f"{self.checked} records verified{key}; {self.pending} newer than the latest checkpoint "
                    "(signed within seconds)")
        if self.state == "unsigned":
            return "No signed checkpoint yet"
        return f"INTEGRITY FAILURE: {self.problem}"


_pinned_cache: dict[tuple[str, int], str] = {}


def pinned_vkey() -> str | None:
    """The pinned public key named by DUEBOT_EVIDENCE_TRUSTED_KEY (re-read when the file changes), None when none is
    configured; ValueError when one is configured but cannot be read."""
    path = load_settings().evidence.trusted_key
    if path is None:
        return None
    try:
        stamp = (str(path), path.stat().st_mtime_ns)
        if stamp not in _pinned_cache:
            _pinned_cache.clear()
            _pinned_cache[stamp] = path.read_text().strip()
        return _pinned_cache[stamp]
    except OSError as exc:
        raise ValueError(f"the pinned key {path} (DUEBOT_EVIDENCE_TRUSTED_KEY) is unreadable: {exc}") from exc


def check_integrity(log: EvidenceLog, records: Iterable[Record]) -> Integrity:
    """Each record's leaf hash, recomputed from the bytes on disk, must reach the signed root through its
    inclusion proof (RFC 9162 §2.1.3.2, evidence/verifier.py). The checkpoint's signature was verified when the
    log was opened (Checkpoint.parse) against public.vkey beside the log; when a key is pinned
    (DUEBOT_EVIDENCE_TRUSTED_KEY) it is verified again against that one, which whoever writes the log cannot
    replace."""
    cp = log.last_checkpoint
    records = list(records)
    if cp is None:
        return Integrity("unsigned", 0, len(records), None)
    try:
        pinned = pinned_vkey()
        if pinned is not None:
            Checkpoint.parse(cp.note, pinned)
    except (ValueError, UnicodeDecodeError) as exc:
        return Integrity("failed", 0, len(records), cp,
                         Msg("the latest checkpoint is not signed by the pinned key: {error}", error=str(exc)))
    checked = pending = 0
    for rec in records:
        if rec.index >= cp.size:
            pending += 1
            continue
        proof = log.inclusion_proof(rec.index, cp.size)
        if not verify_inclusion(leaf_hash(rec.data), rec.index, cp.size, proof, cp.root):
            return Integrity("failed", checked, pending, cp,
                             Msg("record {index} does not match the signed log", index=rec.index), pinned is not None)
        checked += 1
    return Integrity("pending" if pending else "verified", checked, pending, cp, pinned=pinned is not None)


# ------------------------------------------------------------------------------------ a transcript for a page

SHOWN = 300  # characters of a malformed value shown as text
CALL_PARTS = ("caller_wav", "bot_wav", "audio_wav")  # the order a transcript lists a call's recordings in


def _compact(value: Any) -> str:
    """Any JSON value as text: a string as it is, anything else as compact JSON; cut to SHOWN characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text[:SHOWN] + "…" if len(text) > SHOWN else text


def _shown(value: Any, masker: Masker) -> str:
    return masker.text(_compact(value))


def _label(value: Any, masker: Masker) -> str | None:
    """A field that should be a short string (speaker, channel, label): kept if it is one, else shown as text."""
    return value if isinstance(value, str) or value is None else _shown(value, masker)


def _score(value: Any, masker: Masker) -> float | str | None:
    """A number the page formats (%.2f): a float when it is a real number, else the value as text."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return _shown(value, masker)


def _strings(value: Any, masker: Masker) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [item if isinstance(item, str) else _shown(item, masker) for item in items]


def _index(value: Any, masker: Masker) -> int | str | None:
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        return value
    return _shown(value, masker)


def transcript_view_model(evidence: Any, records: list[Record], masker: Masker) -> dict[str, Any]:
    """What transcript.html shows of a conversation's records. Records are evidence of any JSON shape (producers
    outside duebot write them): every field is coerced to what the page formats, or shown as (masked) text, so a
    malformed value is visible and never an error."""
    def text(rec: Record) -> str:
        ref = rec.payloads.get("text")
        if ref is None:
            return _shown(rec.body.get("text"), masker) if rec.body.get("text") else Msg("(no text)")
        raw = evidence.payload(ref["sha256"])
        return Msg("[text erased under retention]") if raw is None else masker.text(raw.decode("utf-8", "replace"))

    turns, voice, events, annotations, accesses, audio = [], [], [], [], [], []
    assessment = None
    n = -1
    for rec in records:
        b = rec.body
        if rec.kind == "turn":
            n += 1
            turns.append({"n": n, "index": rec.index, "speaker": _label(b.get("speaker"), masker),
                          "channel": _label(b.get("channel"), masker),
                          "started_at": _label(b.get("started_at"), masker),
                          "ended_at": _label(b.get("ended_at"), masker), "text": text(rec),
                          "emotion": _label(b.get("emotion_label"), masker),
                          "emotion_score": _score(b.get("emotion_score"), masker),
                          "asr": _score(b.get("asr_confidence"), masker),
                          "legal": _strings(b.get("legal_elements"), masker),
                          "intent": _label(b.get("intent"), masker)})
        elif rec.kind == "voice_turn":
            ref = rec.payloads.get("audio_wav")
            voice.append({"index": rec.index, "speaker": _label(b.get("speaker"), masker),
                          "at": _score(b.get("started_at"), masker), "until": _score(b.get("ended_at"), masker),
                          "text": _shown(b.get("text"), masker), "asr": _score(b.get("asr_confidence"), masker),
                          "interrupted": b.get("interrupted") is True, "audio": ref["sha256"] if ref else None})
        elif rec.kind == "voice_call":
            # voice/recorder.py stores each side of the call on its own: caller_wav (what the subscriber's line
            # sent) and bot_wav (what the assistant played, placed at the time it went out); older producers one
            # mixed audio_wav
            audio += [{"part": name, "sha256": ref["sha256"]} for name, ref in sorted(
                rec.payloads.items(), key=lambda item: (CALL_PARTS.index(item[0]) if item[0] in CALL_PARTS else 9,
                                                        item[0]))]
        elif rec.kind == "annotation":
            annotations.append({"ts": rec.ts, "author": _label(b.get("author"), masker),
                                "label": _label(b.get("label"), masker), "comment": _shown(b.get("comment"), masker),
                                "turn": _index(b.get("turn_index"), masker)})
        elif rec.kind == "access":
            accesses.append({"ts": rec.ts, "user": _label(b.get("user"), masker),
                             "purpose": _label(b.get("purpose"), masker), "masked": b.get("masked")})
        elif rec.kind == "three_elements":
            assessment = {"ts": rec.ts, "identity": b.get("identity_confirmed") is True,
                          "amount": b.get("amount_stated") is True, "deadline": b.get("deadline_stated") is True,
                          "missing": _strings(b.get("missing"), masker)}
        else:
            details = {k: masker.value("amount", _compact(v)) if k == "amount" else _shown(v, masker)
                       for k, v in b.items() if k not in ("rid", "type", "decision") and v not in (None, "")}
            events.append({"ts": rec.ts, "kind": rec.kind, "type": _label(b.get("type"), masker),
                           "details": details})
    return {"turns": turns, "voice": voice, "events": events, "annotations": annotations, "accesses": accesses,
            "assessment": assessment, "call_audio": audio}


# ------------------------------------------------------------------------------------ writing via the inbox


class InboxWriter:
    """Submit a record through the writer's inbox and wait until it is in the log (returns its Record)."""

    def __init__(self, reader: LogReader, inbox: EvidenceInbox, timeout: float = 10.0) -> None:
        self.reader, self.inbox, self.timeout = reader, inbox, timeout

    def submit(self, kind: str, body: dict[str, Any], conversation_id: str, wait: bool = True) -> Record | None:
        submitted = self.inbox.submit(kind, body, conversation_id=conversation_id)
        return self.wait_for(conversation_id, submitted.rid) if wait else None

    def wait_for(self, conversation_id: str, rid: str) -> Record:
        deadline = time.monotonic() + self.timeout
        while True:
            log = self.reader.log()
            if log is not None:
                for rec in reversed(log.records_for(conversation_id)):
                    if rec.body.get("rid") == rid:
                        return rec
            if time.monotonic() > deadline:
                raise TimeoutError("the evidence writer did not store the record in time (is it running?)")
            time.sleep(0.1)

    def checkpoint_covering(self, index: int) -> tuple[EvidenceLog, Checkpoint]:
        """Wait until a signed checkpoint covers `index` (the writer signs at least every 5 s)."""
        deadline = time.monotonic() + self.timeout
        while True:
            log = self.reader.log()
            if log is not None and log.last_checkpoint is not None and log.last_checkpoint.size > index:
                return log, log.last_checkpoint
            if time.monotonic() > deadline:
                raise TimeoutError("no signed checkpoint covers the new record yet; try again in a few seconds")
            time.sleep(0.2)


class BundleLog:
    """The slice of EvidenceLog that evidence/bundle.py's export uses, backed by the inbox and a read-only
    view: the export's access record goes through the writer, and the bundle is proved against the first
    checkpoint the writer signs after it. So the bundle is the writer's, not a second implementation."""

    def __init__(self, writer: InboxWriter) -> None:
        self.writer = writer
        self._log: EvidenceLog | None = writer.reader.log()

    @property
    def _view(self) -> EvidenceLog:
        if self._log is None:
            raise KeyError("no evidence log yet")
        return self._log

    def records_for(self, conversation_id: str) -> list[Record]:
        return self._view.records_for(conversation_id)

    def append(self, kind: str, body: dict[str, Any], *, conversation_id: str) -> Record:
        rec = self.writer.submit(kind, body, conversation_id)
        assert rec is not None
        self._pending_index = rec.index
        return rec

    def checkpoint(self) -> Checkpoint:
        self._log, cp = self.writer.checkpoint_covering(getattr(self, "_pending_index", 0))
        return cp

    def payload(self, digest: str) -> bytes | None:
        return self._view.payload(digest)

    def leaf(self, index: int) -> bytes:
        return self._view.leaf(index)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return self._view.inclusion_proof(index, size)

    @property
    def vkey(self) -> str:
        return self._view.vkey


def checkpoints(directory: Path) -> int:
    return len(list_checkpoints(directory))
