"""Fixed-window counters for the confirmation-mail flood limits (``services.consent.flood``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class FloodCounter(db.Model):
    """How many confirmation mails one key caused in one fixed window.

    A key names what is counted, never in clear: ``aa:<account>:<address hash>``,
    ``ip:<account>:<ip hash>``, ``ac:<account>:<shard>`` (services.consent.flood), ``pa:<address hash>``
    (platform-wide).
    One row per key and window, incremented by an upsert that refuses to pass ``cap``,
    so the check costs one indexed row whatever the account's volume.
    """

    __tablename__ = "flood_counters"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: Start of the window (UTC midnight for daily limits, the full hour for hourly ones).
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    hits: Mapped[int] = mapped_column(default=0)
    #: The limit in force when the row was last counted (the upsert compares against it).
    cap: Mapped[int] = mapped_column(default=0)
