"""The audit log of compliance actions (issue 6, item 7)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from flexmail.clock import iso, now
from flexmail.extensions import db
from flexmail.models import AuditEntry
from flexmail.services.marketer.accounts import Principal
from flexmail.services.platform.unit_of_work import unit_of_work

log = logging.getLogger(__name__)


def record(principal, action: str, params: dict, *, session=None,
           account_id: int | None = None) -> None:
    """Write one audit entry: inside the caller's transaction when ``session`` is given,
    else in its own. ``principal`` is the API caller (or a suppression ``Actor``); None for
    platform jobs. ``params`` must not contain personal data; say which person with
    ``address_ref(...)``."""
    if hasattr(principal, "api_key_id"):  # a suppression_store.Actor (imported there, not here)
        key_id, key_prefix = principal.api_key_id, principal.name.removeprefix("api-key:")[:16]
    else:
        key_id = principal.key_id if principal else None
        key_prefix = principal.key_prefix if principal else None
    entry = AuditEntry(
        account_id=principal.account_id if isinstance(principal, Principal) else account_id,
        key_id=key_id, key_prefix=key_prefix, action=action, params=params, at=now(),
    )
    if session is not None:
        session.add(entry)
    else:
        with unit_of_work() as uow:
            uow.session.add(entry)
    log.info("audit: account %s key %s %s", entry.account_id, entry.key_prefix, action)


def address_ref(address_hash: str) -> str:
    """How the audit log names a person: a prefix of the keyed hash, never the address."""
    return address_hash[:16]


def list_entries(account_id: int, *, after: int | None, limit: int) -> list[dict]:
    query = select(AuditEntry).where(AuditEntry.account_id == account_id)
    if after:
        query = query.where(AuditEntry.id > after)
    rows = db.session.scalars(query.order_by(AuditEntry.id).limit(limit))
    return [{"id": r.id, "at": iso(r.at), "action": r.action, "key_prefix": r.key_prefix, "params": r.params}
            for r in rows]
