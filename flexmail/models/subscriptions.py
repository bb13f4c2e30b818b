from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.domain.consent import Status
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class Subscription(db.Model):
    """One address on one list. The state is derived by consent events (see domain.consent)."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("list_id", "address_hash", name="uq_subscriptions_list_address"),
        CheckConstraint(
            "status != 'subscribed' OR confirmed_at IS NOT NULL", name="subscribed_has_confirmation"
        ),
        Index("ix_subscriptions_account_address", "account_id", "address_hash"),
        Index("ix_subscriptions_list_status_id", "list_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id"))
    #: The normalised address as validated (local-part case kept); this is what we mail.
    email: Mapped[str | None] = mapped_column(String(254))
    #: Keyed HMAC of the case-folded address: dedupe and suppression match on it.
    address_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[Status] = mapped_column(
        Enum(Status, name="subscription_status", native_enum=False, length=16,
             values_callable=lambda e: [m.value for m in e]),
        default=Status.PENDING,
    )
    #: The consent wording the person saw when they last asked to subscribe.
    consent_text: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(16), default="en")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    #: Start of the current double opt-in round: confirmation mails older than this
    #: (from a round that ended in unsubscribe or cancel) can no longer confirm.
    pending_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)
