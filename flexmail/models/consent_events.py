from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.domain.consent import EventType
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class ConsentEvent(db.Model):
    """Append-only proof: one row per thing that happened to a subscription."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_subscription_id", "subscription_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"))
    type: Mapped[EventType] = mapped_column(
        Enum(EventType, name="consent_event_type", native_enum=False, length=32,
             values_callable=lambda e: [m.value for m in e])
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    #: IP of whoever caused the event (the person, the marketer's backend, a scanner).
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(Text)
    #: Channel: api, form, page, mail, one-click, mailto, system...
    source: Mapped[str | None] = mapped_column(String(200))
    #: Event-specific facts: consent text, message-id, body digest, method...
    details: Mapped[dict] = mapped_column(JSON, default=dict)
