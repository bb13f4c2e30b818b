"""Sending webhook deliveries: claim, sign, POST, record; retries on the row's schedule.

A delivery is claimed with a guarded UPDATE (so one enqueued twice is sent once) and only
when no earlier delivery of its endpoint is still pending: an endpoint receives its events
in ``sequence`` order. A failure (no 2xx, a timeout, a refused address) schedules the next
attempt on the row with the outbox's backoff (``domain.retry``): 30 s doubling to 1 h,
``WEBHOOK_MAX_ATTEMPTS`` attempts, more than 24 h in all. The sweeper enqueues due rows.

SSRF: the host is resolved at every attempt and every address checked (DNS rebinding);
the connection goes to the address that was checked, redirects are not followed,
timeouts are short, and only the first few hundred bytes of an answer are kept.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import random
import socket
import ssl
import threading
from urllib.parse import urlsplit

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.orm import aliased

from flexmail.clock import iso, now
from flexmail.domain import webhook_signatures
from flexmail.domain.retry import backoff_seconds
from flexmail.domain.webhook_urls import RefusedUrl
from flexmail.extensions import db
from flexmail.models import WebhookDelivery, WebhookEndpoint
from flexmail.services.delivery.webhooks import check_url, enqueue, get_endpoint
from flexmail.services.platform import leases
from flexmail.services.platform.context import setting
from flexmail.services.platform.errors import NotFound, ValidationFailed
from flexmail.services.platform.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

#: One webhook sweeper per installation holds this lease (``run_sweeper``).
SWEEPER_LEASE = "webhook-sweeper"

KEPT_ANSWER_BYTES = 300
MAX_REPLAY = 10_000
OPEN = ("pending", "sending")
#: Every key a delivery's ``data`` may have (the log lists them all, null where not set).
DATA_KEYS = ("subscription_id", "list_id", "status", "suppression_id", "kind", "reason", "source", "domain",
             "subscription_ids")


def _is_head():
    """No earlier delivery of the same endpoint is still open."""
    earlier = aliased(WebhookDelivery)
    return ~exists().where(earlier.endpoint_id == WebhookDelivery.endpoint_id,
                           earlier.sequence < WebhookDelivery.sequence, earlier.status.in_(OPEN))


def _claim(delivery_id: int) -> bool:
    at = now()
    lease = at + dt.timedelta(seconds=setting("OUTBOX_LEASE_SECONDS"))
    with unit_of_work() as uow:
        claimed = uow.session.execute(
            update(WebhookDelivery).where(
                WebhookDelivery.id == delivery_id,
                or_(and_(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= at),
                    and_(WebhookDelivery.status == "sending", WebhookDelivery.claimed_until < at)),
                _is_head())
            .values(status="sending", claimed_until=lease, attempts=WebhookDelivery.attempts + 1,
                    last_attempt_at=at)
            .execution_options(synchronize_session=False)).rowcount
    return bool(claimed)


def body_of(delivery: WebhookDelivery) -> bytes:
    """The JSON a receiver gets (built at each attempt: an erased address is gone from it)."""
    return json.dumps({
        "id": delivery.message_id, "type": delivery.event_type, "sequence": delivery.sequence,
        "occurred_at": iso(delivery.occurred_at), "account_id": delivery.account_id,
        "data": {**(delivery.data or {}), "email": delivery.email},
    }, separators=(",", ":"), sort_keys=True).encode()


def deliver(delivery_id: int) -> str:
    """One attempt (the actor's body). Returns what happened, for tests and logs."""
    if not _claim(delivery_id):
        return "not-claimed"
    delivery = db.session.get(WebhookDelivery, delivery_id)
    db.session.refresh(delivery)
    endpoint = db.session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint.deleted_at is not None:
        return _finish(delivery_id, "cancelled", error="endpoint deleted")
    body = body_of(delivery)
    timestamp = int(now().timestamp())
    headers = {
        "Content-Type": "application/json", "User-Agent": "Flexmail-Webhooks/1",
        "webhook-id": delivery.message_id, "webhook-timestamp": str(timestamp),
        "webhook-signature": webhook_signatures.sign(endpoint.secret, delivery.message_id, timestamp, body),
    }
    status, answer, error = None, None, None
    try:
        status, answer = post(endpoint.url, body, headers, timeout=setting("WEBHOOK_TIMEOUT_SECONDS"))
    except RefusedUrl as exc:
        error = f"refused: {exc}"
    except (OSError, http.client.HTTPException) as exc:
        error = type(exc).__name__
    if status is not None and 200 <= status < 300:
        outcome = _finish(delivery_id, "delivered", code=status, answer=answer)
    else:
        error = error or f"HTTP {status}"
        attempts = delivery.attempts
        if attempts >= setting("WEBHOOK_MAX_ATTEMPTS"):
            outcome = _finish(delivery_id, "failed", code=status, answer=answer, error=error)
        else:
            wait = backoff_seconds(attempts, base=setting("WEBHOOK_RETRY_BASE"), cap=setting("WEBHOOK_RETRY_CAP"),
                                   rand=random.random())  # noqa: S311 (jitter, not a secret)
            _finish(delivery_id, "pending", code=status, answer=answer, error=error,
                    next_at=now() + dt.timedelta(seconds=wait))
            outcome = "retry"
    log.info("webhook delivery %s (endpoint %s, attempt %s): %s", delivery_id, endpoint.id, delivery.attempts,
             outcome if error is None else f"{outcome} ({error})")
    return outcome


def _finish(delivery_id: int, status: str, *, code: int | None = None, answer: str | None = None,
            error: str | None = None, next_at: dt.datetime | None = None) -> str:
    values = {"status": status, "claimed_until": None, "response_status": code,
              "response_body": answer, "last_error": error}
    if next_at is not None:
        values["next_attempt_at"] = next_at
    if status == "delivered":
        values["delivered_at"] = now()
    with unit_of_work() as uow:
        uow.session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values)
                            .execution_options(synchronize_session=False))
        endpoint_id = uow.session.get(WebhookDelivery, delivery_id).endpoint_id
    if status in ("delivered", "failed", "cancelled"):
        _enqueue_next(endpoint_id)
    return status


