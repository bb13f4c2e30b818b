"""The ledger's hash chain and commitments (pure functions)."""

from __future__ import annotations

import copy

import pytest

from flexmail.domain import csvsafe
from flexmail.domain.ledger import (
    GENESIS,
    commitment,
    commitments,
    content_hash,
    details_digest,
    entry_hash,
    verify_rows,
)

PEPPER = "pepper"


def _chain(n=4):
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        salt = f"salt{seq}"
        values = {"email": "a@example.com", "ip": f"192.0.2.{seq}", "user_agent": "UA"}
        row = {"account_id": 1, "seq": seq, "subscription_id": 7, "list_id": 3,
               "type": "confirmed", "at": f"2026-01-0{seq}T00:00:00Z", "source": "page",
               "details": {"method": "button"}, "details_hash": details_digest({"method": "button"}),
               "commitments": commitments(PEPPER, salt, values),
               "salt": salt, **values, "prev_hash": prev}
        row["content_hash"] = content_hash(row)
        row["entry_hash"] = entry_hash(prev, row["content_hash"])
        prev = row["entry_hash"]
        rows.append(row)
    return rows


def _result(rows, **kw):
    return list(verify_rows(rows, **kw))[-1]


def test_intact_chain_verifies():
    """A whole chain verifies, with its last hash and count."""
    rows = _chain()
    result = _result(rows, contiguous=True, pepper=PEPPER)
    assert result.ok and result.count == 4 and result.last_hash == rows[-1]["entry_hash"]


@pytest.mark.parametrize("field,value", [("type", "unsubscribed"), ("at", "2027-01-01T00:00:00Z"),
                                         ("details", {"method": "auto"}), ("subscription_id", 8),
                                         ("details_hash", "0" * 64)])
def test_edited_content_fails_naming_the_row(field, value):
    """Changing any hashed field of row 3 fails at row 3."""
    rows = _chain()
    rows[2][field] = value
    result = _result(rows, contiguous=True)
    assert not result.ok and result.row == 3 and "changed" in result.error


def test_scrubbed_details_marked_redacted_keep_the_chain_valid():
    """Erasure may scrub a value in the details when it marks them redacted; unmarked, it fails."""
    rows = _chain()
    rows[1]["details"] = {"method": None}
    assert not _result(rows, contiguous=True).ok
    rows[1]["redacted"] = ["details"]
    assert _result(rows, contiguous=True).ok


def test_edited_personal_value_fails_against_its_commitment():
    """Changing an IP in clear is caught by its commitment (with the pepper)."""
    rows = _chain()
    rows[1]["ip"] = "198.51.100.1"
    assert _result(rows, contiguous=True).ok  # without the pepper the clear value is not checked
    result = _result(rows, contiguous=True, pepper=PEPPER)
    assert not result.ok and result.row == 2 and "ip" in result.error


def test_dropped_swapped_and_reordered_rows_fail():
    """A missing row or two swapped rows break the chain at the row after the change."""
    rows = _chain()
    dropped = rows[:1] + rows[2:]
    assert _result(dropped, contiguous=True).row == 2
    swapped = [rows[0], rows[2], rows[1], rows[3]]
    assert not _result(swapped, contiguous=True).ok
    assert not _result(swapped, contiguous=False).ok  # even a filtered export keeps order


def test_redaction_keeps_the_chain_valid():
    """Erasing personal values and tombstoning a row leave every hash verifiable."""
    rows = _chain()
    for row in rows:
        row["email"] = row["ip"] = row["user_agent"] = None
    tomb = rows[1]
    for field in ("subscription_id", "list_id", "type", "at", "source", "details", "details_hash", "commitments",
                  "salt"):
        tomb[field] = None
    tomb["tombstone"] = True
    assert _result(rows, contiguous=True, pepper=PEPPER).ok


def test_commitment_needs_the_pepper_and_the_salt():
    """The same value commits differently under another salt or pepper."""
    a = commitment("p", "s1", "ip", "192.0.2.1")
    assert a != commitment("p", "s2", "ip", "192.0.2.1")
    assert a != commitment("q", "s1", "ip", "192.0.2.1")
    assert commitment("p", "s1", "ip", None) is None


@pytest.mark.parametrize("value", ["=1+1", "+x@example.com", "-x@example.com", "@SUM(A1)", "\tx", "\rx", "\nx",
                                   "'=already", "'plain", "plain", "", None, "a=b"])
def test_csv_escape_is_safe_and_reversible(value):
    """Formula starts get a leading quote; unescape gives the original back."""
    escaped = csvsafe.escape(value)
    assert not escaped.startswith(("=", "+", "-", "@", "\t", "\r", "\n"))
    assert csvsafe.unescape(escaped) == ("" if value is None else value)
    original = copy.copy(value)
    assert original == value
