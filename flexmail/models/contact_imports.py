from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class ContactImport(db.Model):
    """A contact file being imported into a list by a worker, with its progress.

    The file is kept, in parts (``ContactImportPart``), only until the job is done; batches
    commit with the progress, a retried job resumes after the last committed line, and
    rows are reported by line number and reason, never by content.
    """

    __tablename__ = "contact_imports"
    __table_args__ = (Index("ix_contact_imports_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id"))
    #: queued -> running -> done
    status: Mapped[str] = mapped_column(String(16), default="queued")
    size_bytes: Mapped[int] = mapped_column(default=0)
    total_rows: Mapped[int | None]
    lines_done: Mapped[int] = mapped_column(default=0)
    rows_done: Mapped[int] = mapped_column(default=0)
    #: Rows with proof, now subscribed.
    subscribed: Mapped[int] = mapped_column(default=0)
    #: Signup rows, now pending with a confirmation mail queued.
    pending: Mapped[int] = mapped_column(default=0)
    #: Already on the list (in any state: a later choice of the person wins), or repeated.
    existing: Mapped[int] = mapped_column(default=0)
    #: Suppressed for the account or platform-wide: skipped whatever proof they carry.
    suppressed: Mapped[int] = mapped_column(default=0)
    #: Refused rows (no proof, bad values, formulas) and signups over a flood limit.
    rejected: Mapped[int] = mapped_column(default=0)
    #: ``[{"line", "outcome": "rejected"|"suppressed"|"deferred", "reason"}]`` (capped).
    results: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class ContactImportPart(db.Model):
    """One part (up to ``services.marketer.contact_imports.PART_BYTES``) of an uploaded contact file.

    The upload is stored in bounded parts so that neither the request, the job row nor the
    worker ever holds the whole file in memory; the worker reads the parts in order as one
    stream, and they are deleted when the job is done.
    """

    __tablename__ = "contact_import_parts"

    import_id: Mapped[int] = mapped_column(ForeignKey("contact_imports.id"), primary_key=True)
    part: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)
