"""How suppression entries are read and written in bulk, with the consent events they imply.

The rules (what blocks what, who may do what) live in ``services.suppression.suppressions``; this module
is its storage half, shared with imports, bounce reports and erasure.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import String, any_, bindparam, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite

from flexmail.clock import now
from flexmail.domain.consent import EventType
from flexmail.domain.matching import Hasher, Normalizer
from flexmail.domain.suppression import Match
from flexmail.extensions import db
from flexmail.models import Subscription, Suppression, SuppressionLift
from flexmail.services.delivery import webhooks
from flexmail.services.evidence.proof import record_event
from flexmail.services.platform.context import RequestMeta, hash_key

#: Rows per INSERT round trip in bulk adds.
INSERT_BATCH = 5_000


@dataclass(frozen=True)
class Actor:
    """Who writes or lifts an entry, as recorded (``created_by``, ``lifted_by``)."""

    name: str
    api_key_id: int | None = None
    #: May write and lift platform-wide entries.
    admin: bool = False

    @classmethod
    def from_principal(cls, principal) -> Actor:
        return cls(f"api-key:{principal.key_prefix}", principal.key_id, "admin" in principal.scopes)


def normalizer() -> Normalizer:
    """Normalises like ``context.parse_address``, memoising per domain (one per bulk call)."""
    return Normalizer(test_environment=current_app.config.get("EMAIL_TEST_ENVIRONMENT", False))


def hasher() -> Hasher:
    return Hasher(hash_key())


def in_keys(column, keys: Collection[str]):
    """``column IN keys`` for hex keys, as one text parameter whatever their number.

    PostgreSQL splits it itself (``string_to_array``): an array parameter of 100,000 values
    costs more to send and to plan than to look up. SQLite reads a JSON array (``json_each``),
    which has no bound-variable limit.
    """
    keys = list(keys)
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(func.string_to_array(bindparam(None, ",".join(keys), type_=String), ","))
    values = func.json_each(json.dumps(keys)).table_valued("value")
    return column.in_(select(values.c.value))


def in_scope(account_id: int | None):
    return or_(Suppression.account_id == account_id, Suppression.account_id.is_(None))


_MATCH_COLUMNS = (Suppression.address_hash, Suppression.id, Suppression.account_id, Suppression.kind,
                  Suppression.reason, Suppression.created_at)


def _collect(rows) -> dict[str, list[Match]]:
    found: dict[str, list[Match]] = defaultdict(list)
    for key, pk, account, kind, reason, created_at in rows:
        found[key].append(Match(pk, account, kind, reason, created_at))
    return found


def entries_for(account_id: int, keys: Collection[str], *, connection=None) -> dict[str, list[Match]]:
    """Entries in scope for the account (its own and platform-wide), by key. One query, on the
    session's connection unless given another."""
    if not keys:
        return defaultdict(list)
    connection = connection or db.session.connection()
    postgres = connection.dialect.name == "postgresql"
    statement = _ENTRIES_FOR.get(postgres)
    if statement is None:
        statement = _ENTRIES_FOR[postgres] = _entries_statement(postgres)
    return _collect(connection.execute(statement, {
        "keys": ",".join(keys) if postgres else json.dumps(list(keys)), "account_id": account_id}))


def _entries_statement(postgres: bool):
    """``entries_for``'s query, built once per backend (it runs on every signup and confirm)."""
    keys = bindparam("keys", type_=String)
    if postgres:
        matching = Suppression.address_hash == any_(func.string_to_array(keys, ","))
    else:
        matching = Suppression.address_hash.in_(select(func.json_each(keys).table_valued("value").c.value))
    # ``= NULL`` matches nothing, so a platform-wide lookup (account None) reads the platform's entries.
    scope = or_(Suppression.account_id == bindparam("account_id"), Suppression.account_id.is_(None))
    return select(*_MATCH_COLUMNS).where(matching, scope)


_ENTRIES_FOR: dict[bool, object] = {}


#: What a bulk check needs of each entry: the rows themselves serve as ``Match`` (same
#: attribute names) without a creation time, which only the person-initiated rule reads.
_BULK_COLUMNS = _MATCH_COLUMNS[:-1]


