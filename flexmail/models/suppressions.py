from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class Suppression(db.Model):
    """An address (by keyed hash) that must not be mailed by one account, or by anyone."""

    __tablename__ = "suppressions"
    __table_args__ = (Index("ix_suppressions_address_hash_account_id", "address_hash", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: NULL means platform-wide.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    address_hash: Mapped[str] = mapped_column(String(64))
    #: unsubscribed, hard_bounce, complaint, manual, erasure, not_me
    reason: Mapped[str] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
