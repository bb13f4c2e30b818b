"""The per-account consent ledger: appending events, signed tree heads, and proofs.

Appending is one INSERT with no read of any other row (no lock shared by two subscribers):
the event carries its content hash and no place. ``services.evidence.sealing`` later gives events
their places in the account's Merkle tree and signs a tree head; this module reads heads
and builds RFC 9162 inclusion and consistency proofs from the stored perfect subtrees.
"""

from __future__ import annotations

import secrets
from types import SimpleNamespace

from sqlalchemy import and_, insert, or_, select

from flexmail.clock import iso, now
from flexmail.domain import ledger, merkle
from flexmail.domain.addresses import match_key
from flexmail.extensions import db
from flexmail.models import ConsentEvent, LedgerNode, LedgerTreeHead
from flexmail.services.evidence import signing
from flexmail.services.platform import bulk
from flexmail.services.platform.context import hash_key
from flexmail.services.platform.errors import NotFound, ValidationFailed


def personal_values(event: ConsentEvent, email: str | None) -> dict:
    return {"email": match_key(email) if email else None, "ip": event.ip, "user_agent": event.user_agent}


def chain_content(event: ConsentEvent) -> dict:
    """The hashed content of an event, exactly as exports carry it."""
    return {
        "account_id": event.account_id, "seq": event.seq, "subscription_id": event.subscription_id,
        "list_id": event.list_id, "type": event.type.value if event.type else None, "at": iso(event.at),
        "source": event.source, "details_hash": event.details_hash, "commitments": event.commitments,
        "prev_hash": event.prev_hash,
    }


def append(session, event: ConsentEvent, *, email: str | None) -> ConsentEvent:
    """Add ``event`` to the caller's transaction: hashes computed here, no other row read.

    The event has no place (``seq``) yet; the sealer gives it one after the commit.
    """
    for name, value in _hashed(event, email).items():
        setattr(event, name, value)
    session.add(event)
    return event


def _hashed(event, email: str | None) -> dict:
    """The ledger columns of an event (anything with the event's attribute names): salt,
    commitments, details and their digest, content hash. The one place they are computed."""
    salt = secrets.token_hex(16)
    details = event.details or {}
    fields = {"salt": salt, "commitments": ledger.commitments(hash_key(), salt, personal_values(event, email)),
              "details": details, "details_hash": ledger.details_digest(details)}
    content = {**chain_content(event), "details_hash": fields["details_hash"], "commitments": fields["commitments"]}
    fields["content_hash"] = ledger.content_hash(content)
    return fields


#: The columns of an event row written by ``append_many``.
EVENT_COLUMNS = ("account_id", "subscription_id", "list_id", "type", "at", "ip", "user_agent", "source",
                 "details", "details_hash", "salt", "commitments", "content_hash")


def append_many(session, events: list[tuple[dict, str | None]]) -> list[dict]:
    """``append`` for many events given as column values (``account_id``, ``subscription_id``,
    ``list_id``, ``type``, ``at``, ``ip``, ``user_agent``, ``source``, ``details``): hashed
    exactly as ``append`` hashes, then written in one bulk insert (COPY on PostgreSQL) in the
    caller's transaction. Returns the rows as written."""
    rows = []
    for values, email in events:
        event = SimpleNamespace(seq=None, prev_hash=None, details_hash=None, commitments=None, **values)
        rows.append({**values, **_hashed(event, email)})
    bulk.insert_rows(session, ConsentEvent.__table__, EVENT_COLUMNS, rows)
    return rows


#: The columns a new event is written with (the rest keep their defaults or NULL).
NEW_EVENT_COLUMNS = EVENT_COLUMNS
_INSERT_EVENT = insert(ConsentEvent.__table__)


def event_values(*, email: str | None, **values) -> dict:
    """The columns of a new event (``EVENT_COLUMNS``) with the hashes ``append`` computes,
    for a statement that inserts it itself (the hot paths)."""
    event = SimpleNamespace(seq=None, prev_hash=None, details_hash=None, commitments=None, **values)
    row = {**values, **_hashed(event, email)}
    return {name: row[name] for name in EVENT_COLUMNS}


def append_row(connection, *, email: str | None, **values) -> SimpleNamespace:
    """``append`` on a Core connection, for the hot paths: the same hashes, one INSERT sent at
    once, and no ORM object, flush or identity map. Returns the event's values."""
    row = event_values(email=email, **values)
    connection.execute(_INSERT_EVENT, row)
    return SimpleNamespace(**row)


# --- signed tree heads ------------------------------------------------------------------

def head_document(row: LedgerTreeHead) -> dict:
    """The signed head as stored: exactly the signed fields plus the signature."""
    return {"account_id": row.account_id, "tree_size": row.tree_size, "root_hash": row.root_hash,
            "timestamp": row.timestamp, "key_id": row.key_id, "signature": row.signature}


def sign_head(account_id: int, tree_size: int, root: bytes) -> dict:
    return signing.sign({"account_id": account_id, "tree_size": tree_size, "root_hash": root.hex(),
                         "timestamp": iso(now())})


