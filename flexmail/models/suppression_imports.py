from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class SuppressionImport(db.Model):
    """A suppression file being imported by a worker, with its progress.

    The uploaded file is the marketer's own data; it is kept here only until the job is
    done (``content`` is then set to NULL) so that the actor carries nothing but this id.
    Rejected lines are reported by line number and reason, never by their content.
    """

    __tablename__ = "suppression_imports"
    __table_args__ = (Index("ix_suppression_imports_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Whose job it is (also for a platform-wide import: the admin key's account).
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    #: ``account`` or ``global``.
    scope: Mapped[str] = mapped_column(String(8), default="account")
    reason: Mapped[str] = mapped_column(String(32))
    #: queued -> running -> done | failed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    #: The raw file until the job is done.
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(default=0)
    #: Data lines in the file (the header and blank lines excluded); known once parsed.
    total_rows: Mapped[int | None]
    #: How far the job got: physical line number of the last line handled (resume point).
    lines_done: Mapped[int] = mapped_column(default=0)
    rows_done: Mapped[int] = mapped_column(default=0)
    imported: Mapped[int] = mapped_column(default=0)
    #: Valid addresses that were already suppressed (or repeated in the file).
    existing: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    #: ``[{"line": n, "reason": "..."}]`` for the first rejected lines (capped).
    errors: Mapped[list] = mapped_column(JSON, default=list)
    created_by: Mapped[str | None] = mapped_column(String(64))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Exception class of the last failed attempt (never data from the file).
    last_error: Mapped[str | None] = mapped_column(Text)
