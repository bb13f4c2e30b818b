from __future__ import annotations

import datetime as dt

from sqlalchemy import DDL, JSON, Enum, ForeignKey, Index, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.domain.consent import EventType
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class ConsentEvent(db.Model):
    """Append-only proof: one row per thing that happened to a subscription.

    Rows form a hash chain per account (domain.ledger). The database itself refuses
    DELETE and any UPDATE except redaction: personal fields and details may change (erasure,
    IP truncation) and content fields may only become NULL (a retention tombstone); the
    chain columns never change. See ``PG_GUARD`` and ``SQLITE_GUARDS``.
    """

    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_events_subscription_id", "subscription_id", "id"),
        UniqueConstraint("account_id", "seq", name="uq_consent_events_account_seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    #: Position in the account's chain, from 1.
    seq: Mapped[int] = mapped_column()
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    list_id: Mapped[int | None] = mapped_column()
    type: Mapped[EventType | None] = mapped_column(
        Enum(EventType, name="consent_event_type", native_enum=False, length=32,
             values_callable=lambda e: [m.value for m in e])
    )
    at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=now)
    #: IP of whoever caused the event (the person, the marketer's backend, a scanner).
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(Text)
    #: Channel: api, form, page, mail, one-click, mailto, system...
    source: Mapped[str | None] = mapped_column(String(200))
    #: Event-specific facts: consent text, message-id, body digest, method... Checked
    #: against ``details_hash``; erasure may scrub a value that names the person (and then
    #: lists "details" in ``redacted``) without breaking the chain.
    details: Mapped[dict | None] = mapped_column(JSON, default=dict)
    #: SHA-256 of the canonical details as recorded; this, not the details, is chained.
    details_hash: Mapped[str | None] = mapped_column(String(64))
    #: Random per event; with the pepper it makes the personal-field commitments.
    salt: Mapped[str | None] = mapped_column(String(32))
    #: HMAC commitments of email (case-folded), ip and user_agent as they were recorded.
    commitments: Mapped[dict | None] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))
    #: Personal fields that were redacted or truncated after recording (not hashed).
    redacted: Mapped[list | None] = mapped_column(JSON)
    #: Set when retention deleted the content and only the chain skeleton remains.
    tombstoned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class LedgerHead(db.Model):
    """The latest entry of each account's chain; locked while an event is appended."""

    __tablename__ = "ledger_heads"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    entry_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


_CHAIN = ("id", "account_id", "seq", "prev_hash", "content_hash", "entry_hash")
_CONTENT = ("subscription_id", "list_id", "type", "at", "source", "details_hash", "salt", "commitments")

#: PostgreSQL: refuse DELETE, changes of chain columns, and content changes other than to NULL.
PG_GUARD = DDL(
    """
CREATE OR REPLACE FUNCTION consent_events_guard() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'consent_events are append-only (DELETE refused)';
  END IF;
  IF """ + " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in _CHAIN) + """ THEN
    RAISE EXCEPTION 'consent_events chain columns cannot change';
  END IF;
  IF """ + " OR ".join(f"(NEW.{c}::text IS DISTINCT FROM OLD.{c}::text AND NEW.{c} IS NOT NULL)"
                       for c in _CONTENT) + """ THEN
    RAISE EXCEPTION 'consent_events content may only be redacted to NULL';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS consent_events_guard ON consent_events;
CREATE TRIGGER consent_events_guard BEFORE UPDATE OR DELETE ON consent_events
  FOR EACH ROW EXECUTE FUNCTION consent_events_guard();
"""
)

#: SQLite: the same rules, as far as its triggers allow (one statement per trigger).
SQLITE_GUARDS = [
    DDL("CREATE TRIGGER IF NOT EXISTS consent_events_no_delete BEFORE DELETE ON consent_events "
        "BEGIN SELECT RAISE(ABORT, 'consent_events are append-only (DELETE refused)'); END"),
    DDL("CREATE TRIGGER IF NOT EXISTS consent_events_chain_fixed BEFORE UPDATE ON consent_events WHEN "
        + " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _CHAIN)
        + " BEGIN SELECT RAISE(ABORT, 'consent_events chain columns cannot change'); END"),
    DDL("CREATE TRIGGER IF NOT EXISTS consent_events_redact_only BEFORE UPDATE ON consent_events WHEN "
        + " OR ".join(f"(NEW.{c} IS NOT OLD.{c} AND NEW.{c} IS NOT NULL)" for c in _CONTENT)
        + " BEGIN SELECT RAISE(ABORT, 'consent_events content may only be redacted to NULL'); END"),
]

event.listen(ConsentEvent.__table__, "after_create", PG_GUARD.execute_if(dialect="postgresql"))
for _ddl in SQLITE_GUARDS:
    event.listen(ConsentEvent.__table__, "after_create", _ddl.execute_if(dialect="sqlite"))
