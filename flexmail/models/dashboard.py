"""Sign-ins to the read-only dashboard: one row per session, so signing out ends it for good."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class DashboardSession(db.Model):
    """A dashboard session opened with an API key.

    The browser holds a random session secret inside Flask's signed cookie; this table holds
    only its SHA-256, never the secret nor the API key. Signing out sets ``ended_at``, so a
    copy of the cookie is refused afterwards, and a revoked key ends its sessions too (the
    key is read with the session on every request).
    """

    __tablename__ = "dashboard_sessions"

    #: Hex SHA-256 of the session secret held in the cookie.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    #: The session stops working at this time even without a sign-out.
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
