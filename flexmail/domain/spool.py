"""The line format of the opt-out spool: one JSON record and its SHA-256, one per line.

A line is ``<compact JSON> <64 hex digits of SHA-256 of the JSON bytes>\\n``. The digest
catches a torn write (power loss in the middle of a line) and any later damage, so a line
is either applied exactly as it was written or kept aside as corrupt, never half-read.
"""

from __future__ import annotations

import hashlib
import json

VERSION = 1
#: What a line may ask for: a link unsubscribe (one-click or page) or a mailto one.
KINDS = ("link", "mailto")


class CorruptLine(ValueError):
    """The line is not a record this code wrote: bad digest, bad JSON or missing fields."""


def encode(record: dict) -> bytes:
    """One spool line (with its newline) for ``record``; keys are sorted for a stable digest."""
    body = json.dumps({"v": VERSION, **record}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode()
    return body + b" " + hashlib.sha256(body).hexdigest().encode() + b"\n"


def decode(line: bytes) -> dict:
    """The record of one line (newline optional); ``CorruptLine`` if it does not verify."""
    line = line.rstrip(b"\r\n")
    body, sep, digest = line.rpartition(b" ")
    if not sep or len(digest) != 64:
        raise CorruptLine("no checksum")
    if hashlib.sha256(body).hexdigest().encode() != digest:
        raise CorruptLine("checksum mismatch")
    try:
        record = json.loads(body)
    except ValueError:
        raise CorruptLine("not JSON") from None
    if not isinstance(record, dict) or record.get("v") != VERSION:
        raise CorruptLine("unknown version")
    if record.get("kind") not in KINDS or not isinstance(record.get("id"), str) \
            or not isinstance(record.get("at"), str):
        raise CorruptLine("missing fields")
    return record
