from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class OutboxMessage(db.Model):
    """A mail we committed to send, written in the same transaction as the reason for it.

    The retry schedule lives on the row (``next_attempt_at``): only a due row is claimed,
    with an atomic UPDATE and a lease, so a message enqueued twice (a sweep racing the first
    enqueue) is still sent once, whatever the number of processes. The message is rendered
    once, at its first claim, into ``body`` (RFC 5322 bytes): every attempt sends the same
    bytes. ``body`` holds the recipient's address, so it is cleared once the row is done
    (sent, skipped) and by erasure.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_created_at", "status", "created_at"),
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_address_hash_created_at", "address_hash", "created_at"),
        Index("ix_outbox_account_id_created_at", "account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    #: What to send: "confirmation" (other kinds may share the table and its schedule).
    kind: Mapped[str] = mapped_column(String(32))
    #: Recipient's keyed hash, so flood limits count mails per address without the address.
    address_hash: Mapped[str] = mapped_column(String(64))
    #: Keyed hash of the signup IP that caused a confirmation mail (per-IP flood limit).
    signup_ip_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    #: pending -> sending -> sent | skipped | failed (attempts used up) | bounced (5xx refusal);
    #: sending -> pending again after a transient failure, with a later ``next_attempt_at``.
    #: ``held``: over the platform-wide cap per address, never sent and never shown to the
    #: account as such (``services.consent.flood``).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    #: The row may be claimed from this time on (the retry schedule).
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=now)
    #: When the sweeper last put the row on the queue (it does again only after a lease).
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: When ``body`` was rendered (the confirmation link's age counts from here).
    rendered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The message as rendered at the first claim, sent byte for byte at every attempt.
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: What the proof records when the mail leaves (subject, template version, digests).
    summary: Mapped[dict | None] = mapped_column(JSON)
    #: Why a send was skipped, failed or refused (never contains an address).
    last_error: Mapped[str | None] = mapped_column(Text)
    #: The relay's reply code and enhanced status of the last refusal or failure (5.1.1...).
    error_code: Mapped[int | None] = mapped_column()
    error_status: Mapped[str | None] = mapped_column(String(16))
