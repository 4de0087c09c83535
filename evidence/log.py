"""EvidenceLog: the append-only, group-committed, checkpointed evidence log (the public facade)."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import threading
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from duebot.crypto import Keyring
from duebot.evidence import store
from duebot.evidence.checkpoint import Checkpoint, LogKey, latest_checkpoint, read_vkey, store_checkpoint
from duebot.evidence.durable import write_all
from duebot.evidence.merkle import MerkleTree, leaf_hash, tree_from_leaf_hashes
from duebot.evidence.records import (
    PERSONAL_PAYLOAD,
    Record,
    RecordError,
    canonical_json,
    encode,
    seal,
    unseal,
    utc_now,
    validate,
)
from duebot.evidence.store import RECORDS_PER_SEGMENT, CorruptLog, PayloadStore
from duebot.evidence.witness import DirectoryWitness, WitnessRefused, publish

DEFAULT_CHECKPOINT_INTERVAL = 5.0
_logger = logging.getLogger("duebot.evidence")


@dataclass(frozen=True)
class Receipt:
    """Returned once the record (and its payloads) are on stable storage."""

    index: int
    leaf_hash: bytes
    ts: str
    payloads: dict[str, dict[str, Any]]


@dataclass
class _Pending:
    index: int
    data: bytes
    kind: str
    conversation_id: str | None
    digests: list[str]
    to_sync: list[Path]


@dataclass(frozen=True)
class MetaEntry:
    index: int
    kind: str
    conversation_id: str
    digests: tuple[str, ...]

    def line(self) -> bytes:
        return f"{self.index}\t{self.kind}\t{self.conversation_id}\t{','.join(self.digests)}\n".encode()

    @classmethod
    def parse(cls, line: str) -> MetaEntry:
        index, kind, conv, digests = line.rstrip("\n").split("\t")
        return cls(int(index), kind, conv, tuple(d for d in digests.split(",") if d))


def meta_for(index: int, data: bytes) -> MetaEntry | None:
    rec = Record.decode(index, data)
    if not rec.conversation_id:
        return None
    digests = tuple(ref["sha256"] for ref in rec.payloads.values())
    return MetaEntry(index, rec.kind, rec.conversation_id, digests)


class EvidenceLog:
    """Open with `EvidenceLog.open(directory)`; `append()` returns only after the record is durable.

    Concurrent appenders share fsyncs (group commit): a writer thread takes every pending record, writes
    them with one write(), fsyncs their payloads and the segment once, then acknowledges them all.
    """

    def __init__(self, directory: Path, readonly: bool, checkpoint_interval: float) -> None:
        self.dir = directory
        self.readonly = readonly
        self.checkpoint_interval = checkpoint_interval
        self.key_file: Path | None = None
        self.witness: DirectoryWitness | None = None
        self.witnessed: Checkpoint | None = None  # the last checkpoint the witness accepted
        self.witness_error: str | None = None  # why the last publication failed (retried at the next checkpoint)
        self._to_witness: list[Checkpoint] = []  # signed, not yet published (a thread of its own publishes them)
        self._witness_cv = threading.Condition()
        self._witness_thread: threading.Thread | None = None
        self._witness_stop = False
        self.payload_store = PayloadStore(directory)
        self.tree = MerkleTree()
        self.offsets = array("Q")
        self.meta: list[MetaEntry] = []
        self.by_conversation: dict[str, list[int]] = {}
        self.digest_refs: dict[str, set[str]] = {}
        self.key: LogKey | None = None
        self.vkey = ""
        self.last_checkpoint: Checkpoint | None = None
        self.recovered_tail: Path | None = None
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._acked = threading.Condition(self._lock)
        self._tree_lock = threading.RLock()
        self._cp_lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._next = 0
        self._durable = 0
        self._last_ts = ""
        self._closing = False
        self._failure: BaseException | None = None
        self._seg_fd = -1
        self._seg_first = 0
        self._seg_offset = 0
        self._lock_fd = -1
        self._writer: threading.Thread | None = None

    # ------------------------------------------------------------ opening and recovery

    @classmethod
    def open(cls, directory: Path | str, *, readonly: bool = False,
             checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL, key_file: Path | None = None,
             witness: DirectoryWitness | Path | None = None, keyring: Keyring | None = None) -> EvidenceLog:
        """`key_file`: the signing key kept outside the directory (DUEBOT_EVIDENCE_KEY_FILE). `witness`: where every
        signed checkpoint is also published (DUEBOT_EVIDENCE_WITNESS_DIR); opening for writing first brings the
        witness up to the latest checkpoint and refuses a log that does not extend what the witness saw.
        `keyring`: what payloads are sealed and opened with (store.py; default: the deployment's, duebot/crypto.py)."""
        log = cls(Path(directory), readonly, checkpoint_interval)
        if keyring is not None:
            log.payload_store.keyring = keyring
        log.key_file = Path(key_file) if key_file is not None else None
        if witness is not None:
            log.witness = witness if isinstance(witness, DirectoryWitness) else DirectoryWitness(witness)
        try:
            log._open()
        except BaseException:
            log._release()
            raise
        return log

    def _open(self) -> None:
        d = self.dir
        if self.readonly:
            if not (d / "public.vkey").exists():
                raise FileNotFoundError(f"no evidence log in {d}")
            self.vkey = read_vkey(d)
        else:
            (d / "segments").mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise RuntimeError(f"evidence log {d} is open for writing by another process") from exc
            self.key = LogKey.load_or_create(d, self.key_file)
            self.vkey = self.key.vkey
            if not store.list_segments(d):
                store.durable_write(store.segment_path(d, 0), store.MAGIC)
        self.last_checkpoint = latest_checkpoint(d, self.vkey)
        self._load()
        cp = self.last_checkpoint
        if cp is not None:
            if cp.size > self.tree.size:
                raise CorruptLog(f"log has {self.tree.size} records but checkpoint {cp.size} was signed: "
                                 f"records from {self.tree.size} on are missing (truncated log)")
            if self.tree.root(cp.size) != cp.root:
                raise CorruptLog(f"root at size {cp.size} differs from the signed checkpoint")
        self._next = self._durable = self.tree.size
        if self.witness is not None and not self.readonly and self.key is not None:
            if cp is not None:
                self._publish(cp, strict=True)
            else:
                try:
                    seen = self.witness.latest(self.key.origin)
                except (OSError, ValueError):
                    seen = None  # an unreadable witness: `verify` reports it
                if seen is not None:
                    raise CorruptLog(f"the witness {self.witness.root} saw {seen.size} records of {self.key.origin}, "
                                     "but this log has no signed checkpoint: it was replaced")
        if not self.readonly:
            self._seg_fd = os.open(store.segment_path(d, self._seg_first), os.O_WRONLY | os.O_APPEND)
            self._writer = threading.Thread(target=self._run_writer, name="evidence-writer", daemon=True)
            self._writer.start()

    def _load(self) -> None:
        """Trust the derived index files below the last segment (fsynced when a segment closes) and rebuild
        everything from the first segment they do not fully cover, truncating a torn tail."""
        d = self.dir
        segments = store.list_segments(d)
        leaves = _read(d / "leaves.idx")
        offsets = _read(d / "offsets.idx")
        n_idx = min(len(leaves) // 32, len(offsets) // 8)
        last_first = segments[-1][0] if segments else 0
        start = min(n_idx - n_idx % RECORDS_PER_SEGMENT, last_first)
        hashes = bytearray(leaves[: start * 32])
        self.offsets.frombytes(offsets[: start * 8])
        new_meta: list[MetaEntry] = []
        for first, path in segments:
            if first < start:
                continue
            buf = path.read_bytes()
            scan = store.scan_segment(buf)
            is_last = first == last_first
            if not is_last and (scan.problem or len(scan.records) != RECORDS_PER_SEGMENT):
                raise CorruptLog(f"closed segment {path.name} is damaged at record "
                                 f"{first + len(scan.records)}: {scan.problem or 'short segment'}")
            if scan.problem and scan.good_end < len(buf):
                self._cut_tail(path, buf, scan.good_end, first + len(scan.records), scan.problem)
            for n, (off, data) in enumerate(zip(scan.offsets, scan.records, strict=True)):
                hashes += leaf_hash(data)
                self.offsets.append(off)
                entry = meta_for(first + n, data)
                if entry is not None:
                    new_meta.append(entry)
            if is_last:
                self._seg_first = first
                self._seg_offset = max(scan.good_end, len(store.MAGIC))
                if scan.good_end < len(store.MAGIC) and not self.readonly:  # header itself was torn
                    store.durable_write(path, store.MAGIC)
        self.tree = tree_from_leaf_hashes(bytes(hashes))
        kept_meta, meta_cut = _read_meta(d / "meta.idx", start)
        for entry in kept_meta + new_meta:
            self._index_meta(entry)
        if not self.readonly:
            size = self.tree.size
            _rewrite_tail(d / "leaves.idx", start * 32, bytes(hashes[start * 32 :]))
            _rewrite_tail(d / "offsets.idx", start * 8, self.offsets[start:].tobytes())
            _rewrite_tail(d / "meta.idx", meta_cut, b"".join(e.line() for e in new_meta))
            assert self.tree.size == size
        if self.tree.size:
            last = Record.decode(self.tree.size - 1, self.read(self.tree.size - 1))
            self._last_ts = last.ts

    def _cut_tail(self, path: Path, buf: bytes, good_end: int, index: int, problem: str) -> None:
        if self.readonly:
            return  # a live writer may be mid-append; readers just ignore the incomplete tail
        cp = self.last_checkpoint
        if cp is not None and index < cp.size:
            raise CorruptLog(f"record {index} in {path.name} is damaged ({problem}) but is covered by the "
                             f"signed checkpoint of size {cp.size}; refusing to truncate")
        # Keep the cut bytes for forensics rather than destroying them.
        rdir = self.dir / "recovered"
        rdir.mkdir(exist_ok=True)
        self.recovered_tail = rdir / f"{path.stem}-{good_end}-{int(time.time())}.tail"
        store.durable_write(self.recovered_tail, buf[good_end:])
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
            os.fsync(fh.fileno())

    def _index_meta(self, entry: MetaEntry) -> None:
        self.meta.append(entry)
        self.by_conversation.setdefault(entry.conversation_id, []).append(entry.index)
        for digest in entry.digests:
            self.digest_refs.setdefault(digest, set()).add(entry.conversation_id)

    # ------------------------------------------------------------ appending

    def append(self, kind: str, body: dict[str, Any], payloads: dict[str, bytes] | None = None, *,
               conversation_id: str | None = None) -> Receipt:
        """Append one record; returns after it and its payloads are fsynced.

        `conversation_id` may also be given as body["conversation_id"]; it is lifted to the top level.
        Payload bytes are stored content-addressed and only their SHA-256 and size enter the hashed record.
        """
        receipt = self._prepare_and_enqueue([(kind, body, payloads, conversation_id)])[0]
        self._wait_durable(receipt.index)
        return receipt

    def append_many(self, items: list[tuple[str, dict[str, Any], dict[str, bytes] | None, str | None]]
                    ) -> list[Receipt]:
        """Append (kind, body, payloads, conversation_id) items in this order; one wait for all of them.
        All or nothing: a RecordError for any item means none of them was appended."""
        receipts = self._prepare_and_enqueue(items)
        if receipts:
            self._wait_durable(receipts[-1].index)
        return receipts

    def _prepare_and_enqueue(self, items: list[tuple[str, dict[str, Any], dict[str, bytes] | None, str | None]]
                             ) -> list[Receipt]:
        """Payloads are stored before their record. When the record is refused, the sealed personal values just
        stored go again: no record names them, so no erasure would ever find them. (A content-addressed payload
        may be another record's too, and an orphan of it holds nothing that record does not: it stays.)"""
        prepared: list[tuple[str, dict[str, Any], str | None, dict[str, Any], list[Path]]] = []
        try:
            for kind, body, payloads, conversation_id in items:
                prepared.append(self._prepare(kind, body, payloads, conversation_id))
            return self._enqueue(prepared)
        except RecordError:
            for *_, refs, _ in prepared:
                if PERSONAL_PAYLOAD in refs:
                    self.payload_store.delete(refs[PERSONAL_PAYLOAD]["sha256"])
            raise

    def _prepare(self, kind: str, body: dict[str, Any], payloads: dict[str, bytes] | None,
                 conversation_id: str | None) -> tuple[str, dict[str, Any], str | None, dict[str, Any], list[Path]]:
        if self.readonly:
            raise RuntimeError("evidence log opened read-only")
        if not isinstance(body, dict):
            raise RecordError(f"a record body is a JSON object, not a {type(body).__name__}")
        body = dict(body)
        lifted = body.pop("conversation_id", None)
        conversation_id = conversation_id or lifted
        validate(kind, body, conversation_id)
        if payloads and PERSONAL_PAYLOAD in payloads:
            raise RecordError(f"payload name {PERSONAL_PAYLOAD!r} is reserved for the sealed personal values")
        if conversation_id:  # erasable: its personal values go into a salted payload (records.py)
            sealed, personal = seal(body)
            if personal is not None:
                size = len(canonical_json(body))  # the limit of a record is the same, sealed or not
                if size > store.MAX_RECORD:
                    raise RecordError(f"record of {size} bytes is larger than the {store.MAX_RECORD} bytes a segment "
                                      "frame holds")
                body, payloads = sealed, {**(payloads or {}), PERSONAL_PAYLOAD: personal}
        refs: dict[str, dict[str, Any]] = {}
        to_sync: list[Path] = []
        for name, blob in (payloads or {}).items():
            digest, path = self.payload_store.put(blob)
            refs[name] = {"sha256": digest, "size": len(blob)}
            if path is not None:
                to_sync.append(path)
        return kind, body, conversation_id, refs, to_sync

    def _enqueue(self, prepared: list[tuple[str, dict[str, Any], str | None, dict[str, Any], list[Path]]]
                 ) -> list[Receipt]:
        with self._lock:
            if self._failure is not None:
                raise RuntimeError("evidence writer failed") from self._failure
            if self._closing:
                raise RuntimeError("evidence log is closed")
            # encoded first, committed after: a record that cannot be encoded leaves no gap in the indexes
            encoded, last_ts = [], self._last_ts
            for kind, body, conversation_id, refs, _ in prepared:
                last_ts = max(utc_now(), last_ts)  # timestamps never go backwards in log order
                data = encode(kind, last_ts, conversation_id, body, refs)
                if len(data) > store.MAX_RECORD:  # a frame the segment format cannot hold: refuse, never write
                    raise RecordError(f"record of {len(data)} bytes is larger than the {store.MAX_RECORD} bytes "
                                      "a segment frame holds")
                encoded.append((data, last_ts))
            self._last_ts = last_ts
            receipts = []
            for (data, ts), (kind, _, conversation_id, refs, to_sync) in zip(encoded, prepared, strict=True):
                index = self._next
                self._next += 1
                self._pending.append(_Pending(index, data, kind, conversation_id,
                                              [r["sha256"] for r in refs.values()], to_sync))
                receipts.append(Receipt(index, leaf_hash(data), ts, refs))
            if receipts:
                self._work.notify()
        return receipts

    def _wait_durable(self, index: int) -> None:
        with self._lock:
            while self._durable <= index and self._failure is None:
                self._acked.wait()
            if self._durable <= index:
                raise RuntimeError("evidence writer failed; record not stored") from self._failure

    def record(self, obj: Any) -> Receipt:
        """Append a typed record (records.Turn, Outcome, GateDecision, ...)."""
        return self.append(obj.kind, obj.body(), obj.payloads() or None, conversation_id=obj.conversation_id)

    def _run_writer(self) -> None:
        last_cp_time = time.monotonic()
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    due = self.checkpoint_interval - (time.monotonic() - last_cp_time)
                    if self._needs_checkpoint() and due <= 0:
                        break
                    self._work.wait(timeout=max(due, 0.05) if self._needs_checkpoint() else None)
                batch, self._pending = self._pending, []
                closing = self._closing
            try:
                if batch:
                    self._write_batch(batch)
            except BaseException as exc:  # fail every waiter loudly rather than acknowledge a lost record
                with self._lock:
                    self._failure = exc
                    self._acked.notify_all()
                return
            if batch:
                with self._lock:
                    self._durable = batch[-1].index + 1
                    self._acked.notify_all()
            if self._needs_checkpoint() and (time.monotonic() - last_cp_time >= self.checkpoint_interval):
                with contextlib.suppress(OSError):
                    self.checkpoint()
                last_cp_time = time.monotonic()
            if closing and not batch:
                return

    def _needs_checkpoint(self) -> bool:
        cp = self.last_checkpoint
        return self.tree.size > (cp.size if cp else -1)

    def _write_batch(self, batch: list[_Pending]) -> None:
        pos = 0
        while pos < len(batch):
            room = RECORDS_PER_SEGMENT - (batch[pos].index - self._seg_first)
            if room == 0:
                self._roll_segment()
                continue
            chunk = batch[pos : pos + room]
            frames = [store.frame(p.data) for p in chunk]
            offsets = []
            off = self._seg_offset
            for f in frames:
                offsets.append(off)
                off += len(f)
            write_all(self._seg_fd, b"".join(frames))
            store.fsync_paths([path for p in chunk for path in p.to_sync])
            os.fdatasync(self._seg_fd)
            self._seg_offset = off
            hashes = [leaf_hash(p.data) for p in chunk]
            metas = [MetaEntry(p.index, p.kind, p.conversation_id, tuple(p.digests))
                     for p in chunk if p.conversation_id]
            # Derived indexes: written (not fsynced) after the data is durable; rebuilt on open if lost.
            _append_file(self.dir / "leaves.idx", b"".join(hashes))
            _append_file(self.dir / "offsets.idx", array("Q", offsets).tobytes())
            if metas:
                _append_file(self.dir / "meta.idx", b"".join(m.line() for m in metas))
            with self._tree_lock:
                for h in hashes:
                    self.tree.append(h)
                self.offsets.extend(offsets)
                for m in metas:
                    self._index_meta(m)
            pos += len(chunk)

    def _roll_segment(self) -> None:
        for name in ("leaves.idx", "offsets.idx", "meta.idx"):
            path = self.dir / name
            if path.exists():
                with open(path, "rb+") as fh:
                    os.fsync(fh.fileno())
        os.close(self._seg_fd)
        self._seg_first += RECORDS_PER_SEGMENT
        store.durable_write(store.segment_path(self.dir, self._seg_first), store.MAGIC)
        self._seg_fd = os.open(store.segment_path(self.dir, self._seg_first), os.O_WRONLY | os.O_APPEND)
        self._seg_offset = len(store.MAGIC)

    # ------------------------------------------------------------ checkpoints and proofs

    def checkpoint(self) -> Checkpoint:
        """Sign and store a checkpoint of every durable record (returns the last one if nothing is new)."""
        if self.key is None:
            raise RuntimeError("read-only log cannot sign checkpoints")
        with self._cp_lock:
            with self._tree_lock:
                size = self.tree.size
                root = self.tree.root(size)
            if self.last_checkpoint is not None and self.last_checkpoint.size == size:
                cp = self.last_checkpoint
                if self.witness is not None and (self.witnessed is None or self.witnessed.size < size):
                    self._publish_later(cp)  # a publication that failed before
                return cp
            cp = self.key.sign(size, root)
            store_checkpoint(self.dir, cp)
            self.last_checkpoint = cp
            self._publish_later(cp)
            return cp

    def _publish_later(self, cp: Checkpoint) -> None:
        """Queue a checkpoint for the witness: a slow or hung witness (a network file system) never holds up the
        appends, whose writer thread signs the checkpoints."""
        if self.witness is None:
            return
        with self._witness_cv:
            self._to_witness.append(cp)
            if len(self._to_witness) > 64:  # witness unreachable for long: the newest proves the rest
                del self._to_witness[:-1]
            self._witness_cv.notify()
            if self._witness_thread is None:
                self._witness_thread = threading.Thread(target=self._run_witness, name="evidence-witness",
                                                        daemon=True)
                self._witness_thread.start()

    def _run_witness(self) -> None:
        while True:
            with self._witness_cv:
                while not self._to_witness and not self._witness_stop:
                    self._witness_cv.wait()
                if not self._to_witness:
                    return
                cp = self._to_witness.pop(0)
            try:
                self._publish(cp)
            except Exception:  # noqa: BLE001 - this thread must outlive any one failure; the next checkpoint retries
                _logger.exception("evidence: publishing checkpoint %s to the witness failed", cp.size)

    def _stop_witness(self, timeout: float = 30.0) -> None:
        """Publish what is queued (waiting up to `timeout` s for the witness), then stop the thread."""
        with self._witness_cv:
            self._witness_stop = True
            self._witness_cv.notify()
            thread, self._witness_thread = self._witness_thread, None
        if thread is not None:
            thread.join(timeout)

    def _publish(self, cp: Checkpoint, strict: bool = False) -> None:
        """Send a signed checkpoint to the witness. A refusal means this log does not extend what the witness saw:
        at open (`strict`) that is a CorruptLog; later it is logged and kept in `witness_error`, as is a witness
        that cannot be reached, and the next checkpoint tries again. The log itself keeps working either way."""
        if self.witness is None:
            return
        try:
            self.witnessed = publish(self.witness, cp, self.vkey, self.consistency_proof)
            self.witness_error = None
        except WitnessRefused as exc:
            self.witness_error = f"witness {self.witness.root} refused checkpoint {cp.size}: {exc}"
            if strict:
                raise CorruptLog(self.witness_error) from exc
            _logger.error("evidence: %s", self.witness_error)
        except (OSError, ValueError) as exc:  # unreachable, or its own files damaged: `verify` reports which
            self.witness_error = f"witness {self.witness.root} unavailable for checkpoint {cp.size}: {exc}"
            _logger.warning("evidence: %s", self.witness_error)

    @property
    def size(self) -> int:
        return self.tree.size

    def root(self, size: int | None = None) -> bytes:
        with self._tree_lock:
            return self.tree.root(size)

    def leaf(self, index: int) -> bytes:
        with self._tree_lock:
            if not 0 <= index < self.tree.size:
                raise IndexError(f"no record {index}; log size {self.tree.size}")
            return self.tree.leaf(index)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        with self._tree_lock:
            return self.tree.inclusion_proof(index, size)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        with self._tree_lock:
            return self.tree.consistency_proof(old, new)

    # ------------------------------------------------------------ reading

    def read(self, index: int) -> bytes:
        with self._tree_lock:
            if not 0 <= index < len(self.offsets):
                raise IndexError(f"no record {index}; log size {len(self.offsets)}")
            offset = self.offsets[index]
        return store.read_frame(self.dir, index, offset)

    def get(self, index: int) -> Record:
        """Record `index` with its body as appended: sealed personal values put back, or ERASED once erased."""
        return self.unseal(Record.decode(index, self.read(index)))

    def unseal(self, rec: Record) -> Record:
        ref = rec.payloads.get(PERSONAL_PAYLOAD)
        if ref is None:
            return rec
        personal = self.payload_store.get(ref["sha256"])
        return dataclasses.replace(rec, body=unseal(rec.body, personal), personal=ref, personal_erased=personal is None,
                                   payloads={k: v for k, v in rec.payloads.items() if k != PERSONAL_PAYLOAD})

    def records_for(self, conversation_id: str) -> list[Record]:
        with self._tree_lock:
            indices = list(self.by_conversation.get(conversation_id, ()))
        records = [self.get(i) for i in indices]
        # The meta index is derived data: never trust it to attribute a record to a conversation.
        return [r for r in records if r.conversation_id == conversation_id]

    def conversations(self) -> list[str]:
        with self._tree_lock:
            return list(self.by_conversation)

    def payload(self, digest: str) -> bytes | None:
        return self.payload_store.get(digest)

    def iter_records(self, start: int = 0) -> Iterable[Record]:
        for i in range(start, self.size):
            yield self.get(i)

    # ------------------------------------------------------------ retention (see retention.py)

    def erase_payloads(self, conversation_id: str, *, reason: str, by: str, policy: Any = None,
                       now: Any = None) -> Receipt:
        """Delete a conversation's payloads once its retention period is over and no legal hold applies."""
        from duebot.evidence.retention import erase_conversation

        return erase_conversation(self, conversation_id, reason=reason, by=by, policy=policy, now=now)

    def verify(self) -> Any:
        """fsck of the on-disk state (read-only; see fsck.verify_directory)."""
        from duebot.evidence.fsck import verify_directory

        return verify_directory(self.dir)

    # ------------------------------------------------------------ closing

    def close(self) -> None:
        if self._writer is not None:
            with self._lock:
                self._closing = True
                self._work.notify()
            self._writer.join()
            self._writer = None
            if self._failure is None and self._needs_checkpoint():
                self.checkpoint()
        self._stop_witness()
        self._release()

    def _release(self) -> None:
        if self._seg_fd >= 0:
            os.close(self._seg_fd)
            self._seg_fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    def __enter__(self) -> EvidenceLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _read_meta(path: Path, start: int) -> tuple[list[MetaEntry], int]:
    """Entries below `start` and the byte length they occupy (later lines are rebuilt from segments)."""
    kept: list[MetaEntry] = []
    pos = 0
    for line in _read(path).splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            entry = MetaEntry.parse(line.decode())
        except (ValueError, UnicodeDecodeError):
            break
        if entry.index >= start:
            break
        kept.append(entry)
        pos += len(line)
    return kept, pos


def _rewrite_tail(path: Path, keep: int, tail: bytes) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, keep)
        os.lseek(fd, keep, os.SEEK_SET)
        write_all(fd, tail)
        os.fsync(fd)
    finally:
        os.close(fd)


def _append_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)

