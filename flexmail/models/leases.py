from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class Lease(db.Model):
    """A named role that one process holds at a time (the outbox sweeper), until it lapses.

    A row per role; a process takes it with a guarded UPDATE when it is free or lapsed,
    and renews it while it runs. Works the same on SQLite and PostgreSQL.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Who holds it: host, pid and a random part, for operators.
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
