"""The consent record: appending events and reading a person's history back."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import select

from flexmail.clock import iso, now
from flexmail.domain.consent import EventType, next_status
from flexmail.extensions import db
from flexmail.models import ConsentEvent, MailingList, OutboxMessage, Subscription
from flexmail.services.delivery import webhooks
from flexmail.services.evidence import audit, ledger, sealing, signing
from flexmail.services.marketer import accounts
from flexmail.services.marketer.accounts import Principal
from flexmail.services.platform.context import RequestMeta, hash_address, parse_address, setting


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
    row = ledger.append(session, row, email=subscription.email)
    webhooks.on_consent_event(session, subscription, row)  # in this transaction (webhook outbox)
    return row


def record_applied(session, subscription, event: EventType, *, meta: RequestMeta, source: str | None,
                   details: dict | None = None):
    """``record_event`` for a transition the caller already made with a guarded UPDATE, for
    the hot paths: the event goes out as one Core INSERT on the session's connection (same
    transaction) instead of an ORM object flushed at commit."""
    row = ledger.append_row(
        session.connection(), email=subscription.email, account_id=subscription.account_id,
        subscription_id=subscription.id, list_id=subscription.list_id, type=event, at=meta.at, ip=meta.ip,
        user_agent=meta.user_agent, source=source, details=details or {})
    webhooks.on_consent_event(session, subscription, row)  # in this transaction (webhook outbox)
    return row


def record_many(session, items: list[tuple], *, source: str) -> None:
    """Append events whose transitions the caller already made (a bulk import), in order,
    in one bulk insert; their webhooks as ``record_event``'s. ``items`` are
    ``(subscription, EventType, RequestMeta, details)``; a subscription may be any object
    with the model's attribute names (``rows.SubscriptionRow``)."""
    rows = ledger.append_many(session, [({
        "account_id": sub.account_id, "subscription_id": sub.id, "list_id": sub.list_id, "type": event,
        "at": meta.at, "ip": meta.ip, "user_agent": meta.user_agent, "source": source, "details": details or {},
    }, sub.email) for sub, event, meta, details in items])
    if rows and webhooks.takes_consent_events(session, rows[0]["account_id"]):
        webhooks.on_consent_events(session, [(sub, SimpleNamespace(**row))
                                             for (sub, *_), row in zip(items, rows, strict=True)])


def event_json(event: ConsentEvent, inclusion_proof: list[str] | None = None) -> dict:
    """An event with its place in the tree (``seq`` = leaf index + 1, NULL until sealed) and
    its RFC 9162 audit path against the head given with the proof."""
    return {
        "id": event.id, "seq": event.seq, "leaf_index": event.seq - 1 if event.seq else None,
        "type": event.type.value if event.type else None, "at": iso(event.at),
        "ip": event.ip, "user_agent": event.user_agent, "source": event.source, "details": event.details or {},
        "content_hash": event.content_hash, "inclusion_proof": inclusion_proof,
        "entry_hash": event.entry_hash, "prev_hash": event.prev_hash, "redacted": event.redacted or [],
        "tombstone": event.tombstoned_at is not None,
    }


def subscription_events(subscription_id: int) -> list[ConsentEvent]:
    return list(db.session.scalars(
        select(ConsentEvent).where(ConsentEvent.subscription_id == subscription_id)
        .order_by(ConsentEvent.id)
    ))


def consent_history(account_id: int, email: str, *, list_id: int | None = None,
                    principal: Principal | None = None) -> dict:
    """Every subscription of ``email`` in the account with its ordered events, the
    confirmation mails as sent, and the verification of those events: each one's hashes and
    commitments, and its inclusion proof against the latest signed tree head (the account's
    events are sealed first, so the head covers them; any written meanwhile are listed as
    ``unsealed``).

    Reading proof is a compliance action: it is written to the audit log.
    """
    address = parse_address(email)
    sealing.seal(account_id)
    addr_hash = hash_address(address)
    query = (
        select(Subscription, MailingList)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.account_id == account_id, Subscription.address_hash == addr_hash)
        .order_by(Subscription.id)
    )
    if list_id is not None:
        query = query.where(Subscription.list_id == list_id)
    subscriptions, all_events, emails = [], [], {}
    rows = list(db.session.execute(query))
    for sub, _ in rows:
        all_events += subscription_events(sub.id)
        emails[sub.id] = sub.email
    head = ledger.head(account_id)
    check = ledger.verify_events(all_events, emails, head)
    proofs = check.pop("proofs")
    for sub, lst in rows:
        events = [e for e in all_events if e.subscription_id == sub.id]
        subscriptions.append({
            "id": sub.id, "list_id": lst.id, "list_name": lst.name, "status": sub.status.value,
            "email": sub.email, "consent_text": sub.consent_text, "source": sub.source,
            "sender": {"name": lst.sender_name, "email": lst.sender_email},
            "created_at": iso(sub.created_at), "confirmed_at": iso(sub.confirmed_at),
            "unsubscribed_at": iso(sub.unsubscribed_at),
            "confirmation_mails": _confirmation_mails(sub.id, events),
            "events": [event_json(e, proofs.get(e.id)) for e in events],
        })
    if principal is not None:
        audit.record(principal, "proof.read", {"person": audit.address_ref(addr_hash), "list_id": list_id,
                                               "subscriptions": len(subscriptions)})
    return {
        "email": address.normalized,
        "account_id": account_id,
        "subscriptions": subscriptions,
        "chain": {**check, "head": head},
        "controller": accounts.controller(account_id),
        "verification": {"public_key": signing.public_key(), "key_id": signing.public_key()[:16],
                         "public_key_url": f"{setting('PUBLIC_URL')}/proof/key"},
        "generated_at": iso(now()),
    }


def _confirmation_mails(subscription_id: int, events: list[ConsentEvent]) -> list[dict]:
    """Each confirmation mail: what the outbox knows, plus what was recorded when it left."""
    sent = {e.details.get("outbox_id"): e.details for e in events
            if e.type == EventType.CONFIRMATION_SENT and e.details}
    mails = []
    for row in db.session.scalars(select(OutboxMessage).where(OutboxMessage.subscription_id == subscription_id)
                                  .order_by(OutboxMessage.id)):
        details = sent.get(row.id, {})
        mails.append({
            "message_id": row.message_id,
            # A mail held by the platform-wide cap must look queued to the account (services.consent.flood).
            "status": "pending" if row.status == "held" else row.status, "queued_at": iso(row.created_at),
            "sent_at": iso(row.sent_at), "subject": details.get("subject"),
            "template_version": details.get("template_version"), "text_sha256": details.get("text_sha256"),
            "html_sha256": details.get("html_sha256"),
        })
    return mails
