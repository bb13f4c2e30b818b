"""Erasure (GDPR Art. 17): remove a person's data from an account, keep them protected.

``erase_person`` works on the keyed hash of the normalised address, in one transaction:

- active subscriptions end (an ``unsubscribed`` event, method ``erasure``); pending
  confirmation mails are skipped;
- the address leaves every subscription (``email`` NULL, ``source`` too if it holds it);
- consent events stay, in order, as the proof: only their clear personal fields are
  nulled (``ip``, ``user_agent``, and detail values that name the person, see
  ``domain.erasure``). Nulling is the only change erasure makes to an event, so a
  tamper-evident ledger that commits to personal fields separately keeps verifying;
- the account's suppression entries for the address lose their plain address (and lift
  notes, which may name the person);
- an account ``erasure`` entry (hash only) is added and an ``erased`` event recorded on
  each subscription.

The hash keeps blocking: the marketer's API is refused (409) and cannot lift the entry.
The person's own signup through the hosted form passes it (``domain.suppression``:
``erasure`` is a reason the person chose, the form is a person-initiated channel), gets the
neutral answer and a confirmation mail, and only that confirmation lifts the entry.

Platform-wide entries are the operator's records and keep their plain address. On SQLite
the file is rewritten afterwards (``VACUUM``, WAL truncated) so no page keeps an old copy;
on PostgreSQL old row versions are gone from every dump at once and from disk at the next
vacuum.
"""

from __future__ import annotations

import logging
from collections import Counter

from sqlalchemy import select, text, update

from flexmail.domain.consent import EventType, Status
from flexmail.domain.erasure import contains_address, scrub
from flexmail.extensions import db
from flexmail.models import ConsentEvent, OutboxMessage, Subscription, Suppression, SuppressionLift
from flexmail.services.delivery import webhooks
from flexmail.services.evidence import audit
from flexmail.services.evidence.proof import record_event
from flexmail.services.marketer import idempotency
from flexmail.services.platform.context import RequestMeta, parse_address
from flexmail.services.platform.unit_of_work import unit_of_work
from flexmail.services.suppression.suppression_store import Actor, add_entries, hasher

log = logging.getLogger(__name__)

ACTIVE = (Status.PENDING, Status.SUBSCRIBED)


