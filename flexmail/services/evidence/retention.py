"""Retention: keep proof while it is needed, then keep only the chain's skeleton.

- Unconfirmed signups are deleted after FLEXMAIL_PENDING_RETENTION_DAYS (standards E6).
  A pending re-signup of someone who was subscribed before is marked ``expired`` instead,
  so the proof of their earlier consent and withdrawal follows the withdrawal rule.
- IP addresses in events older than FLEXMAIL_IP_RETENTION_DAYS are truncated to /24 (IPv4)
  or /48 (IPv6).
- Events of withdrawn consent (unsubscribed, cancelled, expired) are deleted
  FLEXMAIL_WITHDRAWN_RETENTION_YEARS after the withdrawal.
- Idempotency keys of the API (with the answers they replay) are deleted after 24 h.
"Deleted" events become tombstones: content and personal values go, ``seq`` and the
hashes stay, so every account's chain remains verifiable.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging

from sqlalchemy import delete, null, select, update

from flexmail.clock import iso, now
from flexmail.domain.consent import EventType, Status
from flexmail.models import ConsentEvent, OutboxMessage, Subscription
from flexmail.services.consent import flood
from flexmail.services.evidence import audit
from flexmail.services.evidence.proof import record_event
from flexmail.services.marketer import idempotency
from flexmail.services.platform.context import RequestMeta, setting
from flexmail.services.platform.unit_of_work import unit_of_work

log = logging.getLogger(__name__)
BATCH = 500


def truncate_ip(ip: str) -> str:
    """192.0.2.77 -> 192.0.2.0; 2001:db8:1:2::7 -> 2001:db8:1::"""
    address = ipaddress.ip_address(ip)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def _tombstone(session, subscription_ids: list[int], at: dt.datetime) -> int:
    if not subscription_ids:
        return 0
    count = session.execute(
        update(ConsentEvent).where(ConsentEvent.subscription_id.in_(subscription_ids))
        # null(): a JSON column given None would store the JSON text 'null', not SQL NULL.
        .values(subscription_id=None, list_id=None, type=None, at=None, source=None, details=null(),
                details_hash=None, salt=None, commitments=null(), ip=None, user_agent=None, tombstoned_at=at)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.execute(delete(OutboxMessage).where(OutboxMessage.subscription_id.in_(subscription_ids)))
    session.execute(delete(Subscription).where(Subscription.id.in_(subscription_ids)))
    return count


def _batches(query):
    with unit_of_work() as uow:
        ids = list(uow.session.scalars(query.limit(BATCH)))
    return ids


def run_retention(*, as_of: dt.datetime | None = None) -> dict:
    """Apply the three rules as of ``as_of`` (default now); return and log the counts."""
    as_of = as_of or now()
    counts = {"pending_deleted": 0, "pending_expired": 0, "withdrawn_deleted": 0, "events_tombstoned": 0,
              "ips_truncated": 0}
    pending_cutoff = as_of - dt.timedelta(days=setting("PENDING_RETENTION_DAYS"))
    never_confirmed = (select(Subscription.id).where(Subscription.status == Status.PENDING,
                                                     Subscription.confirmed_at.is_(None),
                                                     Subscription.requested_at < pending_cutoff)
                       .order_by(Subscription.id))
    while ids := _batches(never_confirmed):
        with unit_of_work() as uow:
            counts["events_tombstoned"] += _tombstone(uow.session, ids, as_of)
        counts["pending_deleted"] += len(ids)

    once_confirmed = (select(Subscription).where(Subscription.status == Status.PENDING,
                                                 Subscription.confirmed_at.is_not(None),
                                                 Subscription.requested_at < pending_cutoff))
    with unit_of_work() as uow:
        for sub in uow.session.scalars(once_confirmed):
            record_event(uow.session, sub, EventType.EXPIRED, meta=RequestMeta(at=as_of), source="retention")
            counts["pending_expired"] += 1

    withdrawn_cutoff = as_of - dt.timedelta(days=365 * setting("WITHDRAWN_RETENTION_YEARS"))
    withdrawn = (select(Subscription.id).where(
        Subscription.status.in_([Status.UNSUBSCRIBED, Status.CANCELLED, Status.EXPIRED]),
        Subscription.updated_at < withdrawn_cutoff).order_by(Subscription.id))
    while ids := _batches(withdrawn):
        with unit_of_work() as uow:
            counts["events_tombstoned"] += _tombstone(uow.session, ids, as_of)
        counts["withdrawn_deleted"] += len(ids)

    ip_cutoff = as_of - dt.timedelta(days=setting("IP_RETENTION_DAYS"))
    last_id = 0
    while True:
        with unit_of_work() as uow:
            rows = list(uow.session.scalars(
                select(ConsentEvent).where(ConsentEvent.id > last_id, ConsentEvent.ip.is_not(None),
                                           ConsentEvent.at < ip_cutoff).order_by(ConsentEvent.id).limit(BATCH)))
            for event in rows:
                if "ip" in (event.redacted or []):
                    continue
                event.ip = truncate_ip(event.ip)
                event.redacted = sorted({*(event.redacted or []), "ip"})
                counts["ips_truncated"] += 1
        if len(rows) < BATCH:
            break
        last_id = rows[-1].id
    counts["idempotency_keys_deleted"] = idempotency.purge_expired(as_of=as_of)
    with unit_of_work() as uow:  # flood counters of ended windows mean nothing any more
        flood.purge_expired(uow.session, before=as_of)
    audit.record(None, "retention.run", {"as_of": iso(as_of), **counts})
    log.info("retention as of %s: %s", iso(as_of), counts)
    return counts
