"""Webhooks: endpoints of an account, and the events they receive, written as outbox rows.

``emit`` (and ``on_consent_event``, called by ``proof.record_event`` for every consent
event) writes one ``WebhookDelivery`` per endpoint that asked for the event type, in the
caller's transaction, so an event and its webhooks commit or vanish together. After the
commit the ids are handed to the ``deliver_webhook`` actor; the sweeper picks up whatever
that missed (``webhook_delivery``).

Every event gets a number (``sequence``), the same at every endpoint that receives it:
the events of one subscription (and of one suppression entry) carry increasing numbers in
the order they happened, because each is written under that subscription's own row lock
and numbered there. The number comes from a database sequence, which no two writers wait
on: there is no counter shared by two subscribers (numbers may skip, they are not counts).
An endpoint's deliveries go out in number order. A delivery never carries more than the account holds: ids,
status and reasons, plus the address only where the account holds it (a subscription's or
a suppression entry's ``email``). Erasure drops the address from every delivery of the
person, sent or pending (``forget_address``), so neither a retry nor a replay carries it.
"""

from __future__ import annotations

import base64
import logging
import secrets
import socket
import time
import weakref

import dramatiq
from sqlalchemy import event as sa_event
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from flexmail.clock import now
from flexmail.domain.consent import EventType
from flexmail.domain.webhook_signatures import SECRET_PREFIX
from flexmail.domain.webhook_urls import RefusedUrl, check_addresses, parse_url
from flexmail.extensions import db
from flexmail.models import WebhookDelivery, WebhookEndpoint
from flexmail.models.webhooks import EVENT_SEQUENCE
from flexmail.services.platform.context import setting
from flexmail.services.platform.errors import NotFound, ValidationFailed
from flexmail.services.platform.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

EVENTS = (
    "subscription.requested", "subscription.confirmed", "subscription.unsubscribed", "subscription.cancelled",
    "suppression.added", "suppression.lifted", "erasure.completed",
)
#: Consent events that are webhook events (suppression and erasure are emitted by their services).
CONSENT_EVENTS = {
    EventType.SUBSCRIBE_REQUESTED: "subscription.requested",
    EventType.CONFIRMED: "subscription.confirmed",
    EventType.UNSUBSCRIBED: "subscription.unsubscribed",
    EventType.CANCELLED: "subscription.cancelled",
}
MAX_ENDPOINTS = 20
_PENDING_KEY = "webhook_deliveries_to_enqueue"
_ENDPOINTS_KEY = "webhook_endpoints_by_account"


