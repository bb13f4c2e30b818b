"""Idempotency keys of POST and DELETE requests to the API."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class IdempotencyRecord(db.Model):
    """One ``Idempotency-Key`` of an account: claimed before the work, then its first answer.

    The unique constraint on (account, key) is what lets only one of two simultaneous
    requests with the same key do the work. Rows are purged by retention after 24 h.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("account_id", "key", name="uq_idempotency_keys_account_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    #: The client's key, as sent (at most 255 characters).
    key: Mapped[str] = mapped_column(String(255))
    #: Hex HMAC-SHA256 (keyed with the address pepper) of method, path with query and body:
    #: the same key with another request is 422.
    fingerprint: Mapped[str] = mapped_column(String(64))
    #: ``in_progress`` while the first request runs, then ``done``.
    state: Mapped[str] = mapped_column(String(16))
    #: Until then an ``in_progress`` claim belongs to the request that made it; after, the
    #: request is taken as lost (its process died) and a retry may run the work.
    locked_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    #: Replayed headers (Content-Type, Location) as a JSON object.
    response_headers: Mapped[dict | None] = mapped_column(JSON)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now, index=True)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
