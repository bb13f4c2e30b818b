"""The consent ledger: per account, an append-only Merkle tree (RFC 9162) of event contents.

Each event's *content* (ids, type, time, source, the digest of its details, and HMAC
commitments to the personal values) is hashed canonically when the event is written, with
no read of any other row; the event's leaf is ``SHA-256(0x00 || content_hash)``. A sealer
later gives it its place (``seq`` = leaf index + 1) and signs a tree head (domain.merkle).
Personal values (address, IP, user agent) are not hashed in clear, so erasing or truncating
them later leaves every hash intact, and whoever holds the original value (with the
service's pepper) can still show that it matches its commitment. An event deleted by
retention becomes a tombstone that keeps ``seq`` and ``content_hash``, so the tree stays
verifiable without its content.

Events written before the tree (``prev_hash`` set) were a hash chain,
``entry = sha256(prev_entry ":" content_hash)``, and their content includes ``seq``; they
stay checkable as that chain and are the first leaves of the tree, in seq order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from flexmail.domain import merkle

GENESIS = "0" * 64
PERSONAL_FIELDS = ("email", "ip", "user_agent")
#: The fields whose canonical JSON is the content hash, in the order exports list them.
CONTENT_FIELDS = ("account_id", "subscription_id", "list_id", "type", "at", "source",
                  "details_hash", "commitments")
#: Events of the hash chain (before the tree) also hashed their place in it.
LEGACY_CONTENT_FIELDS = ("account_id", "seq", "subscription_id", "list_id", "type", "at", "source",
                         "details_hash", "commitments")


def canonical(obj) -> bytes:
    """Deterministic JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def commitment(pepper: str, salt: str, field: str, value: str | None) -> str | None:
    """HMAC-SHA256 of one personal value. The pepper stays outside the database, so a
    commitment cannot be reversed by trying every IPv4 address or a list of addresses."""
    if value is None:
        return None
    message = f"{salt}\x1f{field}\x1f{value}".encode()
    return hmac.digest(pepper.encode(), message, "sha256").hex()


def commitments(pepper: str, salt: str, values: dict[str, str | None]) -> dict[str, str | None]:
    return {field: commitment(pepper, salt, field, values.get(field)) for field in PERSONAL_FIELDS}


def details_digest(details) -> str:
    """The details are chained by digest, so erasure can scrub a personal value in them
    and mark them redacted while every other field stays verifiable."""
    return hashlib.sha256(canonical(details)).hexdigest()


def is_legacy(row: dict) -> bool:
    """An event of the hash chain that came before the tree."""
    return bool(row.get("prev_hash"))


def content_hash(content: dict) -> str:
    fields = LEGACY_CONTENT_FIELDS if is_legacy(content) else CONTENT_FIELDS
    missing = set(fields) - set(content)
    if missing:
        raise ValueError(f"ledger content lacks {sorted(missing)}")
    return hashlib.sha256(canonical({k: content[k] for k in fields})).hexdigest()


def leaf(content_hash_: str) -> bytes:
    """The event's leaf in the account's tree."""
    return merkle.leaf_hash(bytes.fromhex(content_hash_))


def entry_hash(prev_hash: str, content_hash_: str) -> str:
    return hashlib.sha256(f"{prev_hash}:{content_hash_}".encode()).hexdigest()


@dataclass
class Verification:
    ok: bool
    count: int
    last_seq: int | None
    #: RFC 9162 root of the rows' leaves (meaningful for a contiguous export).
    root: str | None
    #: The root of the first ``snapshot_at`` leaves, when asked (an older head to compare).
    prefix_root: str | None = None
    #: 1-based position of the first bad row in the file (data rows), and why.
    row: int | None = None
    error: str | None = None


def check_row(row: dict, pepper: str | None) -> str | None:
    """Why one row does not match its own hashes and commitments, or None."""
    try:
        bytes.fromhex(row["content_hash"])
    except (TypeError, ValueError):
        return "content hash is not a hash"
    if is_legacy(row) and entry_hash(row["prev_hash"], row["content_hash"]) != row.get("entry_hash"):
        return "entry hash does not match"
    if row.get("tombstone"):
        return None
    if content_hash(row) != row["content_hash"]:
        return "content was changed"
    redacted = row.get("redacted") or []
    if ("details" not in redacted and row.get("details") is not None
            and details_digest(row["details"]) != row.get("details_hash")):
        return "details were changed"
    if pepper is not None:
        for field in PERSONAL_FIELDS:
            if field in redacted or row.get(field) is None:
                continue
            expected = (row.get("commitments") or {}).get(field)
            if commitment(pepper, row["salt"], field, row[field]) != expected:
                return f"{field} does not match its commitment"
    return None


def verify_rows(rows: Iterable[dict], *, contiguous: bool, pepper: str | None = None,
                snapshot_at: int | None = None) -> Iterator[Verification]:
    """Check rows in order; yield one failing ``Verification`` and stop, or a final good one.

    Each row is a dict with the content fields, ``seq``, the personal values (``email``,
    ``ip``, ``user_agent``), ``salt``, ``content_hash``, ``tombstone`` (bool), ``redacted``
    (list of fields no longer verifiable) and, for events of the old chain, ``prev_hash`` and
    ``entry_hash``. ``contiguous``: the rows are the whole tree from leaf 0, so seq must run
    1, 2, 3... and the root of their leaves is returned (to compare with a signed head);
    otherwise (a filtered export) each row's own hashes and the order are checked and the
    signed manifest's digest guards against removed rows.
    """
    previous: dict | None = None
    tree = merkle.CompactRange()
    count, prefix_root = 0, (merkle.EMPTY_ROOT.hex() if snapshot_at == 0 else None)
    for position, row in enumerate(rows, start=1):
        count = position
        error = check_row(row, pepper)
        if error:
            yield Verification(False, count, None, None, None, position, error)
            return
        seq = row.get("seq")
        if not isinstance(seq, int):
            yield Verification(False, count, None, None, None, position, "row has no place in the tree (seq)")
            return
        if previous is not None:
            if seq <= previous["seq"]:
                yield Verification(False, count, None, None, None, position, "rows are out of order")
                return
            if contiguous and (seq != previous["seq"] + 1 or (
                    is_legacy(row) and is_legacy(previous) and row["prev_hash"] != previous["entry_hash"])):
                yield Verification(False, count, None, None, None, position, "a row before this one is missing")
                return
        elif contiguous and (seq != 1 or (is_legacy(row) and row["prev_hash"] != GENESIS)):
            yield Verification(False, count, None, None, None, position, "the tree does not start at its first leaf")
            return
        tree.append(leaf(row["content_hash"]))
        if tree.size == snapshot_at:
            prefix_root = tree.root().hex()
        previous = row
    yield Verification(True, count, previous["seq"] if previous else None, tree.root().hex(), prefix_root)
