"""`duebot evidence verify`: recompute everything from storage, read-only, like an fsck.

Checks frames and CRCs, recomputes every leaf hash and the Merkle root, compares the derived index files,
verifies every stored checkpoint's signature and root (a truncated log fails against the last
checkpoint), checks timestamps never go backwards, and opens (payloads are sealed at rest: store.py) and
re-hashes every payload. A payload that is gone is an error ("tampered") unless an erasure record lists it: then
it is counted as erased. Errors name the first bad record. Byte-level field lookups rely on canonical JSON's
sorted keys (body, conversation_id, kind, payloads, ts, v): the last occurrence of `,"<key>":` is the top-level
one, because strings escape quotes.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import multiprocessing
import re
import stat
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from duebot.crypto import Keyring
from duebot.evidence import store
from duebot.evidence.checkpoint import Checkpoint, list_checkpoints
from duebot.evidence.merkle import tree_from_leaf_hashes
from duebot.evidence.store import RECORDS_PER_SEGMENT, CorruptLog, PayloadStore
from duebot.evidence.verifier import parse_vkey, verify_consistency
from duebot.evidence.witness import DirectoryWitness, key_label


@dataclass
class VerifyReport:
    size: int = 0
    root_hex: str = ""
    checkpoints: int = 0
    payloads: int = 0
    erased: int = 0  # payloads referenced by a record and deleted under retention, as an erasure record says
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    first_bad_index: int | None = None
    key: str = ""  # "<name>+<key id>" of the key the checkpoints were verified against
    key_pinned: bool = False  # a key given by the caller (--trusted-key), not public.vkey beside the log
    witness: str = ""  # what the witness check found (or that there is no witness)

    @property
    def ok(self) -> bool:
        return not self.errors

    def bad(self, message: str, index: int | None = None) -> None:
        self.errors.append(message)
        if index is not None:
            self.bad_index(index)

    def bad_index(self, index: int) -> None:
        if self.first_bad_index is None or index < self.first_bad_index:
            self.first_bad_index = index


class _MetaCursor:
    """Walks meta.idx lines alongside the records (both are in index order)."""

    def __init__(self, lines: list[bytes], at_end: bool) -> None:
        self.lines = lines
        self.at_end = at_end  # whether these are the last lines of meta.idx (a lagging tail is then benign)
        self.pos = 0
        self.behind = 0

    def peek_index(self) -> int:
        if self.pos >= len(self.lines):
            return -1
        line = self.lines[self.pos]
        tab = line.find(b"\t")
        return int(line[:tab]) if tab > 0 and line[:tab].isdigit() else -2


_PLAIN = re.compile(rb"^[A-Za-z0-9._:/@+-]*$")


def _check_meta(rep: VerifyReport, cursor: _MetaCursor, index: int, data: bytes) -> None:
    p = data.rfind(b',"conversation_id":')
    has_conv = p >= 0 and data[p + 19 : p + 23] != b"null"
    listed = cursor.peek_index() == index
    if not has_conv:
        if listed:
            rep.bad(f"record {index}: meta.idx lists a conversation the record does not have", index)
            cursor.pos += 1
        return
    if not listed:
        if cursor.peek_index() == -1 and cursor.at_end:  # meta.idx merely behind after a crash
            cursor.behind += 1
        else:
            rep.bad(f"record {index}: missing from or misplaced in meta.idx", index)
        return
    line = cursor.lines[cursor.pos]
    cursor.pos += 1
    parts = line.split(b"\t")
    if len(parts) != 4:
        rep.bad(f"record {index}: malformed meta.idx line", index)
        return
    _, kind, conv, digests = parts
    token = b'"' + conv + b'"' if _PLAIN.match(conv) else json.dumps(
        conv.decode("utf-8", "replace"), ensure_ascii=False).encode()
    ok = data.startswith(b',"conversation_id":' + token + b',"kind":"' + kind + b'"', p)
    if ok and digests:
        tail = data[data.rfind(b',"payloads":') :]
        ok = all(b'"sha256":"' + d + b'"' in tail for d in digests.split(b","))
    if not ok:
        rep.bad(f"record {index}: meta.idx entry disagrees with the record", index)


@dataclass
class _SegmentResult:
    rep: VerifyReport
    hashes: bytes
    offsets: bytes
    count: int
    refs: dict[str, int]
    erased: set[str]
    first_ts: bytes
    last_ts: bytes
    complete: bool
    meta_used: int
    meta_behind: int


def _verify_segment(task: tuple[int, Path, list[bytes], bool]) -> _SegmentResult:
    """Everything that can be checked inside one segment (run in parallel across segments)."""
    first, path, meta_lines, meta_at_end = task
    rep = VerifyReport()
    buf = path.read_bytes()
    scan = store.scan_segment(buf)
    hashes = bytearray()
    refs: dict[str, int] = {}
    erased: set[str] = set()
    cursor = _MetaCursor(meta_lines, meta_at_end)
    sha = hashlib.sha256
    first_ts = prev_ts = b""
    n = first
    for data in scan.records:
        hashes += sha(b"\x00" + data).digest()
        t = data.rfind(b',"ts":"')
        ts = data[t + 7 : t + 34]
        if t < 0 or ts < prev_ts:
            rep.bad(f"record {n}: timestamp missing or earlier than the previous record's", n)
        prev_ts = ts
        first_ts = first_ts or ts
        p = data.rfind(b',"payloads":')
        if data[p + 12 : p + 14] != b"{}" or data.startswith(b',"kind":"erasure"', data.rfind(b',"kind":"')):
            try:
                obj = json.loads(data)
            except ValueError:
                rep.bad(f"record {n}: not valid JSON", n)
                obj = {}
            for ref in obj.get("payloads", {}).values():
                refs.setdefault(ref["sha256"], n)
            if obj.get("kind") == "erasure":
                erased.update(obj.get("body", {}).get("erased", []))
        _check_meta(rep, cursor, n, data)
        n += 1
    complete = not scan.problem and scan.good_end == len(buf)
    if not complete:
        rep.bad(f"record {n}: {scan.problem or 'trailing bytes'} in segment {path.name} at byte "
                f"{scan.good_end} (a crash leaves this until the log is reopened; otherwise tampering)", n)
    return _SegmentResult(rep, bytes(hashes), array("Q", scan.offsets).tobytes(), len(scan.records), refs,
                          erased, first_ts, prev_ts, complete, cursor.pos, cursor.behind)


def _split_meta(lines: list[bytes], bounds: list[int]) -> list[list[bytes]]:
    """Partition meta.idx lines by segment boundaries (lines are sorted by index)."""
    def index_of(line: bytes) -> int:
        tab = line.find(b"\t")
        return int(line[:tab]) if tab > 0 and line[:tab].isdigit() else -1

    cuts = [0]
    for bound in bounds[1:]:
        cuts.append(bisect.bisect_left(lines, bound, lo=cuts[-1], key=index_of))
    cuts.append(len(lines))
    return [lines[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]


def verify_directory(directory: Path | str, *, check_payloads: bool = True, workers: int | None = None,
                     trusted_vkey: str | None = None, witness_dir: Path | None = None,
                     keyring: Keyring | None = None) -> VerifyReport:
    """`trusted_vkey`: verify every checkpoint against this pinned key rather than public.vkey beside the log.
    `witness_dir`: also require the log to extend the last checkpoint the witness accepted (witness.py).
    `keyring`: what the payloads are opened with (default: the deployment's, duebot/crypto.py)."""
    d = Path(directory)
    rep = VerifyReport()
    try:
        segments = store.list_segments(d)
    except CorruptLog as exc:
        rep.bad(str(exc), None)
        return rep
    if not segments:
        rep.bad(f"no evidence log in {d}")
        return rep
    meta_path = d / "meta.idx"
    lines = meta_path.read_bytes().split(b"\n") if meta_path.exists() else []
    if lines and lines[-1] == b"":
        lines.pop()
    parts = _split_meta(lines, [first for first, _ in segments])
    tasks = [(first, path, part, i == len(segments) - 1) for i, ((first, path), part)
             in enumerate(zip(segments, parts, strict=True))]
    # Default to one process: on machines whose cores are hyperthreads or CPU-quota limited, forking only adds
    # cost (measured); pass workers=N where cores are real.
    workers = min(workers or 1, len(tasks))
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_verify_segment, tasks, chunksize=1)
    else:
        results = [_verify_segment(t) for t in tasks]
    hashes, offsets = bytearray(), bytearray()
    refs: dict[str, int] = {}
    erased: set[str] = set()
    prev_ts, behind, n = b"", 0, 0
    for i, res in enumerate(results):
        rep.errors += res.rep.errors
        if res.rep.first_bad_index is not None:
            rep.bad_index(res.rep.first_bad_index)
        if res.first_ts and res.first_ts < prev_ts:
            rep.bad(f"record {n}: timestamp earlier than the previous record's", n)
        prev_ts = res.last_ts or prev_ts
        hashes += res.hashes
        offsets += res.offsets
        for digest, index in res.refs.items():
            refs.setdefault(digest, index)
        erased |= res.erased
        behind += res.meta_behind
        if res.meta_used < len(parts[i]):
            rep.bad(f"meta.idx lists records beyond segment {i}", n + res.count)
        n += res.count
        if not res.complete:
            break
        if i < len(results) - 1 and res.count != RECORDS_PER_SEGMENT:
            rep.bad(f"record {n}: closed segment {segments[i][1].name} is short", n)
            break
    if behind:
        rep.warnings.append(f"meta.idx is behind by {behind} records (rebuilt when the log is next opened)")
    rep.size = n
    _check_index(rep, d / "leaves.idx", bytes(hashes), 32, n)
    _check_index(rep, d / "offsets.idx", bytes(offsets), 8, n)
    tree = tree_from_leaf_hashes(bytes(hashes))
    rep.root_hex = tree.root().hex()
    vkey = _check_checkpoints(rep, d, tree, trusted_vkey)
    if witness_dir is not None:
        _check_witness(rep, d, tree, vkey, witness_dir)
    else:
        rep.witness = ("none configured (DUEBOT_EVIDENCE_WITNESS_DIR): a history rewritten and re-signed with "
                       "the log's own key would not be detected")
    if check_payloads:
        _check_payloads(rep, PayloadStore(d, keyring), refs, erased)
    return rep


