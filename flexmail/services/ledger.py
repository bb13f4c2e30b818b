"""Appending to and checking the per-account consent chain (see domain.ledger)."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from flexmail.clock import iso
from flexmail.domain import ledger
from flexmail.domain.addresses import match_key
from flexmail.extensions import db
from flexmail.models import ConsentEvent, LedgerHead
from flexmail.services.context import hash_key


def personal_values(event: ConsentEvent, email: str | None) -> dict:
    return {"email": match_key(email) if email else None, "ip": event.ip, "user_agent": event.user_agent}


def chain_content(event: ConsentEvent) -> dict:
    """The hashed content of an event, exactly as exports carry it."""
    return {
        "account_id": event.account_id, "seq": event.seq, "subscription_id": event.subscription_id,
        "list_id": event.list_id, "type": event.type.value if event.type else None, "at": iso(event.at),
        "source": event.source, "details_hash": event.details_hash, "commitments": event.commitments,
    }


def append(session, event: ConsentEvent, *, email: str | None) -> ConsentEvent:
    """Give ``event`` its place in the account's chain, inside the caller's transaction.

    The account's head row is locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite's
    BEGIN IMMEDIATE already serialises writers), so sequence numbers have no gaps and no
    two events share a predecessor.
    """
    _link(_locked_head(session, event.account_id), event, email)
    session.add(event)
    return event


def append_many(session, events: list[tuple[ConsentEvent, str | None]]) -> None:
    """``append`` for many events of one account (a bulk import): the head is locked and
    read once, the events are linked in order and inserted together at the next flush."""
    if not events:
        return
    head = _locked_head(session, events[0][0].account_id)
    for event, email in events:
        _link(head, event, email)
    session.add_all([event for event, _ in events])


def _locked_head(session, account_id: int) -> LedgerHead:
    head = session.scalar(
        select(LedgerHead).where(LedgerHead.account_id == account_id).with_for_update()
    )
    if head is None:
        head = LedgerHead(account_id=account_id, seq=0, entry_hash=ledger.GENESIS)
        session.add(head)
        session.flush()
    return head


def _link(head: LedgerHead, event: ConsentEvent, email: str | None) -> None:
    event.seq = head.seq + 1
    event.prev_hash = head.entry_hash
    event.salt = secrets.token_hex(16)
    event.commitments = ledger.commitments(hash_key(), event.salt, personal_values(event, email))
    event.details = event.details or {}
    event.details_hash = ledger.details_digest(event.details)
    event.content_hash = ledger.content_hash(chain_content(event))
    event.entry_hash = ledger.entry_hash(event.prev_hash, event.content_hash)
    head.seq, head.entry_hash = event.seq, event.entry_hash


def head(account_id: int) -> dict:
    row = db.session.get(LedgerHead, account_id)
    return {"account_id": account_id, "count": row.seq if row else 0,
            "head_hash": row.entry_hash if row else ledger.GENESIS}


def export_row(event: ConsentEvent, email: str | None) -> dict:
    """One event as an export row: content, personal values in clear, chain fields."""
    tomb = event.tombstoned_at is not None
    return {
        **chain_content(event), "event_id": event.id, "details": event.details, "email": email, "ip": event.ip,
        "user_agent": event.user_agent, "salt": event.salt, "prev_hash": event.prev_hash,
        "content_hash": event.content_hash, "entry_hash": event.entry_hash,
        "redacted": event.redacted or [], "tombstone": tomb,
    }


def verify_events(events: list[ConsentEvent], emails: dict[int, str | None]) -> dict:
    """Check some events of one account in place: own hashes, commitments, and the link to
    each predecessor (one lookup each), without reading the whole chain."""
    problems = []
    for event in events:
        row = export_row(event, emails.get(event.subscription_id))
        row["email"] = match_key(row["email"]) if row["email"] else None
        result = list(ledger.verify_rows([row], contiguous=False, pepper=hash_key()))[-1]
        if not result.ok:
            problems.append({"seq": event.seq, "error": result.error})
            continue
        if event.seq == 1:
            linked = event.prev_hash == ledger.GENESIS
        else:
            linked = db.session.scalar(select(ConsentEvent.entry_hash).where(
                ConsentEvent.account_id == event.account_id, ConsentEvent.seq == event.seq - 1)) == event.prev_hash
        if not linked:
            problems.append({"seq": event.seq, "error": "not linked to its predecessor"})
    return {"verified": not problems, "events_checked": len(events), "problems": problems}
