"""Which spooled opt-outs were applied: the marker that makes a replay apply nothing.

The row is written in the same transaction as the unsubscribe it stands for, so after a
crash anywhere in a drain the database itself says whether a spool line took effect.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class SpoolApplied(db.Model):
    """One spool line that took effect (or found nothing to do), by its random id."""

    __tablename__ = "spool_applied"

    #: The line's random id (hex); never the token.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: ``one-click``, ``page`` or ``mailto``.
    method: Mapped[str] = mapped_column(String(16))
    #: When the opt-out was received (and spooled): the time its consent event carries.
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
