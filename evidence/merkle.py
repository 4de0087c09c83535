"""RFC 6962 Merkle tree: hashing, proof generation and an incremental in-memory tree.

Verification lives in verifier.py (stdlib only, shipped inside bundles); it is re-exported here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from duebot.evidence.verifier import (
    EMPTY_ROOT,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

__all__ = ["EMPTY_ROOT", "leaf_hash", "node_hash", "root_from_leaf_hashes", "verify_consistency",
           "verify_inclusion", "MerkleTree", "inclusion_path", "consistency_path", "tree_from_leaf_hashes"]

SubtreeHash = Callable[[int, int], bytes]


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_path(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n]), leaf-to-root order; `subtree(a, b)` returns MTH(D[a:b])."""
    if not 0 <= index < size:
        raise IndexError(f"index {index} outside tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_path(old: int, new: int, subtree: SubtreeHash) -> list[bytes]:
    """RFC 6962 §2.1.2 PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from {old} to {new}")
    if old == 0 or old == new:
        return []
    path: list[bytes] = []
    lo, hi, m, complete = 0, new, old, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        path.append(subtree(lo, hi))
    path.reverse()
    return path


class MerkleTree:
    """Append-only tree keeping every complete power-of-two subtree, so any MTH(D[a:b]) costs O(log n).

    levels[k] is a flat bytearray of 32-byte hashes of the aligned subtrees of 2**k leaves (a tile cache in
    memory: 64 bytes per leaf in total).
    """

    def __init__(self) -> None:
        self.levels: list[bytearray] = [bytearray()]

    @property
    def size(self) -> int:
        return len(self.levels[0]) // 32

    def append(self, lh: bytes) -> None:
        levels = self.levels
        levels[0] += lh
        k = 0
        while (len(levels[k]) // 32) % 2 == 0:  # a new complete pair at level k: hash it one level up
            if k + 1 == len(levels):
                levels.append(bytearray())
            levels[k + 1] += hashlib.sha256(b"\x01" + levels[k][-64:]).digest()
            k += 1

    def extend(self, hashes: bytes) -> None:
        for i in range(0, len(hashes), 32):
            self.append(hashes[i : i + 32])

    def truncate(self, size: int) -> None:
        for k, level in enumerate(self.levels):
            del level[(size >> k) * 32 :]

    def leaf(self, index: int) -> bytes:
        return bytes(self.levels[0][index * 32 : index * 32 + 32])

    def subtree(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n <= 0 or hi > self.size:
            raise ValueError(f"bad subtree [{lo}, {hi}) of tree size {self.size}")
        if n & (n - 1) == 0 and lo % n == 0:
            k, i = n.bit_length() - 1, lo // n
            return bytes(self.levels[k][i * 32 : i * 32 + 32])
        k = _split(n)
        return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if size > self.size:
            raise ValueError(f"tree has only {self.size} leaves, asked for root at {size}")
        return EMPTY_ROOT if size == 0 else self.subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_path(index, self.size if size is None else size, self.subtree)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        new = self.size if new is None else new
        if new > self.size:
            raise ValueError(f"tree has only {self.size} leaves")
        return consistency_path(old, new, self.subtree)


def tree_from_leaf_hashes(hashes: bytes) -> MerkleTree:
    """Bulk-build the level cache from concatenated leaf hashes (one SHA-256 per internal node)."""
    tree = MerkleTree()
    tree.levels[0] = bytearray(hashes)
    sha = hashlib.sha256
    level = tree.levels[0]
    while len(level) >= 64:
        view = memoryview(level)
        nxt = bytearray(b"".join(sha(b"\x01" + view[i : i + 64]).digest()
                                 for i in range(0, len(level) - 63, 64)))
        tree.levels.append(nxt)
        level = nxt
    return tree