# -- endpoints --------------------------------------------------------------------------------


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (empty when it does not resolve)."""
    try:
        return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
    except (OSError, UnicodeError, ValueError):
        return []


def check_url(url: str) -> tuple[str, str, int, list[str]]:
    """``(scheme, host, port, addresses)`` of a URL we may call now, or ``RefusedUrl``."""
    scheme, host, port = parse_url(url)
    addresses = resolve(host, port)
    check_addresses(addresses, allow_private=setting("WEBHOOKS_ALLOW_PRIVATE"))
    return scheme, host, port, addresses


def register_endpoint(account_id: int, *, url: str, events: list[str]) -> dict:
    """Register ``url`` for ``events``; the answer holds the signing secret, this once."""
    try:
        check_url(url)
    except RefusedUrl as exc:
        raise ValidationFailed("Invalid input.", fields={"url": [f"Refused: {exc}."]}) from None
    unknown = sorted(set(events) - set(EVENTS))
    if unknown or not events:
        raise ValidationFailed("Invalid input.", fields={"events": [f"One or more of {', '.join(EVENTS)}."]})
    with unit_of_work() as uow:
        count = len(uow.session.scalars(select(WebhookEndpoint.id).where(
            WebhookEndpoint.account_id == account_id, WebhookEndpoint.deleted_at.is_(None))).all())
        if count >= MAX_ENDPOINTS:
            raise ValidationFailed("Invalid input.", fields={"url": [f"At most {MAX_ENDPOINTS} endpoints."]})
        endpoint = WebhookEndpoint(account_id=account_id, url=url, events=sorted(set(events), key=EVENTS.index),
                                   secret=SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode(),
                                   created_at=now())
        uow.session.add(endpoint)
        uow.session.flush()
        _forget_endpoints(uow.session, account_id)
    log.info("webhook endpoint %s registered for account %s", endpoint.id, account_id)
    return {**endpoint_json(endpoint), "secret": endpoint.secret}


def endpoint_json(endpoint: WebhookEndpoint) -> dict:
    last = db.session.scalar(select(func.max(WebhookDelivery.sequence))
                             .where(WebhookDelivery.endpoint_id == endpoint.id)) if endpoint.id else None
    return {"id": endpoint.id, "url": endpoint.url, "events": list(endpoint.events),
            "created_at": endpoint.created_at, "last_sequence": last or 0}


def get_endpoint(account_id: int, endpoint_id: int) -> WebhookEndpoint:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.account_id != account_id or endpoint.deleted_at is not None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def list_endpoints(account_id: int) -> list[dict]:
    return [endpoint_json(e) for e in db.session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.account_id == account_id, WebhookEndpoint.deleted_at.is_(None))
        .order_by(WebhookEndpoint.id))]


def delete_endpoint(account_id: int, endpoint_id: int) -> dict:
    """Stop sending to an endpoint: no new deliveries, the pending ones are cancelled."""
    with unit_of_work() as uow:
        endpoint = get_endpoint(account_id, endpoint_id)
        endpoint.deleted_at = now()
        _forget_endpoints(uow.session, account_id)
        uow.session.execute(
            update(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id,
                                          WebhookDelivery.status == "pending")
            .values(status="cancelled", last_error="endpoint deleted").execution_options(synchronize_session=False))
        answer = endpoint_json(endpoint)
    log.info("webhook endpoint %s of account %s deleted", endpoint_id, account_id)
    return answer


# -- recording events (in the caller's transaction) -------------------------------------------


def on_consent_event(session, subscription, row) -> None:
    """The webhook of a consent event, if it is one (called by ``proof.record_event``)."""
    name = CONSENT_EVENTS.get(row.type)
    if name is None:
        return
    emit(session, subscription.account_id, name, at=row.at, items=[(
        {"subscription_id": subscription.id, "list_id": subscription.list_id,
         "status": subscription.status.value},
        subscription.address_hash, subscription.email)])


def on_consent_events(session, pairs: list) -> None:
    """``on_consent_event`` for many ``(subscription, event)`` pairs, one write per event type."""
    if not pairs or not takes_consent_events(session, pairs[0][0].account_id):
        return
    by_type: dict[str, list] = {}
    for subscription, row in pairs:
        name = CONSENT_EVENTS.get(row.type)
        if name is not None:
            by_type.setdefault(name, []).append((
                {"subscription_id": subscription.id, "list_id": subscription.list_id,
                 "status": subscription.status.value}, subscription.address_hash, subscription.email))
    for name, items in by_type.items():
        emit(session, pairs[0][0].account_id, name, at=pairs[0][1].at, items=items)


def takes_consent_events(session, account_id: int) -> bool:
    """Whether an endpoint of the account takes any ``subscription.*`` event (a bulk import of
    an account without webhooks then builds nothing for them)."""
    wanted = {name for _, events in _endpoints(session, account_id) for name in events}
    return not wanted.isdisjoint(CONSENT_EVENTS.values())


def emit(session, account_id: int | None, event_type: str, *, at, items: list[tuple[dict, str | None, str | None]]
         ) -> int:
    """Write a delivery of ``event_type`` for each item ``(data, address_hash, email)`` to
    every endpoint of the account that receives it. Returns how many rows were written."""
    if account_id is None or not items:
        return 0
    endpoint_ids = [pk for pk, events in _endpoints(session, account_id) if event_type in events]
    if not endpoint_ids:
        return 0
    numbers = next_numbers(session, len(items))
    written = 0
    created = now()
    for endpoint_id in endpoint_ids:
        rows = [{
            "account_id": account_id, "endpoint_id": endpoint_id, "message_id": "msg_" + secrets.token_hex(16),
            "sequence": number, "event_type": event_type, "occurred_at": at, "data": data,
            "address_hash": address_hash, "email": email, "status": "pending", "attempts": 0,
            "next_attempt_at": created, "created_at": created,
        } for number, (data, address_hash, email) in zip(numbers, items, strict=True)]
        ids = session.scalars(insert(WebhookDelivery).returning(WebhookDelivery.id), rows).all()
        # Deliveries of an endpoint go out in order: enqueue the first, each delivered one
        # enqueues the next (and the sweeper whatever is due).
        session.info.setdefault(_PENDING_KEY, []).append(min(ids))
        written += len(rows)
    return written


def next_numbers(session, count: int) -> list[int]:
    """``count`` new event numbers, increasing. PostgreSQL: ``nextval`` of one sequence,
    which never makes a transaction wait for another; SQLite: one more than the largest so
    far (SQLite runs one writer at a time, so this adds no wait either)."""
    if session.get_bind().dialect.name == "postgresql":
        return sorted(session.scalars(select(EVENT_SEQUENCE.next_value())
                                      .select_from(func.generate_series(1, count))).all())
    last = session.scalar(select(func.coalesce(func.max(WebhookDelivery.sequence), 0)))
    return list(range(last + 1, last + 1 + count))


#: Per database engine (so each app, and each test's app, has its own): account id ->
#: (monotonic expiry, endpoints). Consent writes then pay no query for a feature the
#: account does not use; see ``WEBHOOK_ENDPOINT_CACHE_SECONDS``.
_SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _endpoints(session, account_id: int) -> list[tuple[int, list]]:
    """The account's endpoints: read once per transaction (an import records many events),
    and kept per process for ``WEBHOOK_ENDPOINT_CACHE_SECONDS``. A change made in this
    process takes effect at once; one made in another process within that many seconds (a
    new endpoint there starts receiving a little later; a deleted one is skipped at delivery)."""
    cache = session.info.setdefault(_ENDPOINTS_KEY, {})
    if account_id in cache:
        return cache[account_id]
    ttl = setting("WEBHOOK_ENDPOINT_CACHE_SECONDS")
    shared = _SHARED.setdefault(session.get_bind(), {})
    hit = shared.get(account_id)
    if ttl > 0 and hit is not None and hit[0] > time.monotonic():
        cache[account_id] = hit[1]
        return hit[1]
    cache[account_id] = [(pk, events or []) for pk, events in session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.events).where(
            WebhookEndpoint.account_id == account_id, WebhookEndpoint.deleted_at.is_(None))
        .order_by(WebhookEndpoint.id))]
    shared[account_id] = (time.monotonic() + ttl, cache[account_id])
    return cache[account_id]


def _forget_endpoints(session, account_id: int) -> None:
    """This process sees an endpoint change at once."""
    _SHARED.get(session.get_bind(), {}).pop(account_id, None)


def forget_address(session, account_id: int, address_hash: str) -> int:
    """Erasure: no delivery of the account keeps the person's address (nor the answer a
    receiver gave to one). Returns how many deliveries held it."""
    return session.execute(
        update(WebhookDelivery).where(WebhookDelivery.account_id == account_id,
                                      WebhookDelivery.address_hash == address_hash)
        .values(email=None, response_body=None).execution_options(synchronize_session=False)).rowcount


def enqueue(delivery_id: int) -> None:
    dramatiq.get_broker().get_actor("deliver_webhook").send(delivery_id)


@sa_event.listens_for(Session, "after_commit")
def _enqueue_after_commit(session) -> None:
    session.info.pop(_ENDPOINTS_KEY, None)
    for delivery_id in session.info.pop(_PENDING_KEY, ()):
        try:
            enqueue(delivery_id)
        except Exception:
            log.exception("could not enqueue webhook delivery %s; the sweeper will", delivery_id)


@sa_event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session) -> None:
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_ENDPOINTS_KEY, None)
