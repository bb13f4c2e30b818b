from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, Sequence, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime

#: Event numbers (``WebhookDelivery.sequence``) on PostgreSQL: ``nextval`` takes no lock that
#: two writers wait on, unlike a counter row (SQLite serialises writers anyway, and counts on
#: from the largest number in ``webhook_deliveries``).
EVENT_SEQUENCE = Sequence("webhook_event_seq", metadata=db.Model.metadata)


class WebhookEndpoint(db.Model):
    """A URL of an account that receives signed consent events (``services.delivery.webhooks``)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    url: Mapped[str] = mapped_column(String(2000))
    #: Event types it receives (``domain``-level names such as ``subscription.confirmed``).
    events: Mapped[list] = mapped_column(JSON)
    #: ``whsec_<base64>``: the HMAC key; shown to the marketer once, at registration.
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    #: Set by DELETE: no new deliveries, pending ones are cancelled.
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class WebhookDelivery(db.Model):
    """One event for one endpoint: the webhook outbox row and, afterwards, its log entry.

    Written in the transaction of the event it reports. The address (``email``) is kept
    apart from ``data`` so that erasure can drop it from every delivery, sent or not; it is
    set only where the account held the address when the event happened.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_id_sequence", "endpoint_id", "sequence", unique=True),
        Index("ix_webhook_deliveries_sequence", "sequence"),
        Index("ix_webhook_deliveries_account_id_address_hash", "account_id", "address_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    #: ``webhook-id``: the same on every attempt and replay.
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    #: The event's number: increasing in the order events happen to one subscription (and to
    #: one suppression entry); the same for every endpoint that receives the event; not
    #: gapless (``services.delivery.webhooks.next_numbers``).
    sequence: Mapped[int] = mapped_column()
    event_type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: The event's facts: ids, status, reason... never an address, IP or user agent.
    data: Mapped[dict] = mapped_column(JSON)
    address_hash: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(Text)
    #: pending -> sending -> delivered | failed | cancelled
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The receiver's last HTTP status, the first bytes of its answer, or why no answer came.
    response_status: Mapped[int | None] = mapped_column()
    response_body: Mapped[str | None] = mapped_column(String(300))
    last_error: Mapped[str | None] = mapped_column(String(200))
