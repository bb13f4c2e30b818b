"""RFC 9162 Merkle hashing: roots, inclusion and consistency proofs against a direct definition."""

from __future__ import annotations

import hashlib

import pytest

from flexmail.domain import merkle


def _mth(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 2.1.1 (recursive, no shortcuts)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return merkle.leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _tree(n):
    """Leaves, and a lookup of every perfect subtree hash, built through CompactRange."""
    data = [f"event {i}".encode() for i in range(n)]
    store, cr = {}, merkle.CompactRange()
    for i, d in enumerate(data):
        store[(0, i)] = merkle.leaf_hash(d)
        for level, index, node in cr.append(store[(0, i)]):
            store[(level, index)] = node
    return data, store, cr


def test_known_vector_and_empty_tree():
    """The leaf and node prefixes are 0x00 and 0x01 and an empty tree hashes to SHA-256 of nothing."""
    assert merkle.leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert merkle.root_of([]) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 31, 33])
def test_compact_range_root_and_inclusion_proofs(n):
    """The streamed root equals RFC 9162's MTH; every leaf's proof verifies and fails when altered."""
    data, store, cr = _tree(n)
    root = _mth(data)
    assert cr.root() == root
    for i in range(n):
        path = merkle.resolve(merkle.inclusion_ranges(i, n), lambda lv, ix: store[(lv, ix)])
        leaf = merkle.leaf_hash(data[i])
        assert merkle.verify_inclusion(i, n, leaf, path, root)
        assert not merkle.verify_inclusion(i, n, merkle.leaf_hash(b"forged"), path, root)
        assert not merkle.verify_inclusion(i, n, leaf, path, merkle.leaf_hash(b"other root"))
        if path:
            bad = list(path)
            bad[0] = merkle.leaf_hash(b"x")
            assert not merkle.verify_inclusion(i, n, leaf, bad, root)
            assert not merkle.verify_inclusion((i + 1) % n, n, leaf, path, root) or n == 1


@pytest.mark.parametrize("second", [1, 2, 3, 5, 8, 12, 17])
def test_consistency_proofs_between_every_pair_of_sizes(second):
    """Every earlier tree is proven a prefix of the later one; a changed old root fails."""
    data, store, _ = _tree(second)
    for first in range(1, second + 1):
        proof = merkle.resolve(merkle.consistency_ranges(first, second), lambda lv, ix: store[(lv, ix)])
        old, new = _mth(data[:first]), _mth(data)
        assert merkle.verify_consistency(first, second, old, new, proof), (first, second)
        assert not merkle.verify_consistency(first, second, merkle.leaf_hash(b"rewritten"), new, proof)
        if first < second:
            rewritten = _mth(data[:first - 1] + [b"changed"] + data[first:])
            assert not merkle.verify_consistency(first, second, old, rewritten, proof)


def test_frontier_restores_a_compact_range():
    """A sealer resumes from the stored right-edge nodes and reaches the same root."""
    data, store, _ = _tree(11)
    nodes = [store[c] for c in merkle.frontier(11)]
    resumed = merkle.CompactRange(11, nodes)
    for i in range(11, 20):
        resumed.append(merkle.leaf_hash(f"event {i}".encode()))
    assert resumed.root() == _mth(data + [f"event {i}".encode() for i in range(11, 20)])