def _enqueue_next(endpoint_id: int) -> None:
    """The endpoint's next open delivery, if it is due (else the sweeper sends it when it is)."""
    row = db.session.execute(
        select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
        .order_by(WebhookDelivery.sequence).limit(1)).first()
    db.session.rollback()
    if row is not None and row.next_attempt_at <= now():
        enqueue(row.id)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address we checked, not to whatever the name resolves to next."""

    def __init__(self, host, port, *, ip, timeout):
        super().__init__(host, port, timeout=timeout)
        self._ip = ip

    def connect(self):
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, *, ip, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._ip = ip

    def connect(self):
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict, *, timeout: float) -> tuple[int, str]:
    """POST once to a URL whose addresses pass the SSRF check; no redirects are followed.
    Returns the status and the first ``KEPT_ANSWER_BYTES`` of the answer."""
    scheme, host, port, addresses = check_url(url)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    conn = kind(host, port, ip=addresses[0], timeout=timeout)
    try:
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read(KEPT_ANSWER_BYTES).decode("utf-8", "replace")
        return response.status, answer
    finally:
        conn.close()


def sweep() -> int:
    """Enqueue due deliveries that head their endpoint's queue, free lapsed claims, and drop
    finished deliveries older than ``WEBHOOK_LOG_DAYS`` from the log."""
    at = now()
    with unit_of_work() as uow:
        uow.session.execute(
            delete(WebhookDelivery).where(
                WebhookDelivery.status.not_in(OPEN),
                WebhookDelivery.created_at < at - dt.timedelta(days=setting("WEBHOOK_LOG_DAYS")))
            .execution_options(synchronize_session=False))
        uow.session.execute(
            update(WebhookDelivery).where(WebhookDelivery.status == "sending", WebhookDelivery.claimed_until < at)
            .values(status="pending", claimed_until=None).execution_options(synchronize_session=False))
        ids = list(uow.session.scalars(
            select(WebhookDelivery.id).where(WebhookDelivery.status == "pending",
                                             WebhookDelivery.next_attempt_at <= at, _is_head())
            .order_by(WebhookDelivery.next_attempt_at).limit(1000)))
    for delivery_id in ids:
        enqueue(delivery_id)
    if ids:
        log.info("webhook sweep enqueued %d delivery(ies)", len(ids))
    return len(ids)


def run_sweeper(app, interval: float, stop: threading.Event) -> None:
    """Sweep every ``interval`` seconds while holding the webhook sweeper lease: one sweeper per
    installation, as for the outbox (``platform.leases.run_while_holding``)."""
    leases.run_while_holding(app, SWEEPER_LEASE, interval, stop, lambda: sweep())


# -- the log and replays ----------------------------------------------------------------------


def delivery_json(d: WebhookDelivery) -> dict:
    return {
        "id": d.id, "message_id": d.message_id, "sequence": d.sequence, "event_type": d.event_type,
        "occurred_at": d.occurred_at, "status": d.status, "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at if d.status == "pending" else None,
        "last_attempt_at": d.last_attempt_at, "delivered_at": d.delivered_at,
        "response_status": d.response_status, "response_body": d.response_body, "last_error": d.last_error,
        "data": {**dict.fromkeys(DATA_KEYS), **(d.data or {}), "email": d.email},
    }


def list_deliveries(account_id: int, endpoint_id: int, *, status: str | None, after: int | None,
                    limit: int) -> dict:
    get_endpoint(account_id, endpoint_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    if after:
        query = query.where(WebhookDelivery.id > after)
    items = [delivery_json(d) for d in db.session.scalars(query.order_by(WebhookDelivery.id).limit(limit))]
    return {"items": items, "next_cursor": items[-1]["id"] if len(items) == limit else None}


def replay(account_id: int, endpoint_id: int, *, delivery_id: int | None = None,
           since: dt.datetime | None = None) -> dict:
    """Send finished deliveries again (same ``webhook-id`` and ``sequence``, so a receiver can
    tell a replay from news): one by id, or all created since a time (up to 10,000)."""
    if (delivery_id is None) == (since is None):
        raise ValidationFailed("Invalid input.", fields={"delivery_id": ["Give delivery_id or since."]})
    with unit_of_work() as uow:
        get_endpoint(account_id, endpoint_id)
        query = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint_id,
                                                 WebhookDelivery.status.not_in(OPEN))
        if delivery_id is not None:
            if uow.session.scalar(select(WebhookDelivery.id).where(
                    WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.id == delivery_id)) is None:
                raise NotFound("No such delivery of this endpoint.")
            query = query.where(WebhookDelivery.id == delivery_id)
        else:
            query = query.where(WebhookDelivery.created_at >= since)
        ids = list(uow.session.scalars(query.order_by(WebhookDelivery.sequence).limit(MAX_REPLAY)))
        if ids:
            uow.session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id.in_(ids))
                .values(status="pending", attempts=0, next_attempt_at=now(), claimed_until=None, last_error=None)
                .execution_options(synchronize_session=False))
            uow.after_commit(lambda: enqueue(ids[0]))
    log.info("webhook endpoint %s: %d delivery(ies) replayed", endpoint_id, len(ids))
    return {"replayed": len(ids), "delivery_ids": ids}
