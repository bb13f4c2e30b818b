"""The sealer: gives unsealed events their places in the account's tree and signs a head.

One sealer per account at a time: on PostgreSQL a transaction-scoped advisory lock on the
account (``pg_advisory_xact_lock``), on SQLite the single writer (BEGIN IMMEDIATE). Writers
of events never take that lock, so sealing never makes a subscriber wait; it only orders
what was committed. Events written before the tree (the old hash chain, already numbered)
become its first leaves, in seq order, on the first seal after the migration.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, text, update

from flexmail.domain import ledger, merkle
from flexmail.extensions import db
from flexmail.models import ConsentEvent, LedgerNode, LedgerTreeHead
from flexmail.services.evidence.ledger import head_document, latest_head_row, perfect_nodes, sign_head
from flexmail.services.platform.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

#: First key of the advisory lock (the account id is the second): "seal".
LOCK_CLASS = 0x5EA1
BATCH = 5000


def _lock(session, account_id: int, wait: bool) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True  # SQLite: this transaction began IMMEDIATE, so it is the only writer
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    got = session.scalar(text(f"SELECT {function}(CAST(:c AS integer), CAST(:a AS integer))"),
                         {"c": LOCK_CLASS, "a": account_id})
    return wait or bool(got)


def _seal_batch(account_id: int, wait: bool, batch: int) -> tuple[dict | None, bool]:
    """Seal up to ``batch`` events in one transaction; return (new head or None, more left)."""
    with unit_of_work() as uow:
        session = uow.session
        if not _lock(session, account_id, wait):
            return None, False  # another sealer of this account is at work
        row = latest_head_row(account_id, session)
        size = row.tree_size if row else 0
        coords = merkle.frontier(size)
        found = perfect_nodes(account_id, coords, session)
        tree = merkle.CompactRange(size, [found[c] for c in coords])
        if row is not None and tree.root().hex() != row.root_hash:
            raise RuntimeError(f"ledger of account {account_id}: stored nodes disagree with the signed head")
        new_nodes: list[tuple[int, int, bytes]] = []
        # Events of the old chain (numbered before the tree existed), then new ones by id.
        for seq, content_hash in session.execute(
                select(ConsentEvent.seq, ConsentEvent.content_hash)
                .where(ConsentEvent.account_id == account_id, ConsentEvent.seq > size)
                .order_by(ConsentEvent.seq).limit(batch)):
            if seq != tree.size + 1:
                raise RuntimeError(f"ledger of account {account_id}: numbered events have a gap at {seq}")
            new_nodes += tree.append(ledger.leaf(content_hash))
        places = []
        if tree.size == size:
            for event_id, content_hash in session.execute(
                    select(ConsentEvent.id, ConsentEvent.content_hash)
                    .where(ConsentEvent.account_id == account_id, ConsentEvent.seq.is_(None))
                    .order_by(ConsentEvent.id).limit(batch)):
                new_nodes += tree.append(ledger.leaf(content_hash))
                places.append({"id": event_id, "seq": tree.size})
        sealed = tree.size - size
        if not sealed:
            return None, False
        if places:
            session.execute(update(ConsentEvent), places)
        if new_nodes:
            session.execute(LedgerNode.__table__.insert(), [
                {"account_id": account_id, "level": level, "idx": idx, "hash": value.hex()}
                for level, idx, value in new_nodes])
        document = sign_head(account_id, tree.size, tree.root())
        session.add(LedgerTreeHead(**{k: document[k] for k in (
            "account_id", "tree_size", "root_hash", "timestamp", "key_id", "signature")}))
    log.info("ledger sealed account=%s events=%s tree_size=%s", account_id, sealed, tree.size)
    return document, True


def seal(account_id: int, *, wait: bool = True, batch: int = BATCH) -> dict | None:
    """Seal every event of the account committed so far; return the latest signed head.

    ``wait=False`` (the periodic actor) returns at once when another sealer holds the
    account; ``wait=True`` (before a proof read or export) waits for it, then seals the rest.
    Idempotent: with nothing to seal, no head is written.
    """
    latest, more = None, True
    while more:
        document, more = _seal_batch(account_id, wait, batch)
        latest = document or latest
    if latest is None:
        row = latest_head_row(account_id)
        latest = head_document(row) if row else None
    return latest


def accounts_to_seal() -> list[int]:
    """Accounts with events not sealed yet (read through the partial index)."""
    return list(db.session.scalars(select(ConsentEvent.account_id).where(ConsentEvent.seq.is_(None))
                                   .group_by(ConsentEvent.account_id)))


def accounts_with_legacy_events() -> list[int]:
    """Accounts whose old chain has numbered events no signed head covers yet (after migrating)."""
    heads = (select(LedgerTreeHead.account_id, db.func.max(LedgerTreeHead.tree_size).label("size"))
             .group_by(LedgerTreeHead.account_id).subquery())
    query = (select(ConsentEvent.account_id).outerjoin(heads, heads.c.account_id == ConsentEvent.account_id)
             .where(ConsentEvent.seq > db.func.coalesce(heads.c.size, 0)).group_by(ConsentEvent.account_id))
    return list(db.session.scalars(query))