def latest_head_row(account_id: int, session=None) -> LedgerTreeHead | None:
    session = session or db.session
    return session.scalar(select(LedgerTreeHead).where(LedgerTreeHead.account_id == account_id)
                          .order_by(LedgerTreeHead.tree_size.desc()).limit(1))


def head(account_id: int) -> dict:
    """The latest signed tree head (an empty tree, signed now, before the first seal)."""
    row = latest_head_row(account_id)
    if row is None:
        return sign_head(account_id, 0, merkle.EMPTY_ROOT)
    return head_document(row)


def head_at(account_id: int, tree_size: int) -> dict:
    row = db.session.get(LedgerTreeHead, (account_id, tree_size))
    if row is None:
        raise NotFound(f"No signed head of size {tree_size}.")
    return head_document(row)


# --- proofs -----------------------------------------------------------------------------

def perfect_nodes(account_id: int, coords, session=None) -> dict[tuple[int, int], bytes]:
    """Hashes of perfect subtrees by (level, index): leaves from the events, the rest stored."""
    session = session or db.session
    coords = set(coords)
    found: dict[tuple[int, int], bytes] = {}
    leaves = sorted(i + 1 for level, i in coords if level == 0)
    for start in range(0, len(leaves), 500):
        for seq, content_hash in session.execute(
                select(ConsentEvent.seq, ConsentEvent.content_hash).where(
                    ConsentEvent.account_id == account_id, ConsentEvent.seq.in_(leaves[start:start + 500]))):
            found[(0, seq - 1)] = ledger.leaf(content_hash)
    inner = sorted(c for c in coords if c[0] > 0)
    for start in range(0, len(inner), 200):
        chunk = inner[start:start + 200]
        condition = or_(*(and_(LedgerNode.level == level, LedgerNode.idx == idx) for level, idx in chunk))
        for level, idx, value in session.execute(
                select(LedgerNode.level, LedgerNode.idx, LedgerNode.hash)
                .where(LedgerNode.account_id == account_id, condition)):
            found[(level, idx)] = bytes.fromhex(value)
    missing = coords - set(found)
    if missing:
        raise LookupError(f"the tree of account {account_id} lacks nodes {sorted(missing)[:3]}")
    return found


def _resolve(account_id: int, ranges: list[tuple[int, int]]) -> list[str]:
    coords = [c for a, b in ranges for c in merkle.range_nodes(a, b)]
    nodes = perfect_nodes(account_id, coords)
    return [h.hex() for h in merkle.resolve(ranges, lambda level, idx: nodes[(level, idx)])]


def inclusion_proof(account_id: int, seq: int, tree_size: int) -> list[str]:
    """The audit path of event ``seq`` (leaf ``seq - 1``) in the tree of ``tree_size`` leaves."""
    return _resolve(account_id, merkle.inclusion_ranges(seq - 1, tree_size))


def consistency(account_id: int, first: int, second: int) -> dict:
    """Both signed heads and the RFC 9162 proof that the first tree is a prefix of the second."""
    if first < 1 or second < first:
        raise ValidationFailed("Invalid input.", fields={"first": ["need 1 <= first <= second"]})
    older, newer = head_at(account_id, first), head_at(account_id, second)
    return {"first": older, "second": newer,
            "proof": _resolve(account_id, merkle.consistency_ranges(first, second))}


def verify_head(document: dict, public: str | None = None) -> bool:
    return signing.verify(document, public)


def event_row(event: ConsentEvent, email: str | None) -> dict:
    """An event as domain.ledger.check_row reads it."""
    return {**chain_content(event), "content_hash": event.content_hash, "entry_hash": event.entry_hash,
            "details": event.details, "email": match_key(email) if email else None, "ip": event.ip,
            "user_agent": event.user_agent, "salt": event.salt, "redacted": event.redacted or [],
            "tombstone": event.tombstoned_at is not None}


def verify_events(events: list[ConsentEvent], emails: dict[int, str | None], signed_head: dict) -> dict:
    """Check some events of one account in place: own hashes and commitments, and each sealed
    event's inclusion in the signed head (whose signature is checked too)."""
    problems, unsealed, proofs = [], [], {}
    head_ok = verify_head(signed_head)
    if not head_ok:
        problems.append({"seq": None, "error": "the tree head signature is not valid"})
    root, size = bytes.fromhex(signed_head["root_hash"]), signed_head["tree_size"]
    for event in events:
        if event.seq is None or event.seq > size:
            unsealed.append(event.id)
            continue
        error = ledger.check_row(event_row(event, emails.get(event.subscription_id)), hash_key())
        if error:
            problems.append({"seq": event.seq, "error": error})
            continue
        try:
            path = inclusion_proof(event.account_id, event.seq, size)
        except LookupError as exc:  # a leaf or node the signed tree covers is gone
            problems.append({"seq": event.seq, "error": str(exc)})
            continue
        proofs[event.id] = path
        if not merkle.verify_inclusion(event.seq - 1, size, ledger.leaf(event.content_hash),
                                       [bytes.fromhex(p) for p in path], root):
            problems.append({"seq": event.seq, "error": "not included in the signed tree head"})
    return {"verified": not problems, "events_checked": len(events) - len(unsealed), "problems": problems,
            "unsealed": unsealed, "proofs": proofs}
