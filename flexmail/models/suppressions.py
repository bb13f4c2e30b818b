from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class Suppression(db.Model):
    """An address or a whole domain (by keyed hash) that must not be mailed by one account,
    or by anyone (``account_id`` NULL: platform-wide, written only with the ``admin`` scope).

    The plain address is kept beside the hash only while the account may still see it, so
    that a marketer recognises their entries; an erasure clears it and leaves the hash, which
    keeps blocking (see ``services.evidence.privacy``). Lifting an entry deletes the row and writes a
    ``SuppressionLift``.
    """

    __tablename__ = "suppressions"
    __table_args__ = (
        Index("ix_suppressions_address_hash_account_id", "address_hash", "account_id"),
        Index("ix_suppressions_account_id_id", "account_id", "id"),
        # Domain entries are few: bulk checks read them whole instead of sending a domain
        # key for every address.
        Index("ix_suppressions_domain_entries", "account_id", postgresql_where=text("kind = 'domain'"),
              sqlite_where=text("kind = 'domain'")),
        UniqueConstraint("account_id", "address_hash", "reason", name="uq_suppressions_account_address_reason"),
        CheckConstraint("kind IN ('address', 'domain')", name="kind_known"),
        CheckConstraint("kind = 'domain' OR domain IS NULL", name="domain_only_on_domain_entries"),
        CheckConstraint("kind = 'address' OR email IS NULL", name="email_only_on_address_entries"),
        CheckConstraint("reason != 'erasure' OR email IS NULL", name="erasure_keeps_no_address"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: NULL means platform-wide.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    #: ``address``: one address; ``domain``: every address at ``domain``.
    kind: Mapped[str] = mapped_column(String(8), default="address", server_default="address")
    #: Keyed HMAC of the case-folded normalised address, or of ``@`` + domain for a domain
    #: entry (``domain.matching``).
    address_hash: Mapped[str] = mapped_column(String(64))
    #: The normalised address while the account may see it; NULL after erasure (and for
    #: entries made where the address was not at hand).
    email: Mapped[str | None] = mapped_column(String(254))
    #: The normalised domain of a domain entry.
    domain: Mapped[str | None] = mapped_column(String(255))
    #: unsubscribed, hard_bounce, soft_bounce, complaint, opt_out, manual, erasure, not_me
    reason: Mapped[str] = mapped_column(String(32))
    #: Where it came from: api, import:<id>, inbound:dsn, inbound:arf, unsubscribe:<sub id>...
    source: Mapped[str | None] = mapped_column(String(200))
    #: Who made it: ``api-key:<prefix>``, ``recipient``, ``mail-system``, ``cli``...
    created_by: Mapped[str | None] = mapped_column(String(64))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    #: For entries made by a bounce or complaint: the report's summary (class, reason,
    #: status, diagnostic, report kind), so the marketer sees why.
    report: Mapped[dict | None] = mapped_column(JSON)


class SuppressionLift(db.Model):
    """The record of a lifted entry: what it was, who lifted it, when and why. No address."""

    __tablename__ = "suppression_lifts"
    __table_args__ = (Index("ix_suppression_lifts_account_id_address_hash", "account_id", "address_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The id the entry had (the row itself is gone).
    suppression_id: Mapped[int]
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(8))
    address_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(200))
    suppressed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    suppressed_by: Mapped[str | None] = mapped_column(String(64))
    lifted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    #: ``api-key:<prefix>``, or ``recipient`` when the person's own double opt-in lifted it.
    lifted_by: Mapped[str] = mapped_column(String(64))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    #: Why, in the lifter's words (erasure clears it: it may name the person).
    note: Mapped[str | None] = mapped_column(Text)