def bulk_entries_for(account_id: int, address_keys: Collection[str], domain_keys: Collection[str]) -> dict[str, list]:
    """Entries for many addresses, in two queries. Domain entries are few, so they are read
    whole (a partial index) rather than sending a domain key for every address."""
    found: dict[str, list] = {}
    queries = []
    if address_keys:
        queries.append((select(*_BULK_COLUMNS).where(in_keys(Suppression.address_hash, address_keys),
                                                     in_scope(account_id)), None))
    if domain_keys:
        # A literal predicate, so that the planner can prove the partial index applies.
        queries.append((select(*_BULK_COLUMNS).where(text("suppressions.kind = 'domain'"), in_scope(account_id)),
                        domain_keys))
    for query, wanted in queries:
        for row in db.session.execute(query):
            key = row[0]
            if wanted is not None and key not in wanted:
                continue
            same = found.get(key)
            if same is None:
                found[key] = [row]
            else:
                same.append(row)
    return found


@dataclass
class Added:
    """What a bulk add did: ``new`` maps key -> id of the entries made now."""

    new: dict[str, int] = field(default_factory=dict)
    existing: dict[str, int] = field(default_factory=dict)


def add_entries(session, *, account_id: int | None, kind: str, items: dict[str, str | None], reason: str,
                source: str, actor: Actor, event_source: str, at: dt.datetime | None = None,
                report: dict | None = None) -> Added:
    """Insert entries for ``items`` (key -> address or domain to show, or None) in the caller's
    transaction, skipping those that exist, and record ``suppressed`` events where a
    subscription exists. An address with an erasure entry in the account is never stored
    in clear again. Works in batches; safe against a concurrent identical insert.
    ``report`` (a bounce or complaint's summary) is kept on the entries and in the events.
    """
    at = at or now()
    result = Added()
    rows_made: list[dict] = []
    keys = list(items)
    for start in range(0, len(keys), INSERT_BATCH):
        batch = keys[start:start + INSERT_BATCH]
        owner = Suppression.account_id.is_(None) if account_id is None else Suppression.account_id == account_id
        result.existing.update({key: pk for key, pk in session.execute(
            select(Suppression.address_hash, Suppression.id)
            .where(in_keys(Suppression.address_hash, batch), owner, Suppression.reason == reason)
        )})
        erased = set() if account_id is None or kind != "address" else set(session.scalars(
            select(Suppression.address_hash)
            .where(in_keys(Suppression.address_hash, batch), owner, Suppression.reason == "erasure")
        ))
        rows = [{
            "account_id": account_id, "kind": kind, "address_hash": key,
            "email": items[key] if kind == "address" and reason != "erasure" and key not in erased else None,
            "domain": items[key] if kind == "domain" else None,
            "reason": reason, "source": source, "created_by": actor.name, "api_key_id": actor.api_key_id,
            "created_at": at, "report": report,
        } for key in batch if key not in result.existing]
        rows_made.extend(rows)
        if rows:
            made = session.execute(_insert().returning(Suppression.address_hash, Suppression.id), rows)
            result.new.update({key: pk for key, pk in made})
    if result.new:
        details = {"reason": reason, "kind": kind, "source": source, "actor": actor.name}
        if report:
            details["report"] = report
        covered = _record(session, account_id, kind, {k: items[k] for k in result.new}, result.new,
                          EventType.SUPPRESSED, at=at, source=event_source, details=details)
        stored = {row["address_hash"]: row["email"] for row in rows_made}
        if account_id is not None:
            webhooks.emit(session, account_id, "suppression.added", at=at, items=[(
                {"suppression_id": pk, "kind": kind, "reason": reason, "source": source, "scope": "account",
                 "domain": items[key] if kind == "domain" else None},
                key if kind == "address" else None, stored.get(key)) for key, pk in result.new.items()])
        else:
            _emit_global(session, "suppression.added", kind, result.new, {k: items[k] for k in result.new}, covered,
                         at=at)
    return result


def emit_added(session, row: Suppression) -> None:
    """``suppression.added`` for one entry written through the ORM (``suppressions.add_suppression``:
    "this was not me", "stop all mail from this sender"), flushed so that it has its id."""
    session.flush()
    if row.account_id is not None:
        webhooks.emit(session, row.account_id, "suppression.added", at=row.created_at, items=[(
            {"suppression_id": row.id, "kind": row.kind, "reason": row.reason, "source": row.source,
             "scope": "account", "domain": row.domain},
            row.address_hash if row.kind == "address" else None, row.email)])
        return
    covered = _record(session, None, row.kind, {row.address_hash: row.domain}, {row.address_hash: row.id},
                      None, at=row.created_at, source=None, details={})
    _emit_global(session, "suppression.added", row.kind, {row.address_hash: row.id}, {row.address_hash: row.domain},
                 covered, at=row.created_at)