def erase_person(account_id: int, email: str, *, actor: Actor, meta: RequestMeta | None = None) -> dict:
    """Erase ``email`` from the account and answer with what was removed, per kind.

    Repeating it is harmless: nothing more is found, the erasure entry is reused and one
    more ``erased`` event says that it was asked again.
    """
    address = parse_address(email)
    meta = meta or RequestMeta()
    key = hasher().address(address.normalized)
    needles = tuple({address.normalized.casefold(), (address.ascii_email or address.normalized).casefold()})
    counts: Counter = Counter()
    with unit_of_work() as uow:
        session = uow.session
        if session.get_bind().dialect.name == "sqlite":
            # Overwrite freed cell content with zeros instead of leaving it in the page.
            session.execute(text("PRAGMA secure_delete = ON"))
        subs = session.scalars(
            select(Subscription).where(Subscription.account_id == account_id, Subscription.address_hash == key)
            .order_by(Subscription.id)
        ).all()
        for sub in subs:
            if sub.status in ACTIVE:
                record_event(session, sub, EventType.UNSUBSCRIBED, meta=meta, source="erasure",
                             details={"method": "erasure", "actor": "compliance"})
                sub.unsubscribed_at = meta.at
                counts["unsubscribed"] += 1
            if sub.email is not None:
                sub.email = None
                counts["addresses"] += 1
            if contains_address(sub.source, needles):
                sub.source = None
                counts["detail_values"] += 1
        sub_ids = [sub.id for sub in subs]
        if sub_ids:
            _scrub_events(session, sub_ids, needles, counts)
            counts["pending_mails"] += session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.account_id == account_id, OutboxMessage.address_hash == key,
                       OutboxMessage.status.in_(("pending", "failed")))
                .values(status="skipped", last_error="erased", body=None)
                .execution_options(synchronize_session=False)
            ).rowcount
            # A refused mail keeps its rendered bytes for a re-send; they hold the address.
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.account_id == account_id, OutboxMessage.address_hash == key,
                       OutboxMessage.body.is_not(None), OutboxMessage.status != "sending")
                .values(body=None).execution_options(synchronize_session=False))
        counts["addresses"] += session.execute(
            update(Suppression)
            .where(Suppression.account_id == account_id, Suppression.address_hash == key,
                   Suppression.email.is_not(None))
            .values(email=None).execution_options(synchronize_session=False)
        ).rowcount
        counts["notes"] += session.execute(
            update(SuppressionLift)
            .where(SuppressionLift.account_id == account_id, SuppressionLift.address_hash == key,
                   SuppressionLift.note.is_not(None))
            .values(note=None).execution_options(synchronize_session=False)
        ).rowcount
        added = add_entries(session, account_id=account_id, kind="address", items={key: None}, reason="erasure",
                            source="erasure", actor=actor, event_source="api", at=meta.at)
        suppression_id = added.new.get(key) or added.existing.get(key)
        for sub in subs:
            record_event(session, sub, EventType.ERASED, meta=RequestMeta(at=meta.at), source="api", applied=True,
                         details={"actor": actor.name, "suppression_id": suppression_id})
        webhooks.emit(session, account_id, "erasure.completed", at=meta.at, items=[(
            {"subscription_ids": [sub.id for sub in subs], "suppression_id": suppression_id}, key, None)])
        counts["webhook_deliveries"] += webhooks.forget_address(session, account_id, key)
        # Stored Idempotency-Key answers (kept 24 h) may name the address too.
        idempotency.forget_answers_naming(session, account_id, needles)
        audit.record(actor, "erasure", {"person": audit.address_ref(key), "subscriptions": len(subs),
                                        "suppression_id": suppression_id}, session=session, account_id=account_id)
        # After the commit (an idempotent request's included): SQLite cannot VACUUM inside it.
        uow.after_commit(purge_residue)
    log.info("erasure in account %s for address %s: %s", account_id, key[:12], dict(counts))
    return {
        "subscriptions": len(subs),
        "unsubscribed": counts["unsubscribed"],
        "addresses": counts["addresses"],
        "ip_addresses": counts["ip_addresses"],
        "user_agents": counts["user_agents"],
        "detail_values": counts["detail_values"],
        "notes": counts["notes"],
        "pending_mails": counts["pending_mails"],
        "suppression_id": suppression_id,
    }


def _scrub_events(session, sub_ids: list[int], needles: tuple[str, ...], counts: Counter) -> None:
    events = session.scalars(select(ConsentEvent).where(ConsentEvent.subscription_id.in_(sub_ids))).all()
    for event in events:
        if event.ip is not None:
            event.ip = None
            counts["ip_addresses"] += 1
        if event.user_agent is not None:
            event.user_agent = None
            counts["user_agents"] += 1
        cleaned, nulled = scrub(event.details or {}, needles)
        if nulled:
            # The chain holds the digest of the details as recorded: mark them redacted.
            event.details = cleaned
            event.redacted = sorted({*(event.redacted or []), "details"})
            counts["detail_values"] += nulled


def purge_residue() -> None:
    """SQLite keeps old page images in the WAL and unused bytes in pages: rewrite the file
    and truncate the WAL so the erased values are nowhere on disk. PostgreSQL: nothing."""
    engine = db.engine
    if engine.dialect.name != "sqlite":
        return
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("VACUUM")
        busy = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        cursor.close()
        if busy:
            log.warning("erasure: WAL checkpoint incomplete (readers active); it completes at the next checkpoint")
    except Exception as exc:  # the erasure is committed; the file is rewritten at the next one
        log.warning("erasure: could not rewrite the SQLite file (%s)", type(exc).__name__)
    finally:
        connection.close()
