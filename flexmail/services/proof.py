"""The consent record: appending events and reading a person's history back."""

from __future__ import annotations

from sqlalchemy import select

from flexmail.clock import iso
from flexmail.domain.consent import EventType, next_status
from flexmail.extensions import db
from flexmail.models import ConsentEvent, MailingList, Subscription
from flexmail.services import ledger
from flexmail.services.context import RequestMeta, hash_address, parse_address


def record_event(session, subscription: Subscription, event: EventType, *, meta: RequestMeta,
                 source: str | None, details: dict | None = None,
                 applied: bool = False) -> ConsentEvent:
    """Append one event and apply the state transition it implies (domain.consent).

    Raises ``TransitionError`` when the event is not allowed from the current state, so
    no event is ever written that contradicts the state. ``applied=True`` says the caller
    already made the transition with a guarded UPDATE (concurrent confirms).
    """
    if not applied:
        subscription.status = next_status(subscription.status, event)
    row = ConsentEvent(
        account_id=subscription.account_id, subscription_id=subscription.id, list_id=subscription.list_id,
        type=event, at=meta.at, ip=meta.ip, user_agent=meta.user_agent, source=source, details=details or {},
    )
    return ledger.append(session, row, email=subscription.email)


def event_json(event: ConsentEvent) -> dict:
    return {
        "id": event.id, "seq": event.seq, "type": event.type.value if event.type else None, "at": iso(event.at),
        "ip": event.ip, "user_agent": event.user_agent, "source": event.source, "details": event.details or {},
        "entry_hash": event.entry_hash, "prev_hash": event.prev_hash, "redacted": event.redacted or [],
        "tombstone": event.tombstoned_at is not None,
    }


def subscription_events(subscription_id: int) -> list[ConsentEvent]:
    return list(db.session.scalars(
        select(ConsentEvent).where(ConsentEvent.subscription_id == subscription_id)
        .order_by(ConsentEvent.id)
    ))


def consent_history(account_id: int, email: str, *, list_id: int | None = None) -> dict:
    """Every subscription of ``email`` in the account, each with its ordered events."""
    address = parse_address(email)
    query = (
        select(Subscription, MailingList)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.account_id == account_id,
               Subscription.address_hash == hash_address(address))
        .order_by(Subscription.id)
    )
    if list_id is not None:
        query = query.where(Subscription.list_id == list_id)
    subscriptions = []
    for sub, lst in db.session.execute(query):
        subscriptions.append({
            "id": sub.id, "list_id": lst.id, "list_name": lst.name, "status": sub.status.value,
            "email": sub.email, "consent_text": sub.consent_text, "source": sub.source,
            "created_at": iso(sub.created_at), "confirmed_at": iso(sub.confirmed_at),
            "unsubscribed_at": iso(sub.unsubscribed_at),
            "events": [event_json(e) for e in subscription_events(sub.id)],
        })
    return {"email": address.normalized, "subscriptions": subscriptions}
