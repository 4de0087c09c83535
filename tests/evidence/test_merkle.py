"""RFC 6962 known answers, deliberately broken proofs and property tests over random tree sizes."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duebot.evidence.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    root_from_leaf_hashes,
    tree_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# The 8 leaves of the RFC 6962 reference tests (certificate-transparency / transparency-dev/merkle).
LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)),
          bytes(range(0x60, 0x70))]
ROOTS = [  # root of the first k leaves, k = 1..8
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (leaf index, tree size, path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
]
CONSISTENCY = [  # (old size, new size, path)
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


def reference_mth(leaves: list[bytes]) -> bytes:
    """MTH straight from the RFC 6962 §2.1 definition, independent of the code under test."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + reference_mth(leaves[:k]) + reference_mth(leaves[k:])).digest()


def path_shape(index: int, size: int) -> list[str]:
    """Which side each audit-path hash joins on, per RFC 9162 §2.1.3.2."""
    fn, sn, out = index, size - 1, []
    while sn > 0:
        if fn & 1 or fn == sn:
            out.append("L")
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            out.append("R")
        fn, sn = fn >> 1, sn >> 1
    return out


def build(n: int) -> MerkleTree:
    tree = MerkleTree()
    for i in range(n):
        tree.append(leaf_hash(i.to_bytes(4, "big")))
    return tree


def test_empty_tree_root() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert MerkleTree().root() == EMPTY_ROOT == root_from_leaf_hashes([])


def test_known_roots() -> None:
    tree = MerkleTree()
    for k, leaf in enumerate(LEAVES, start=1):
        tree.append(leaf_hash(leaf))
        assert tree.root().hex() == ROOTS[k - 1] == reference_mth(LEAVES[:k]).hex()
        assert root_from_leaf_hashes([leaf_hash(x) for x in LEAVES[:k]]).hex() == ROOTS[k - 1]


def test_known_inclusion_and_consistency_proofs() -> None:
    tree = build(0)
    for leaf in LEAVES:
        tree.append(leaf_hash(leaf))
    for index, size, path in INCLUSION:
        assert [h.hex() for h in tree.inclusion_proof(index, size)] == path
        assert verify_inclusion(leaf_hash(LEAVES[index]), index, size, [bytes.fromhex(h) for h in path],
                                bytes.fromhex(ROOTS[size - 1]))
    for old, new, path in CONSISTENCY:
        assert [h.hex() for h in tree.consistency_proof(old, new)] == path
        assert verify_consistency(old, new, bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1]),
                                  [bytes.fromhex(h) for h in path])


def _flip(h: bytes, bit: int = 0) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def broken_variants(proof: list[bytes]) -> list[list[bytes]]:
    out = [proof + [proof[0] if proof else EMPTY_ROOT], [EMPTY_ROOT] + proof]  # extra hash, at end or start
    if proof:
        out.append(proof[:-1])  # missing hash
        out.append(proof[1:])
        for i in range(len(proof)):
            out.append(proof[:i] + [_flip(proof[i], i % 8)] + proof[i + 1 :])  # flipped bit
    if len(proof) > 1:
        out.append(proof[::-1])  # reordered
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 13, 16, 17])
def test_broken_inclusion_proofs_rejected(size: int) -> None:
    tree = build(size)
    root = tree.root()
    for index in range(size):
        proof, leaf = tree.inclusion_proof(index), tree.leaf(index)
        assert verify_inclusion(leaf, index, size, proof, root)
        for bad in broken_variants(proof):
            assert not verify_inclusion(leaf, index, size, bad, root), (index, size, bad)
        assert not verify_inclusion(_flip(leaf), index, size, proof, root)  # flipped leaf
        assert not verify_inclusion(leaf, index, size, proof, _flip(root))  # flipped root
        for wrong in {index - 1, index + 1, index ^ 1, size}:  # wrong index (size: out of range)
            if wrong >= 0 and wrong != index and not (tree.leaf(wrong % size) == leaf and wrong < size):
                assert not verify_inclusion(leaf, wrong, size, proof, root)
        for wrong_size in (size - 1, size + 1, size * 2, index):  # wrong tree size
            # Sizes that give the same audit-path shape are indistinguishable by the proof alone (the root
            # then disagrees instead); every other wrong size must be rejected.
            if wrong_size <= index or path_shape(index, wrong_size) != path_shape(index, size):
                assert not verify_inclusion(leaf, index, wrong_size, proof, root), (index, wrong_size)
    assert not verify_inclusion(tree.leaf(0), -1, size, tree.inclusion_proof(0), root)


@pytest.mark.parametrize("new", [2, 3, 4, 5, 7, 8, 11, 16, 17])
def test_broken_consistency_proofs_rejected(new: int) -> None:
    tree = build(new)
    for old in range(1, new):
        proof, r1, r2 = tree.consistency_proof(old, new), tree.root(old), tree.root(new)
        assert verify_consistency(old, new, r1, r2, proof)
        for bad in broken_variants(proof):
            assert not verify_consistency(old, new, r1, r2, bad), (old, new)
        assert not verify_consistency(old, new, _flip(r1), r2, proof)
        assert not verify_consistency(old, new, r1, _flip(r2), proof)
        assert not verify_consistency(old, new * 2, r1, r2, proof)  # wrong size (one more level)
        if old > 1:
            assert not verify_consistency(old - 1, new, r1, r2, proof)
        assert not verify_consistency(new, old, r2, r1, proof)  # sizes swapped
    assert verify_consistency(new, new, tree.root(), tree.root(), [])
    assert not verify_consistency(new, new, tree.root(), tree.root(), [tree.root()])
    assert verify_consistency(0, new, EMPTY_ROOT, tree.root(), [])


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_inclusion_property(size: int, data: st.DataObject) -> None:
    tree = build(size)
    leaves = [i.to_bytes(4, "big") for i in range(size)]
    assert tree.root() == reference_mth(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = tree.inclusion_proof(index)
    assert len(proof) <= max(1, (size - 1).bit_length())  # O(log n)
    assert verify_inclusion(tree.leaf(index), index, size, proof, tree.root())
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        assert not verify_inclusion(tree.leaf(index), index, size,
                                    proof[:i] + [_flip(proof[i])] + proof[i + 1 :], tree.root())


@settings(max_examples=60, deadline=None)
@given(new=st.integers(1, 300), data=st.data())
def test_consistency_property(new: int, data: st.DataObject) -> None:
    tree = build(new)
    old = data.draw(st.integers(1, new))
    proof = tree.consistency_proof(old, new)
    assert len(proof) <= 2 * max(1, new.bit_length())  # O(log n)
    assert verify_consistency(old, new, tree.root(old), tree.root(new), proof)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        assert not verify_consistency(old, new, tree.root(old), tree.root(new),
                                      proof[:i] + [_flip(proof[i])] + proof[i + 1 :])


@settings(max_examples=30, deadline=None)
@given(size=st.integers(0, 600))
def test_bulk_build_matches_incremental(size: int) -> None:
    tree = build(size)
    bulk = tree_from_leaf_hashes(bytes(tree.levels[0]))
    assert bulk.root() == tree.root()
    for k in range(0, size, 37):
        assert bulk.root(k) == tree.root(k)