def _check_index(rep: VerifyReport, path: Path, expected: bytes, width: int, n: int) -> None:
    actual = path.read_bytes() if path.exists() else b""
    m = min(len(actual), len(expected)) // width * width
    if actual[:m] != expected[:m]:
        i = next(i for i in range(0, m, width) if actual[i : i + width] != expected[i : i + width]) // width
        rep.bad(f"record {i}: {path.name} entry disagrees with the segment data", i)
    if len(actual) > len(expected):
        rep.bad(f"{path.name} describes more records than the segments hold", n)
    elif len(actual) < len(expected):
        rep.warnings.append(f"{path.name} is behind the segments by {(len(expected) - m) // width} records "
                            "(rebuilt when the log is next opened)")


def _check_checkpoints(rep: VerifyReport, d: Path, tree, trusted_vkey: str | None) -> str | None:  # type: ignore[no-untyped-def]
    """Every stored checkpoint against the key (pinned, else public.vkey); the identity files against each other.
    Returns the verifier key used (None when there is none to use)."""
    beside: str | None = None
    try:
        raw_vkey = (d / "public.vkey").read_text()
        beside = raw_vkey.strip()
        if raw_vkey != beside + "\n":
            raise ValueError("unexpected bytes around the key")
        parse_vkey(beside)
    except (OSError, ValueError) as exc:
        rep.bad(f"public.vkey unreadable or invalid: {exc}")
        beside = None
    if trusted_vkey is not None:
        vkey = trusted_vkey.strip()
        try:
            name, _, public = parse_vkey(vkey)
        except ValueError as exc:
            rep.bad(f"the pinned key is not a note verifier key: {exc}")
            return None
        rep.key_pinned = True
        if beside is not None and beside != vkey:
            rep.bad(f"public.vkey beside the log ({key_label(beside)}) is not the pinned key ({key_label(vkey)}): "
                    "the log was re-keyed")
    elif beside is None:
        return None
    else:
        vkey = beside
        name, _, public = parse_vkey(vkey)
    rep.key = key_label(vkey)
    # The origin file is the key's name and every checkpoint's first line: signed, so any change is detectable.
    try:
        origin_raw = (d / "origin").read_bytes()
    except OSError as exc:
        rep.bad(f"origin unreadable: {exc}")
    else:
        if origin_raw != name.encode() + b"\n":
            rep.bad(f"origin file {origin_raw[:200]!r} is not the signed origin {name!r} of the log key")
    key_file = d / "log.key"
    if key_file.exists():
        rep.warnings.append("the signing key log.key sits beside the log: whoever can write the log can also "
                            "re-sign it (set DUEBOT_EVIDENCE_KEY_FILE to keep it elsewhere)")
        if stat.S_IMODE(key_file.stat().st_mode) & 0o077:
            rep.warnings.append(f"log.key is readable by group or others (mode "
                                f"{stat.S_IMODE(key_file.stat().st_mode):o}); the writer makes it 0600 when it "
                                "next opens the log")
        try:
            private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                                    serialization.PublicFormat.Raw)
            if raw != public:
                rep.bad("log.key does not match the verifier key")
        except (ValueError, TypeError) as exc:
            rep.bad(f"log.key unreadable: {exc}")
    last: Checkpoint | None = None
    for path in list_checkpoints(d):
        try:
            cp = Checkpoint.parse(path.read_bytes(), vkey)
        except (ValueError, UnicodeDecodeError) as exc:
            rep.bad(f"checkpoint {path.name}: {exc}")
            continue
        rep.checkpoints += 1
        if int(path.name) != cp.size or cp.origin != name:
            rep.bad(f"checkpoint {path.name}: file name or origin does not match its signed body")
        if cp.size > tree.size:
            rep.bad(f"record {tree.size}: log truncated - checkpoint {path.name} signs {cp.size} records, "
                    f"storage holds {tree.size}", tree.size)
        elif tree.root(cp.size) != cp.root:
            rep.bad(f"checkpoint {path.name}: recomputed root at size {cp.size} differs from the signed root",
                    cp.size - 1)
        last = cp
    latest = d / "checkpoint"
    if last is not None and (not latest.exists() or latest.read_bytes() != last.note):
        rep.bad("`checkpoint` is not a copy of the latest stored checkpoint")
    if last is None and tree.size:
        rep.warnings.append("no checkpoint has been signed yet")
    return vkey


