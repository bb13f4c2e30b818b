from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class BouncePolicy(db.Model):
    """An account's own soft-bounce rule; without a row the platform defaults apply
    (``FLEXMAIL_BOUNCE_SOFT_COUNT``, ``FLEXMAIL_BOUNCE_SOFT_DAYS``)."""

    __tablename__ = "bounce_policies"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    #: Soft bounces (with no delivery in between) that suppress the address.
    soft_count: Mapped[int] = mapped_column()
    #: ... spread over at least this many days (a burst in one hour is one bad day).
    soft_days: Mapped[int] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class BounceRecord(db.Model):
    """One per-recipient result of a report, as decided: the soft-bounce count and the
    marketer's deliverability report read these. No address: its keyed hash."""

    __tablename__ = "bounce_records"
    __table_args__ = (
        Index("ix_bounce_records_account_address_at", "account_id", "address_hash", "at"),
        Index("ix_bounce_records_list_at", "list_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lists.id"))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    address_hash: Mapped[str] = mapped_column(String(64))
    #: hard, soft, sender, complaint, opt-out, ignore
    bounce_class: Mapped[str] = mapped_column(String(16))
    #: Sisimai's reason (``domain.bounces.vocabulary``), or ``delivered``.
    reason: Mapped[str] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(16))
    diagnostic: Mapped[str | None] = mapped_column(Text)
    #: dsn, arf, jmrp, bounce, smtp, esp:<provider>...
    source: Mapped[str] = mapped_column(String(32))
    #: What the policy did: suppressed, counted, reported, ignored, lifted.
    decision: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str | None] = mapped_column(String(255))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)


class HookEndpoint(db.Model):
    """An account's ESP event endpoint: ``/hooks/<provider>/<token>``. The token is stored
    hashed; ``secret`` is what verifies the provider's signature (Mailgun signing key,
    SendGrid verification public key PEM, Postmark ``user:password``; SES needs none)."""

    __tablename__ = "hook_endpoints"
    __table_args__ = (UniqueConstraint("token_hash", name="uq_hook_endpoints_token_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    #: SHA-256 of the URL token (shown once).
    token_hash: Mapped[str] = mapped_column(String(64))
    secret: Mapped[str | None] = mapped_column(Text)
    #: SES: the SNS topic ARNs accepted (JSON list; empty = any).
    options: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)


class HookEventSeen(db.Model):
    """Event ids (SNS MessageId, Mailgun token, SendGrid sg_event_id...) already taken: a
    replay is refused."""

    __tablename__ = "hook_events_seen"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_key", name="uq_hook_events_seen_endpoint_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("hook_endpoints.id"))
    event_key: Mapped[str] = mapped_column(String(128))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
