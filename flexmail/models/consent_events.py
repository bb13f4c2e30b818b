from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Enum,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.domain.consent import EventType
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class ConsentEvent(db.Model):
    """Append-only proof: one row per thing that happened to a subscription.

    Rows are the leaves of a Merkle tree per account (domain.ledger, domain.merkle):
    written with their ``content_hash`` and no place; the sealer sets ``seq`` once. The
    database itself refuses DELETE and any UPDATE except redaction and sealing: personal
    fields and details may change (erasure, IP truncation), content fields may only become
    NULL (a retention tombstone), ``seq`` may only go from NULL to a number, and the hash
    columns never change. See ``PG_GUARD`` and ``SQLITE_GUARDS``.
    """

    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_events_subscription_id", "subscription_id", "id"),
        UniqueConstraint("account_id", "seq", name="uq_consent_events_account_seq"),
        # The sealer's work list: events written but not yet given a place.
        # The dashboard's funnel: one list's events of some types in a time range (services.marketer.funnel).
        Index("ix_consent_events_list_type_at", "list_id", "type", "at"),
        Index("ix_consent_events_unsealed", "account_id", "id", postgresql_where=text("seq IS NULL"),
              sqlite_where=text("seq IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    #: Place in the account's tree (leaf index + 1), set once by the sealer; NULL until sealed.
    seq: Mapped[int | None] = mapped_column()
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
    #: SHA-256 of the canonical content; the leaf is SHA-256(0x00 || this).
    content_hash: Mapped[str] = mapped_column(String(64))
    #: The old hash chain, kept for events written before the tree (NULL for later ones).
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    entry_hash: Mapped[str | None] = mapped_column(String(64))
    #: Personal fields that were redacted or truncated after recording (not hashed).
    redacted: Mapped[list | None] = mapped_column(JSON)
    #: Set when retention deleted the content and only the chain skeleton remains.
    tombstoned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class LedgerNode(db.Model):
    """A perfect subtree of an account's tree (level >= 1; leaves are the events themselves).

    Written once by the sealer; proofs are read from these rows.
    """

    __tablename__ = "ledger_nodes"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))


class LedgerTreeHead(db.Model):
    """A signed tree head: the account's tree at ``tree_size`` leaves, signed with Ed25519.

    The signed document is exactly ``{account_id, tree_size, root_hash, timestamp, key_id}``
    (canonical JSON, domain.ledger.canonical); ``signature`` is over it.
    """

    __tablename__ = "ledger_tree_heads"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[str] = mapped_column(String(64))
    #: The signed time, as signed (ISO 8601 UTC text, so it round-trips byte for byte).
    timestamp: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(100))


_CHAIN = ("id", "account_id", "prev_hash", "content_hash", "entry_hash")
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
  IF OLD.seq IS NOT NULL AND NEW.seq IS DISTINCT FROM OLD.seq THEN
    RAISE EXCEPTION 'consent_events seq is set once, by the sealer';
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
    DDL("CREATE TRIGGER IF NOT EXISTS consent_events_seq_once BEFORE UPDATE ON consent_events WHEN "
        "OLD.seq IS NOT NULL AND NEW.seq IS NOT OLD.seq "
        "BEGIN SELECT RAISE(ABORT, 'consent_events seq is set once, by the sealer'); END"),
    DDL("CREATE TRIGGER IF NOT EXISTS consent_events_redact_only BEFORE UPDATE ON consent_events WHEN "
        + " OR ".join(f"(NEW.{c} IS NOT OLD.{c} AND NEW.{c} IS NOT NULL)" for c in _CONTENT)
        + " BEGIN SELECT RAISE(ABORT, 'consent_events content may only be redacted to NULL'); END"),
]

#: The tree's nodes and signed heads are written once: no UPDATE, no DELETE.
FROZEN_TABLES = ("ledger_nodes", "ledger_tree_heads")
PG_FROZEN_GUARD = """
CREATE OR REPLACE FUNCTION ledger_frozen_guard() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' rows are written once (' || TG_OP || ' refused)';
END;
$$ LANGUAGE plpgsql;
"""


def pg_frozen_trigger(table: str) -> str:
    return (f"DROP TRIGGER IF EXISTS {table}_frozen ON {table};\n"
            f"CREATE TRIGGER {table}_frozen BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_frozen_guard();")


def sqlite_frozen_triggers(table: str) -> list[str]:
    return [f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} rows are written once ({op} refused)'); END"
            for op in ("UPDATE", "DELETE")]


event.listen(ConsentEvent.__table__, "after_create", PG_GUARD.execute_if(dialect="postgresql"))
for _model in (LedgerNode, LedgerTreeHead):
    event.listen(_model.__table__, "after_create",
                 DDL(PG_FROZEN_GUARD + pg_frozen_trigger(_model.__tablename__)).execute_if(dialect="postgresql"))
    for _statement in sqlite_frozen_triggers(_model.__tablename__):
        event.listen(_model.__table__, "after_create", DDL(_statement).execute_if(dialect="sqlite"))
for _ddl in SQLITE_GUARDS:
    event.listen(ConsentEvent.__table__, "after_create", _ddl.execute_if(dialect="sqlite"))
