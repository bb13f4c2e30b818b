from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class OutboxMessage(db.Model):
    """A mail we committed to send, written in the same transaction as the reason for it.

    The actor claims a row with an atomic UPDATE before sending, so a message enqueued
    twice (a sweep racing the first enqueue) is still sent once. No address is kept here:
    the recipient is read from the subscription at send time.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_created_at", "status", "created_at"),
        Index("ix_outbox_address_hash_created_at", "address_hash", "created_at"),
        Index("ix_outbox_account_id_created_at", "account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    #: What to send: "confirmation".
    kind: Mapped[str] = mapped_column(String(32))
    #: Recipient's keyed hash, so flood limits count mails per address without the address.
    address_hash: Mapped[str] = mapped_column(String(64))
    #: Keyed hash of the signup IP that caused a confirmation mail (per-IP flood limit).
    signup_ip_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    #: pending -> sending -> sent | skipped | failed; ``held``: over the platform-wide cap
    #: per address, never sent and never shown to the account as such (``services.flood``).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Why a send was skipped or failed (never contains an address).
    last_error: Mapped[str | None] = mapped_column(Text)
