"""Who must not be mailed. Matching is on the keyed address hash only."""

from __future__ import annotations

from sqlalchemy import or_, select

from flexmail.extensions import db
from flexmail.models import Suppression


def find_suppression(account_id: int, address_hash: str) -> Suppression | None:
    """The entry that blocks mail from ``account_id`` to this address (account or global)."""
    return db.session.scalar(
        select(Suppression)
        .where(Suppression.address_hash == address_hash,
               or_(Suppression.account_id == account_id, Suppression.account_id.is_(None)))
        .limit(1)
    )


def add_suppression(session, *, account_id: int | None, address_hash: str, reason: str,
                    source: str) -> Suppression:
    """Add an entry inside the caller's transaction; an existing identical entry is reused."""
    existing = session.scalar(
        select(Suppression).where(Suppression.address_hash == address_hash,
                                  Suppression.account_id.is_(None) if account_id is None
                                  else Suppression.account_id == account_id,
                                  Suppression.reason == reason)
    )
    if existing is not None:
        return existing
    row = Suppression(account_id=account_id, address_hash=address_hash, reason=reason, source=source)
    session.add(row)
    return row
