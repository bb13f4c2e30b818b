"""The consent ledger: a hash chain per account whose personal fields are commitments.

Each event's *content* (ids, type, time, source, the digest of its details, and HMAC
commitments to the personal values) is hashed canonically; the entry hash chains it to
the previous entry: ``entry = sha256(prev_entry || content_hash)``. Personal values
(address, IP, user agent) are not hashed in clear, so erasing or truncating them later
leaves every hash intact, and whoever holds the original value (with the service's
pepper) can still show that it matches its commitment. An event deleted by retention
becomes a tombstone that keeps ``seq``, ``prev_hash``, ``content_hash`` and ``entry_hash``,
so the chain stays verifiable without its content.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

GENESIS = "0" * 64
PERSONAL_FIELDS = ("email", "ip", "user_agent")
#: The fields whose canonical JSON is the content hash, in the order exports list them.
CONTENT_FIELDS = ("account_id", "seq", "subscription_id", "list_id", "type", "at", "source",
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
    return hmac.new(pepper.encode(), message, hashlib.sha256).hexdigest()


def commitments(pepper: str, salt: str, values: dict[str, str | None]) -> dict[str, str | None]:
    return {field: commitment(pepper, salt, field, values.get(field)) for field in PERSONAL_FIELDS}


def details_digest(details) -> str:
    """The details are chained by digest, so erasure can scrub a personal value in them
    and mark them redacted while every other field stays verifiable."""
    return hashlib.sha256(canonical(details)).hexdigest()


def content_hash(content: dict) -> str:
    missing = set(CONTENT_FIELDS) - set(content)
    if missing:
        raise ValueError(f"ledger content lacks {sorted(missing)}")
    return hashlib.sha256(canonical({k: content[k] for k in CONTENT_FIELDS})).hexdigest()


def entry_hash(prev_hash: str, content_hash_: str) -> str:
    return hashlib.sha256(f"{prev_hash}:{content_hash_}".encode()).hexdigest()


class RowsDigest:
    """One digest over the entry hashes of an export, in order (signed in its manifest)."""

    def __init__(self):
        self._digest = hashlib.sha256()

    def update(self, entry_hash_: str) -> None:
        self._digest.update(entry_hash_.encode() + b"\n")

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def rows_digest_builder() -> RowsDigest:
    return RowsDigest()


@dataclass
class Verification:
    ok: bool
    count: int
    last_seq: int | None
    last_hash: str | None
    #: 1-based position of the first bad row in the file (data rows), and why.
    row: int | None = None
    error: str | None = None


def verify_rows(rows: Iterable[dict], *, contiguous: bool, pepper: str | None = None) -> Iterator[Verification]:
    """Check rows in order; yield one failing ``Verification`` and stop, or a final good one.

    Each row is a dict with the content fields, the personal values (``email``, ``ip``,
    ``user_agent``), ``salt``, ``prev_hash``, ``content_hash``, ``entry_hash``,
    ``tombstone`` (bool) and ``redacted`` (list of personal fields no longer verifiable).
    ``contiguous``: the rows are the whole chain from seq 1, so every link is checked;
    otherwise (a filtered export) only each row's own hashes and the order are checked and
    the signed manifest's digest guards against removed rows.
    """
    previous: dict | None = None
    count = 0
    for position, row in enumerate(rows, start=1):
        count = position
        if entry_hash(row["prev_hash"], row["content_hash"]) != row["entry_hash"]:
            yield Verification(False, count, None, None, position, "entry hash does not match")
            return
        if not row.get("tombstone"):
            if content_hash(row) != row["content_hash"]:
                yield Verification(False, count, None, None, position, "content was changed")
                return
            if ("details" not in (row.get("redacted") or []) and row.get("details") is not None
                    and details_digest(row["details"]) != row.get("details_hash")):
                yield Verification(False, count, None, None, position, "details were changed")
                return
            if pepper is not None:
                for field in PERSONAL_FIELDS:
                    if field in (row.get("redacted") or []) or row.get(field) is None:
                        continue
                    expected = (row.get("commitments") or {}).get(field)
                    if commitment(pepper, row["salt"], field, row[field]) != expected:
                        yield Verification(False, count, None, None, position, f"{field} does not match its commitment")
                        return
        if previous is not None:
            if row["seq"] <= previous["seq"]:
                yield Verification(False, count, None, None, position, "rows are out of order")
                return
            if contiguous and (row["seq"] != previous["seq"] + 1 or row["prev_hash"] != previous["entry_hash"]):
                yield Verification(False, count, None, None, position, "a row before this one is missing")
                return
        elif contiguous and (row["seq"] != 1 or row["prev_hash"] != GENESIS):
            yield Verification(False, count, None, None, position, "the chain does not start at its genesis")
            return
        previous = row
    yield Verification(True, count, previous["seq"] if previous else None,
                       previous["entry_hash"] if previous else None)