def _emit_global(session, event_type: str, kind: str, ids: dict[str, int], shown: dict[str, str | None],
                 covered: list, *, at) -> None:
    """A platform-wide entry is the operator's: each account that holds a subscription it
    covers learns of it (once per address, with the address it holds), and of nothing else:
    not the operator's reason or source, and no other account hears of it."""
    per_account: dict[int, dict[str, tuple]] = defaultdict(dict)
    for sub, key in covered:
        per_account[sub.account_id].setdefault(sub.address_hash if kind == "address" else key, (
            {"suppression_id": ids[key], "kind": kind, "reason": None, "source": None, "scope": "global",
             "domain": shown.get(key) if kind == "domain" else None},
            sub.address_hash if kind == "address" else None, sub.email if kind == "address" else None))
    for account_id, items in per_account.items():
        webhooks.emit(session, account_id, event_type, at=at, items=list(items.values()))


def _insert():
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(Suppression).on_conflict_do_nothing(index_elements=["account_id", "address_hash", "reason"])


def _record(session, account_id, kind, shown: dict[str, str | None], ids: dict[str, int], event: EventType | None,
            *, at, source: str | None, details: dict) -> list[tuple[Subscription, str]]:
    """Append ``event`` to every subscription the entries cover, in the account or (global)
    in every account; a platform-wide entry shows other accounts only its scope. Returns the
    ``(subscription, entry key)`` pairs covered (``event=None``: only finds them)."""
    subs = []
    if kind == "address":
        query = select(Subscription).where(in_keys(Subscription.address_hash, list(ids)))
        if account_id is not None:
            query = query.where(Subscription.account_id == account_id)
        subs = [(sub, sub.address_hash) for sub in session.scalars(query.order_by(Subscription.id))]
    else:
        for key, domain in shown.items():
            if domain:
                query = select(Subscription).where(Subscription.email.endswith("@" + domain, autoescape=True))
                if account_id is not None:
                    query = query.where(Subscription.account_id == account_id)
                subs += [(sub, key) for sub in session.scalars(query.order_by(Subscription.id))]
    if event is None:
        return subs
    meta = RequestMeta(at=at)
    for sub, key in subs:
        extra = {"scope": "global", "kind": kind} if account_id is None else {"scope": "account", **details}
        record_event(session, sub, event, meta=meta, source=source, applied=True,
                     details={**extra, "suppression_id": ids[key]})
    return subs


def lift(session, row: Suppression, *, actor: Actor, note: str | None, event_source: str,
         at: dt.datetime | None = None) -> SuppressionLift:
    """Delete ``row`` in the caller's transaction, keeping the fact as a ``SuppressionLift``
    and an ``unsuppressed`` event on every subscription it covered."""
    at = at or now()
    record = SuppressionLift(
        suppression_id=row.id, account_id=row.account_id, kind=row.kind, address_hash=row.address_hash,
        reason=row.reason, source=row.source, suppressed_at=row.created_at, suppressed_by=row.created_by,
        lifted_at=at, lifted_by=actor.name, api_key_id=actor.api_key_id, note=note,
    )
    session.add(record)
    covered = _record(session, row.account_id, row.kind, {row.address_hash: row.domain}, {row.address_hash: row.id},
                      EventType.UNSUPPRESSED, at=at, source=event_source,
                      details={"reason": row.reason, "kind": row.kind, "actor": actor.name, "note": note})
    if row.account_id is None:
        _emit_global(session, "suppression.lifted", row.kind, {row.address_hash: row.id},
                     {row.address_hash: row.domain}, covered, at=at)
    else:
        webhooks.emit(session, row.account_id, "suppression.lifted", at=at, items=[(
            {"suppression_id": row.id, "kind": row.kind, "reason": row.reason, "source": event_source,
             "scope": "account", "domain": row.domain},
            row.address_hash if row.kind == "address" else None, row.email)])
    session.delete(row)
    return record


