"""Append-only storage: record segments, a leaf-hash index, a metadata index and a payload store.

Layout under the evidence directory (every file is either immutable once closed or append-only, so an
S3-compatible object store can hold closed segments, checkpoints and payloads as plain objects):

    segments/0000000000000000.seg   records [first_index, first_index + RECORDS_PER_SEGMENT)
    leaves.idx                      per record: 32-byte leaf hash + u64 offset in its segment (derived data)
    meta.idx                        per record with a conversation: "index<TAB>kind<TAB>conv<TAB>digests"
    payloads/ab/cdef...             content-addressed payloads (SHA-256 of the plaintext bytes), each sealed
                                    at rest (below)
    checkpoints/<size>              signed notes; `checkpoint` is a copy of the latest
    log.key, public.vkey, origin    the log identity (log.key mode 0600; elsewhere when DUEBOT_EVIDENCE_KEY_FILE
                                    names a file outside this directory, which is the safer place)

A segment starts with MAGIC, then frames `u32 length | u32 crc32(data) | data`, where data is the exact
leaf data. The CRC lets recovery find a torn tail without a checkpoint; the Merkle tree covers tampering.

Payloads at rest (issue 18). A payload file holds the payload sealed with the data key (duebot/crypto.py: the
envelope `enc1:<algorithm>:<key id>:` + nonce + ciphertext + tag, cipher DUEBOT_ENCRYPTION), bound to its address:
the authenticated context is `evidence.payload:<sha256>`, so a file moved to another address does not open. The
records, the Merkle tree and the address still commit to the SHA-256 of the *plaintext*: an envelope changes when
the key rotates (rekey re-seals every file), a leaf never may; and a bundle carries the payloads opened, so a third
party checks them against the signed records with nothing but the bundle (no key of ours). A file written before
payloads were sealed (no envelope) is read as it is, its digest proving it, until rekey seals it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from duebot import crypto

MAGIC = b"DBEVSEG1"
FRAME = struct.Struct("<II")
INDEX_ENTRY = struct.Struct("<32sQ")
RECORDS_PER_SEGMENT = 1 << 16
MAX_RECORD = 1 << 24


class CorruptLog(Exception):
    pass


class PayloadError(CorruptLog):
    """A payload file that does not open: altered, moved to another address, or sealed with a key not configured."""


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a whole file atomically and durably: temp file, fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def segment_path(directory: Path, first_index: int) -> Path:
    return directory / "segments" / f"{first_index:016d}.seg"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    sdir = directory / "segments"
    if not sdir.is_dir():
        return []
    out = sorted((int(p.stem), p) for p in sdir.iterdir() if p.suffix == ".seg" and p.stem.isdigit())
    for n, (first, path) in enumerate(out):
        if first != n * RECORDS_PER_SEGMENT:
            raise CorruptLog(f"segment {path.name} is out of sequence (expected first index "
                             f"{n * RECORDS_PER_SEGMENT})")
    return out


@dataclass
class SegmentScan:
    offsets: list[int]  # offset of each complete frame
    records: list[bytes]  # leaf data of each complete frame
    good_end: int  # byte offset just after the last good frame
    problem: str | None  # why scanning stopped before the end of the file, if it did


def scan_segment(buf: bytes) -> SegmentScan:
    """Parse frames until the end or the first bad frame (torn write, CRC mismatch, bad header)."""
    if len(buf) < len(MAGIC):
        return SegmentScan([], [], 0, "segment header is incomplete" if buf else None)
    if buf[: len(MAGIC)] != MAGIC:
        return SegmentScan([], [], 0, "segment header is not DBEVSEG1")
    offsets: list[int] = []
    records: list[bytes] = []
    pos, end, unpack, crc32 = len(MAGIC), len(buf), FRAME.unpack_from, zlib.crc32
    problem = None
    while pos < end:
        if pos + 8 > end:
            problem = "torn frame header"
            break
        length, crc = unpack(buf, pos)
        if length > MAX_RECORD or pos + 8 + length > end:
            problem = "torn or oversized frame"
            break
        data = buf[pos + 8 : pos + 8 + length]
        if crc32(data) != crc:
            problem = "frame checksum mismatch"
            break
        offsets.append(pos)
        records.append(data)
        pos += 8 + length
    return SegmentScan(offsets, records, pos, problem)


def frame(data: bytes) -> bytes:
    return FRAME.pack(len(data), zlib.crc32(data)) + data


def read_frame(directory: Path, index: int, offset: int) -> bytes:
    with open(segment_path(directory, index - index % RECORDS_PER_SEGMENT), "rb") as fh:
        fh.seek(offset)
        length, crc = FRAME.unpack(fh.read(8))
        data = fh.read(length)
    if len(data) != length or zlib.crc32(data) != crc:
        raise CorruptLog(f"record {index}: frame damaged on disk")
    return data


def payload_context(digest: str) -> str:
    return f"evidence.payload:{digest}"


class PayloadStore:
    """Content-addressed blobs: payloads/ab/<remaining 62 hex>, addressed by the SHA-256 of the plaintext and
    sealed at rest (module docstring). Written before the record naming them."""

    def __init__(self, directory: Path, keyring: crypto.Keyring | None = None) -> None:
        self.dir = directory
        self.root = directory / "payloads"
        self._keyring = keyring

    @property
    def keyring(self) -> crypto.Keyring:
        if self._keyring is None:  # the deployment's, on first use: opening a log needs no key
            self._keyring = crypto.keyring()
        return self._keyring

    @keyring.setter
    def keyring(self, value: crypto.Keyring) -> None:
        self._keyring = value

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def put(self, data: bytes) -> tuple[str, Path | None]:
        """Store data (sealed); return its digest and the path that still needs an fsync (None if already stored)."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path(digest)
        if path.exists():
            return digest, None
        sealed = self.keyring.seal_blob(data, payload_context(digest))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(sealed)
        os.replace(tmp, path)
        return digest, path

    def get(self, digest: str) -> bytes | None:
        """The payload's plaintext, None when there is no such file (erased); PayloadError when it does not open."""
        try:
            raw = self.path(digest).read_bytes()
        except FileNotFoundError:
            return None
        return self.open(digest, raw)

    def open(self, digest: str, raw: bytes) -> bytes:
        if not crypto.is_sealed_blob(raw):
            return raw  # written before payloads were sealed: its digest still proves it (rekey seals it)
        try:
            return self.keyring.open_blob(raw, payload_context(digest))
        except crypto.CryptoError as exc:
            if hashlib.sha256(raw).hexdigest() == digest:  # an unsealed payload that merely starts like an envelope
                return raw
            raise PayloadError(f"payload {digest} does not open: {exc}") from None

    def check(self, digest: str) -> str | None:
        """What is wrong with a stored payload (fsck), or None: it opens and its plaintext has its digest."""
        try:
            data = self.open(digest, self.path(digest).read_bytes())
        except PayloadError as exc:
            return str(exc)
        if hashlib.sha256(data).hexdigest() != digest:
            return f"payload {digest} does not match its digest"
        return None

    def rekey(self) -> tuple[int, list[str]]:
        """Seal again every payload not sealed with the current key and cipher (and seal the ones written before
        payloads were sealed); returns (files re-sealed, problems). Holds the log's writer lock meanwhile: erasure
        deletes payloads, and re-sealing one at that moment could bring it back."""
        lock = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RuntimeError(f"evidence log {self.dir} is open for writing by another process: stop the "
                                   "evidence writer (duebot serve) and run this again") from None
            done, problems = 0, []
            for digest in self.all_digests():
                path = self.path(digest)
                raw = path.read_bytes()
                try:
                    if crypto.is_sealed_blob(raw) and self.keyring.is_current(crypto.Envelope.parse_blob(raw)):
                        continue
                except crypto.CryptoError:
                    pass  # damaged header: open() says why
                try:
                    data = self.open(digest, raw)
                except PayloadError as exc:
                    problems.append(str(exc))
                    continue
                if hashlib.sha256(data).hexdigest() != digest:
                    problems.append(f"payload {digest} does not match its digest: left as it is")
                    continue
                durable_write(path, self.keyring.seal_blob(data, payload_context(digest)))
                done += 1
            return done, problems
        finally:
            os.close(lock)

    def delete(self, digest: str) -> bool:
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        fsync_dir(self.path(digest).parent)
        return True

    def all_digests(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(d.name + f.name for d in self.root.iterdir() if d.is_dir()
                      for f in d.iterdir() if not f.name.startswith("."))


def fsync_paths(paths: list[Path]) -> None:
    dirs = set()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        dirs.add(path.parent)
    for d in dirs:
        fsync_dir(d)
        fsync_dir(d.parent)
