"""A witness for the evidence log: an append-only directory that keeps every signed checkpoint it accepted.

The log's own checkpoints prove nothing against whoever can write the log directory: they can rewrite a record,
recompute the tree and sign again with the key beside the log (or put a key of their own there). A witness is
somewhere else. It follows the checks of C2SP tlog-witness (`add-checkpoint`), done in-process on a directory:

* the checkpoint must verify against the log key the witness trusts for its origin (pinned on first use as
  `log.vkey`, or placed there by the operator); a checkpoint by any other key is refused;
* `old` must be the size the witness accepted last (0 for none), and not larger than the new size;
* the consistency proof from `old` to the new size must verify (RFC 6962 §2.1.2) against the root the witness
  accepted last; an equal size must carry the same root.

Only then is the note stored, as a new file named by its size that is never rewritten. So the witness holds a
chain of checkpoints each proven to extend the one before, and `duebot evidence verify` checks that the log still
extends the last of them: a history rewritten and re-signed with the log's own key, or a truncated log, fails.

Layout: `<witness dir>/<origin as a file name>/{origin, log.vkey, <size as 16 digits>...}`. Make the directory
append-only for the writer's user (another host's export, object-locked storage, `chattr +a`, another owner with
a setgid drop box) so that the process that writes the log cannot also rewrite what the witness saw.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from duebot.evidence.checkpoint import Checkpoint, checkpoint_name
from duebot.evidence.durable import write_all_synced
from duebot.evidence.store import fsync_dir
from duebot.evidence.verifier import parse_vkey, verify_consistency


class WitnessRefused(Exception):
    """The witness will not accept a checkpoint; `code` is the HTTP status tlog-witness gives for the reason."""

    def __init__(self, code: int, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.size = size  # on a conflict (409): the size the witness accepted last


def origin_of(note: bytes) -> str:
    """The (unverified) origin line of a checkpoint note."""
    first, sep, _ = note.partition(b"\n")
    if not sep or not first:
        raise WitnessRefused(400, "not a checkpoint note")
    return first.decode("utf-8", "replace")


class DirectoryWitness:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def state_dir(self, origin: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", origin)[:80]
        return self.root / f"{safe}-{hashlib.sha256(origin.encode()).hexdigest()[:12]}"

    def trusted_vkey(self, origin: str) -> str | None:
        try:
            return (self.state_dir(origin) / "log.vkey").read_text().strip()
        except FileNotFoundError:
            return None

    def sizes(self, origin: str) -> list[int]:
        d = self.state_dir(origin)
        if not d.is_dir():
            return []
        return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit() and len(p.name) == 16)

    def latest(self, origin: str) -> Checkpoint | None:
        """The last checkpoint the witness accepted for `origin`, its signature checked against the witness's
        key for it (ValueError if it does not verify: the witness's own files were altered)."""
        sizes = self.sizes(origin)
        return self.checkpoint(origin, sizes[-1]) if sizes else None

    def checkpoint(self, origin: str, size: int) -> Checkpoint:
        vkey = self.trusted_vkey(origin)
        if vkey is None:
            raise ValueError(f"witness state for {origin} has checkpoints but no log.vkey")
        note = (self.state_dir(origin) / checkpoint_name(size)).read_bytes()
        cp = Checkpoint.parse(note, vkey)
        if cp.origin != origin or cp.size != size:
            raise ValueError(f"witnessed checkpoint {checkpoint_name(size)} does not match its file name")
        return cp

    def first_divergence(self, origin: str, root_at: Callable[[int], bytes], upto: int) -> tuple[int, int]:
        """For a log whose root at `upto` differs from the witnessed one: the records [lo, hi) that hold the
        first change, bounded by the witnessed checkpoints (binary search: a changed record changes every
        root after it)."""
        sizes = [s for s in self.sizes(origin) if s <= upto]
        lo, hi, prev = 0, len(sizes), 0
        while lo < hi:
            mid = (lo + hi) // 2
            if root_at(sizes[mid]) == self.checkpoint(origin, sizes[mid]).root:
                lo = mid + 1
            else:
                hi = mid
        if lo > 0:
            prev = sizes[lo - 1]
        return prev, sizes[lo] if lo < len(sizes) else upto

    def add_checkpoint(self, old_size: int, proof: Sequence[bytes], note: bytes, vkey: str) -> Checkpoint:
        """tlog-witness add-checkpoint. `vkey` is trusted only on first use for an origin the witness never saw."""
        origin = origin_of(note)
        d = self.state_dir(origin)
        trusted = self.trusted_vkey(origin)
        if trusted is None:
            name, _, _ = parse_vkey(vkey)
            if name != origin:
                raise WitnessRefused(403, f"key {name} is not a key of origin {origin}")
            d.mkdir(parents=True, exist_ok=True)
            _create(d / "origin", origin.encode() + b"\n")
            _create(d / "log.vkey", vkey.strip().encode() + b"\n")
            trusted = self.trusted_vkey(origin) or ""
        try:
            cp = Checkpoint.parse(note, trusted)
        except (ValueError, UnicodeDecodeError) as exc:
            raise WitnessRefused(403, f"checkpoint is not signed by the key the witness trusts for {origin} "
                                      f"({key_label(trusted)}): {exc}") from exc
        if old_size < 0 or old_size > cp.size:
            raise WitnessRefused(400, f"old size {old_size} is larger than the checkpoint size {cp.size}")
        last = self.latest(origin)
        last_size = last.size if last is not None else 0
        if old_size != last_size:
            raise WitnessRefused(409, f"the witness accepted size {last_size} last, not {old_size}", last_size)
        if last is not None and cp.size == last.size:
            if cp.root != last.root:
                raise WitnessRefused(409, f"INCONSISTENT: a different root for size {cp.size} than the one "
                                          "witnessed", last_size)
            return last
        if old_size == 0:
            if proof:
                raise WitnessRefused(422, "the consistency proof from size 0 must be empty")
        elif last is None or not verify_consistency(old_size, cp.size, last.root, cp.root, list(proof)):
            raise WitnessRefused(422, f"INCONSISTENT: the checkpoint of size {cp.size} does not extend the witnessed "
                                      f"checkpoint of size {old_size} (history rewritten?)")
        if not _create(d / checkpoint_name(cp.size), note):
            raise WitnessRefused(409, f"size {cp.size} was witnessed concurrently", cp.size)
        return cp


def publish(witness: DirectoryWitness, cp: Checkpoint, vkey: str,
            consistency_proof: Callable[[int, int], list[bytes]]) -> Checkpoint:
    """What a log does after signing: send the checkpoint with a proof from the size the witness last accepted."""
    last = witness.latest(cp.origin)
    old = last.size if last is not None else 0
    if old > cp.size:
        raise WitnessRefused(409, f"the witness accepted {old} records of {cp.origin} but the log signs {cp.size}: "
                                  "the log was truncated or replaced", old)
    return witness.add_checkpoint(old, consistency_proof(old, cp.size) if old else [], cp.note, vkey)


def key_label(vkey: str) -> str:
    """`<name>+<key id>` of a note verifier key: enough to tell keys apart in a message."""
    return "+".join(vkey.strip().split("+", 2)[:2])


def _create(path: Path, data: bytes) -> bool:
    """Create `path` holding `data` unless it exists; False if it did. The file appears complete or not at all
    (an unnamed O_TMPFILE linked in once fsynced) and nothing is ever renamed over or deleted, so this works in a
    directory where the writer may only add entries (`chattr +a`). Without O_TMPFILE support (some network file
    systems) a named temporary is linked instead and removed where the directory allows."""
    tmpfile = getattr(os, "O_TMPFILE", 0)
    fd, tmp = -1, None
    if tmpfile:
        try:
            fd = os.open(path.parent, os.O_WRONLY | tmpfile, 0o444)
        except OSError:
            fd = -1
    if fd < 0:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
    try:
        write_all_synced(fd, data)
        try:
            if tmp is not None:
                os.link(tmp, path)
            else:  # linkat(AT_SYMLINK_FOLLOW) of the magic link: a dir fd makes Python call linkat, not link
                dir_fd = os.open(path.parent, os.O_RDONLY)
                try:
                    os.link(f"/proc/self/fd/{fd}", path.name, dst_dir_fd=dir_fd, follow_symlinks=True)
                finally:
                    os.close(dir_fd)
        except FileExistsError:
            return False
    finally:
        os.close(fd)
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
    fsync_dir(path.parent)
    return True
