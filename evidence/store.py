"""Append-only storage: record segments, a leaf-hash index, a metadata index and a payload store.

Layout under the evidence directory (every file is either immutable once closed or append-only, so an
S3-compatible object store can hold closed segments, checkpoints and payloads as plain objects):

    segments/0000000000000000.seg   records [first_index, first_index + RECORDS_PER_SEGMENT)
    leaves.idx                      per record: 32-byte leaf hash + u64 offset in its segment (derived data)
    meta.idx                        per record with a conversation: "index<TAB>kind<TAB>conv<TAB>digests"
    payloads/ab/cdef...             content-addressed payloads (SHA-256 of the bytes)
    checkpoints/<size>              signed notes; `checkpoint` is a copy of the latest
    log.key, public.vkey, origin    the log identity

A segment starts with MAGIC, then frames `u32 length | u32 crc32(data) | data`, where data is the exact
leaf data. The CRC lets recovery find a torn tail without a checkpoint; the Merkle tree covers tampering.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"DBEVSEG1"
FRAME = struct.Struct("<II")
INDEX_ENTRY = struct.Struct("<32sQ")
RECORDS_PER_SEGMENT = 1 << 16
MAX_RECORD = 1 << 24


class CorruptLog(Exception):
    pass


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


class PayloadStore:
    """Content-addressed blobs: payloads/ab/<remaining 62 hex>. Written before the record naming them."""

    def __init__(self, directory: Path) -> None:
        self.root = directory / "payloads"

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def put(self, data: bytes) -> tuple[str, Path | None]:
        """Store data; return its digest and the path that still needs an fsync (None if already stored)."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path(digest)
        if path.exists():
            return digest, None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        return digest, path

    def get(self, digest: str) -> bytes | None:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            return None

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
