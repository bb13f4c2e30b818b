"""Merkle tree hashing of RFC 9162 (Certificate Transparency 2.0), section 2.1.

``leaf = SHA-256(0x00 || data)``, ``node = SHA-256(0x01 || left || right)``; a tree of ``n``
leaves splits at the largest power of two below ``n``. Only *perfect* subtrees (``2**level``
leaves starting at a multiple of ``2**level``) are ever stored; every other subtree hash that
a proof needs is combined from them (``range_nodes``). Pure functions, bytes in and out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class CompactRange:
    """The right edge of a growing tree: one perfect subtree per set bit of its size.

    ``append`` returns the perfect nodes (level >= 1) that the new leaf completed, so a
    sealer can store them; ``root`` is the RFC 9162 root of the leaves so far. Memory is
    O(log n) whatever the size, so an export's root is recomputed as it streams.
    """

    def __init__(self, size: int = 0, nodes: list[bytes] | None = None):
        self.size = size
        #: Hashes of the perfect subtrees, largest (leftmost) first.
        self.nodes = list(nodes or [])
        if len(self.nodes) != bin(size).count("1"):
            raise ValueError("a compact range needs one node per set bit of its size")

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        made = []
        node, level, index = leaf, 0, self.size
        while index & 1:
            node = node_hash(self.nodes.pop(), node)
            level, index = level + 1, index >> 1
            made.append((level, index, node))
        self.nodes.append(node)
        self.size += 1
        return made

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        node = self.nodes[-1]
        for left in reversed(self.nodes[:-1]):
            node = node_hash(left, node)
        return node


def frontier(size: int) -> list[tuple[int, int]]:
    """(level, index) of the perfect subtrees of a tree of ``size`` leaves, left to right."""
    out, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            out.append((level, start >> level))
            start += 1 << level
    return out


def range_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees whose combination is MTH(D[start:end]), for a range that starts
    on a boundary of its own size's split (every range RFC 9162 proofs use does)."""
    out, size = [], end - start
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            if start % (1 << level):
                raise ValueError("range is not aligned")
            out.append((level, start >> level))
            start += 1 << level
    return out


def combine(nodes: list[bytes]) -> bytes:
    """MTH of a range from its perfect subtrees (left to right): fold from the right."""
    node = nodes[-1]
    for left in reversed(nodes[:-1]):
        node = node_hash(left, node)
    return node


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PATH(index, D[0:size]), bottom-up (RFC 9162 2.1.3.1)."""
    if not 0 <= index < size:
        raise ValueError("leaf index outside the tree")
    out, start, end = [], 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
    return list(reversed(out))


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PROOF(first, D[0:second]) (RFC 9162 2.1.4.1)."""
    if not 0 < first <= second:
        raise ValueError("need 0 < first <= second")
    if first == second:
        return []
    out: list[tuple[int, int]] = []

    def subproof(m: int, start: int, end: int, whole: bool):
        n = end - start
        if m == n:
            if not whole:
                out.append((start, end))
            return
        k = _split(n)
        if m <= k:
            subproof(m, start, start + k, whole)
            out.append((start + k, end))
        else:
            subproof(m - k, start + k, end, False)
            out.append((start, start + k))

    subproof(first, 0, second, True)
    return out


def resolve(ranges: list[tuple[int, int]], perfect: Callable[[int, int], bytes]) -> list[bytes]:
    """Hashes of leaf ranges from a lookup of perfect subtree hashes by (level, index)."""
    return [combine([perfect(level, index) for level, index in range_nodes(a, b)]) for a, b in ranges]


def verify_inclusion(index: int, size: int, leaf: bytes, path: Iterable[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: list[bytes]) -> bool:
    """RFC 9162 2.1.4.2."""
    if not 0 < first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first root is the first node
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


def root_of(leaves: Iterable[bytes]) -> bytes:
    tree = CompactRange()
    for leaf in leaves:
        tree.append(leaf)
    return tree.root()
