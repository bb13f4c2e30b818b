"""The ledger's rows, tree root and commitments (pure functions)."""

from __future__ import annotations

import copy

import pytest

from flexmail.domain import csvsafe, merkle
from flexmail.domain.ledger import (
    GENESIS,
    commitment,
    commitments,
    content_hash,
    details_digest,
    entry_hash,
    leaf,
    verify_rows,
)

PEPPER = "pepper"


def _chain(n=4, legacy_until=0):
    """Rows 1..n; the first ``legacy_until`` ones are events of the old hash chain (migrated)."""
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        salt = f"salt{seq}"
        values = {"email": "a@example.com", "ip": f"192.0.2.{seq}", "user_agent": "UA"}
        row = {"account_id": 1, "seq": seq, "subscription_id": 7, "list_id": 3,
               "type": "confirmed", "at": f"2026-01-0{seq}T00:00:00Z", "source": "page",
               "details": {"method": "button"}, "details_hash": details_digest({"method": "button"}),
               "commitments": commitments(PEPPER, salt, values),
               "salt": salt, **values, "prev_hash": prev if seq <= legacy_until else None, "entry_hash": None}
        row["content_hash"] = content_hash(row)
        if seq <= legacy_until:
            row["entry_hash"] = entry_hash(prev, row["content_hash"])
            prev = row["entry_hash"]
        rows.append(row)
    return rows


def _result(rows, **kw):
    return list(verify_rows(rows, **kw))[-1]


@pytest.mark.parametrize("legacy_until", [0, 2, 4])
def test_intact_tree_verifies_with_its_root(legacy_until):
    """Whole rows verify, old-chain rows first or not, and give the RFC 9162 root of their leaves."""
    rows = _chain(legacy_until=legacy_until)
    result = _result(rows, contiguous=True, pepper=PEPPER, snapshot_at=2)
    assert result.ok and result.count == 4
    assert result.root == merkle.root_of(leaf(r["content_hash"]) for r in rows).hex()
    assert result.prefix_root == merkle.root_of(leaf(r["content_hash"]) for r in rows[:2]).hex()


def test_new_content_does_not_hash_its_place_but_old_chain_content_does():
    """A tree event's content hash is independent of seq (given later); an old-chain event's is not."""
    row = _chain(1)[0]
    assert content_hash({**row, "seq": 99}) == row["content_hash"]
    old = _chain(1, legacy_until=1)[0]
    assert content_hash({**old, "seq": 99}) != old["content_hash"]


def test_edited_old_chain_link_fails():
    """For migrated events the old chain is still checked: an edited entry hash fails at its row."""
    rows = _chain(legacy_until=4)
    rows[2]["entry_hash"] = "0" * 64
    result = _result(rows, contiguous=True)
    assert not result.ok and result.row == 3


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
