"""Benchmark the evidence log: durable appends per second and time to verify (fsck) N records.

    .venv/bin/python evaluation/bench_evidence.py                  # full run: 20k appends, 1M-record verify
    .venv/bin/python evaluation/bench_evidence.py --n 2000 --verify-n 20000   # quick

Appends go through EvidenceLog.append() (group commit, fdatasync before acknowledging) from --threads
concurrent appenders, as a server with many calls would; the single-appender rate (one fsync per record) is
reported too. The verify log is built directly in the on-disk format (building it through append() would
take minutes) and then checked with the same code as `duebot evidence verify`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path

from _machine import describe  # evaluation/ is the script's path

from duebot.evidence import store
from duebot.evidence.checkpoint import LogKey, store_checkpoint
from duebot.evidence.fsck import verify_directory
from duebot.evidence.log import EvidenceLog, MetaEntry
from duebot.evidence.merkle import leaf_hash, tree_from_leaf_hashes
from duebot.evidence.records import encode


def turn_body(i: int) -> dict:
    return {"speaker": "bot" if i % 2 else "debtor", "channel": "voice",
            "started_at": "2025-01-01T10:00:00.000Z",
            "ended_at": "2025-01-01T10:00:03.500Z", "asr_confidence": 0.91, "emotion_score": 0.12,
            "legal_elements": []}


def bench_append(directory: Path, n: int, threads: int) -> float:
    log = EvidenceLog.open(directory)
    per = max(1, n // threads)

    def worker(t: int) -> None:
        for i in range(per):
            log.append("turn", turn_body(i), conversation_id=f"conv-{t}-{i // 20}")

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    log.close()
    return per * threads / elapsed


def build_log(directory: Path, n: int) -> None:
    """Write n records straight in the storage format (segments, indexes, a signed checkpoint)."""
    (directory / "segments").mkdir(parents=True)
    key = LogKey.load_or_create(directory)
    hashes = bytearray()
    offsets = array("Q")
    with open(directory / "meta.idx", "wb") as meta:
        for first in range(0, n, store.RECORDS_PER_SEGMENT):
            chunks = [store.MAGIC]
            pos = len(store.MAGIC)
            for i in range(first, min(n, first + store.RECORDS_PER_SEGMENT)):
                conv = f"conv-{i // 20}"
                data = encode("turn", "2025-01-01T10:00:00.000000Z", conv, turn_body(i), {})
                f = store.frame(data)
                chunks.append(f)
                offsets.append(pos)
                pos += len(f)
                hashes += leaf_hash(data)
                meta.write(MetaEntry(i, "turn", conv, ()).line())
            store.segment_path(directory, first).write_bytes(b"".join(chunks))
    (directory / "leaves.idx").write_bytes(bytes(hashes))
    (directory / "offsets.idx").write_bytes(offsets.tobytes())
    tree = tree_from_leaf_hashes(bytes(hashes))
    store_checkpoint(directory, key.sign(n, tree.root()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="records appended in the concurrent append run")
    ap.add_argument("--threads", type=int, default=64, help="concurrent appender threads")
    ap.add_argument("--single-n", type=int, default=300, help="records appended by a single appender")
    ap.add_argument("--verify-n", type=int, default=1_000_000, help="records in the verify run")
    ap.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = ap.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-evidence-", dir=args.dir))
    try:
        print(describe())
        print(f"scratch: {scratch}")
        rate = bench_append(scratch / "append", args.n, args.threads)
        print(f"durable appends/s, {args.threads} concurrent appenders, {args.n} records: {rate:,.0f} "
              f"(goal >= 5,000)")
        single = bench_append(scratch / "single", args.single_n, 1)
        print(f"durable appends/s, 1 appender (one fsync per record), {args.single_n} records: {single:,.0f}")
        t0 = time.perf_counter()
        build_log(scratch / "verify", args.verify_n)
        print(f"built {args.verify_n:,} records in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        rep = verify_directory(scratch / "verify")
        elapsed = time.perf_counter() - t0
        print(f"verify (fsck) of {rep.size:,} records: {elapsed:.2f} s, ok={rep.ok} (goal <= 10 s)")
        if not rep.ok:
            print("\n".join(rep.errors[:5]))
            return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