def _check_witness(rep: VerifyReport, d: Path, tree, vkey: str | None, witness_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """The log must extend the last checkpoint the witness accepted: an RFC 6962 consistency proof from that size
    to the log's size, checked against the witnessed root (signed by the key the witness trusts for the origin)."""
    if vkey is None:
        rep.bad(f"witness {witness_dir}: no verifier key to name the log by")
        rep.witness = "not checked (no verifier key)"
        return
    origin = parse_vkey(vkey)[0]
    witness = DirectoryWitness(witness_dir)
    try:
        seen = witness.latest(origin)
        witness_vkey = witness.trusted_vkey(origin)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        rep.bad(f"witness {witness_dir}: its state for {origin} is unreadable or damaged: {exc}")
        rep.witness = f"{witness_dir}: unreadable or damaged"
        return
    if seen is None or witness_vkey is None:
        if list_checkpoints(d):
            rep.bad(f"witness {witness_dir} holds no checkpoint of {origin}, yet the log has signed some (a log "
                    "under a new identity, or the witness was never reached)")
        rep.witness = f"{witness_dir}: nothing witnessed for {origin}"
        return
    if witness_vkey != vkey:
        rep.bad(f"witness {witness_dir} trusts another key for {origin} ({key_label(witness_vkey)}) than the one "
                f"verified against ({key_label(vkey)}): the log was re-keyed")
    if seen.size > tree.size:
        rep.bad(f"record {tree.size}: log truncated - the witness saw {seen.size} records (checkpoint signed "
                f"{seen.time}), storage holds {tree.size}", tree.size)
        rep.witness = f"{witness_dir}: log SHORTER than the witnessed checkpoint of {seen.size} records"
        return
    proof = tree.consistency_proof(seen.size, tree.size)
    if not verify_consistency(seen.size, tree.size, seen.root, tree.root(), proof):
        try:
            lo, hi = witness.first_divergence(origin, tree.root, seen.size)
        except (OSError, ValueError):
            lo, hi = 0, seen.size
        rep.bad(f"record {lo}: the log does not extend the checkpoint of {seen.size} records the witness accepted "
                f"(signed {seen.time}): history rewritten in records {lo} to {hi - 1}", lo)
        rep.witness = f"{witness_dir}: log INCONSISTENT with the witnessed checkpoint of {seen.size} records"
        return
    rep.witness = (f"{witness_dir}: log extends the witnessed checkpoint of {seen.size} records (signed "
                   f"{seen.time}; consistency proof to {tree.size} verified)")
    signed = list_checkpoints(d)
    if signed and int(signed[-1].name) > seen.size:
        rep.warnings.append(f"the witness is behind: it accepted {seen.size} records, the log has signed "
                            f"{int(signed[-1].name)} (published at the next checkpoint)")


def _check_payloads(rep: VerifyReport, payloads: PayloadStore, refs: dict[str, int], erased: set[str]) -> None:
    present = set()
    for digest in payloads.all_digests():
        present.add(digest)
        rep.payloads += 1
        problem = payloads.check(digest)  # opens the envelope (authenticated), then re-hashes the plaintext
        if problem is not None:
            where = refs.get(digest)
            label = f"record {where}: " if where is not None else ""
            rep.bad(f"{label}{problem}", where)
        elif digest not in refs:
            rep.warnings.append(f"payload {digest} is referenced by no record (append interrupted)")
    for digest, index in refs.items():
        if digest in present:
            continue
        if digest in erased:
            rep.erased += 1  # its record still verifies: the leaf commits to the (salted) digest, not the bytes
        else:
            rep.bad(f"record {index}: payload {digest} is missing and no erasure record covers it", index)
