from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class MailingList(db.Model):
    """A list people consent to; its sender and consent wording go into every proof."""

    __tablename__ = "lists"
    __table_args__ = (CheckConstraint("forward_mode IN ('server', 'client')", name="forward_mode"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    sender_name: Mapped[str] = mapped_column(String(200))
    #: Normalised sender address; the From of every mail about this list.
    sender_email: Mapped[str] = mapped_column(String(254))
    #: Default consent wording shown at signup when the caller gives none.
    consent_text: Mapped[str] = mapped_column(Text)
    #: Language of the pages and mails: en, nl, fr or de (a person may switch on a page).
    language: Mapped[str] = mapped_column(String(16), default="en")
    #: Where the confirmation page sends people after success, if the marketer wants.
    confirm_redirect_url: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    # Branding and identity, shown on every page and in every mail's footer (CASL, ePrivacy:
    # name the sender and give a way to reach it). All optional.
    #: ``#rrggbb`` with at least 4.5:1 contrast against white (buttons, links, borders).
    accent_color: Mapped[str | None] = mapped_column(String(7))
    postal_address: Mapped[str | None] = mapped_column(Text)
    contact_email: Mapped[str | None] = mapped_column(String(254))
    privacy_url: Mapped[str | None] = mapped_column(String(2000))
    #: How subscribers forward a campaign to friends: ``server`` (we send the mail; the friends'
    #: addresses pass through us, unstored) or ``client`` (the page opens the forwarder's own mail
    #: program with a prepared message; no friend's address ever reaches us). Standards H2.
    forward_mode: Mapped[str] = mapped_column(String(8), default="server", server_default="server")
    logo: Mapped[ListLogo | None] = relationship(lazy="select", uselist=False, viewonly=True)

    @property
    def logo_path(self) -> str | None:
        """Our URL of the stored logo, versioned by its hash; ``None`` without a logo."""
        return logo_path(self.id, self.logo.sha256) if self.logo is not None else None


def logo_path(list_id: int, sha256: str) -> str:
    """The served URL of a list's logo; the hash in it changes with the image (long caching)."""
    return f"/brand/{list_id}/logo?v={sha256[:16]}"


class ListLogo(db.Model):
    """A list's logo, fetched once from the marketer's https URL and served by us.

    Pages and mails link our ``/brand/<list_id>/logo``, never the marketer's URL, so a token
    page makes no request to a third party. Kept apart from ``lists`` so that loading a list
    on a hot path does not load the image.
    """

    __tablename__ = "list_logos"

    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True)
    #: Where it was fetched from (https only), for the marketer's reference.
    source_url: Mapped[str] = mapped_column(String(2000))
    content_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    #: SHA-256 of ``data``: versions the served URL, so caches never show an old logo.
    sha256: Mapped[str] = mapped_column(String(64))
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
