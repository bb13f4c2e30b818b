from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class MailingList(db.Model):
    """A list people consent to; its sender and consent wording go into every proof."""

    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    sender_name: Mapped[str] = mapped_column(String(200))
    #: Normalised sender address; the From of every mail about this list.
    sender_email: Mapped[str] = mapped_column(String(254))
    #: Default consent wording shown at signup when the caller gives none.
    consent_text: Mapped[str] = mapped_column(Text)
    #: BCP 47 tag of the pages and mails (only "en" and "de" templates exist today).
    language: Mapped[str] = mapped_column(String(16), default="en")
    #: Where the confirmation page sends people after success, if the marketer wants.
    confirm_redirect_url: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
