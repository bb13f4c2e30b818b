from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class Account(db.Model):
    """A marketer: the tenant boundary. Every row below belongs to exactly one account."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Display name chosen by the operator.
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    #: The controller of the personal data (GDPR art. 4(7)), named on consent certificates.
    legal_name: Mapped[str | None] = mapped_column(String(200))
    postal_address: Mapped[str | None] = mapped_column(String(500))

    keys: Mapped[list[ApiKey]] = relationship(back_populates="account")


class ApiKey(db.Model):
    """An API key, stored as SHA-256 of the secret (keys are 256-bit random, so no KDF)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    #: The first characters of the key, shown in audit lines to say which key acted.
    prefix: Mapped[str] = mapped_column(String(16))
    #: Hex SHA-256 of the whole key; the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: Comma-separated scopes: marketer, compliance, admin.
    scopes: Mapped[str] = mapped_column(String(200))
    #: What the key is for, chosen by whoever made it ("shop backend"); never a secret.
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    #: From this time on the key no longer authenticates (a time in the future is the grace
    #: period of a rotation).
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Last successful authentication, written at most once a minute per key and process.
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The key this one replaced by a rotation.
    rotated_from_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))

    account: Mapped[Account] = relationship(back_populates="keys")

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(s for s in self.scopes.split(",") if s)
