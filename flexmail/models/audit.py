from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class AuditEntry(db.Model):
    """Who did what with proof and personal data: exports, access reports, erasures,
    lifted suppressions, retention runs. Parameters never hold personal data (an address
    appears only as a short prefix of its keyed hash)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: NULL for platform jobs (retention).
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    key_id: Mapped[int | None] = mapped_column()
    key_prefix: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
