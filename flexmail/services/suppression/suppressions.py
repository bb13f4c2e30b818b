"""Who must not be mailed: entries by keyed hash, for one account or platform-wide.

Matching is on keyed hashes only (``domain.matching``): the address's, and its domain's
for domain entries. Every send path asks here:

- ``blocks_signup`` (a new signup), ``blocks_confirmation`` (a queued confirmation mail and
  its renewal) apply the person-initiated rule of ``domain.suppression``: the person's own
  signup (hosted form, undo) passes an account entry for their address whose reason they
  chose themselves (``erasure``, ``unsubscribed``) and that existed when they asked; the
  marketer's API never does. ``lift_on_confirmation`` then lifts those entries when the
  person confirms: a confirmed double opt-in is the only thing that ends an erasure entry.
- For lists, a fixed number of queries whatever the length:

  * ``check_many(account_id, emails)`` — raw input, one result per input in order (the API);
  * ``suppressed_addresses(account_id, normalized)`` — the subset of normalised addresses
    that must not be mailed (address, domain and platform-wide entries);
  * ``suppressed_hashes(account_id, keys)`` — the subset of keyed hashes that has an entry.
    Pass address hashes *and* domain hashes (``domain_key``) to honour domain entries; with
    address hashes alone, domain entries are not seen.

  Every entry in scope blocks these (no person-initiated exception: that exists only for the
  person's own signup), e.g. forward-to-a-friend recipients and campaign recipient exports.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from flexmail.clock import now
from flexmail.domain.addresses import InvalidAddress
from flexmail.domain.consent import EventType
from flexmail.domain.matching import domain_of, normalize_domain
from flexmail.domain.suppression import (
    MARKETER_REASONS,
    PERSON_CHANNELS,
    PERSON_LIFTABLE,
    SCOPES,
    Match,
    blocking,
)
from flexmail.extensions import db
from flexmail.models import ConsentEvent, Subscription, Suppression, SuppressionLift
from flexmail.services.evidence import audit
from flexmail.services.platform.context import RequestMeta
from flexmail.services.platform.errors import Forbidden, NotFound, NotLiftable, ValidationFailed
from flexmail.services.platform.unit_of_work import unit_of_work
from flexmail.services.suppression.suppression_store import (
    Actor,
    Added,
    add_entries,
    bulk_entries_for,
    emit_added,
    entries_for,
    hasher,
    in_scope,
    lift,
    normalizer,
)

log = logging.getLogger(__name__)

#: Most addresses one check or one add may carry.
MAX_BULK = 100_000
#: Entries listed back by an add (larger adds answer with counts only).
MAX_ECHOED = 1_000


#: The name callers and tests use for the missing-admin case.
NotPermitted = Forbidden


def domain_key(normalized: str) -> str:
    """The keyed hash a domain entry for this address's domain has."""
    return hasher().domain(domain_of(normalized))


def find_suppression(account_id: int, address_hash: str) -> Suppression | None:
    """The entry for this address hash in the account or platform-wide.

    Kept for callers that hold only the hash: domain entries are not seen here. Prefer
    ``is_suppressed`` (or the bulk functions) where the address is at hand.
    """
    return db.session.scalar(
        select(Suppression)
        .where(Suppression.address_hash == address_hash, in_scope(account_id))
        .order_by(Suppression.account_id.is_(None), Suppression.id)
        .limit(1)
    )


def is_suppressed(account_id: int, normalized: str) -> Match | None:
    """The entry that stops every mail from the account to this normalised address, if any."""
    keys = hasher().keys(normalized)
    found = entries_for(account_id, keys)
    return blocking([m for key in keys for m in found.get(key, ())])


def blocks_signup(account_id: int, normalized: str, *, channel: str) -> Match | None:
    """The entry that refuses a new signup through ``channel`` now, if any."""
    keys = hasher().keys(normalized)
    found = entries_for(account_id, keys)
    return blocking([m for key in keys for m in found.get(key, ())], person_initiated=channel in PERSON_CHANNELS)


def blocks_confirmation(sub: Subscription) -> Match | None:
    """The entry that stops a confirmation mail for ``sub``, if any.

    The round's channel is the source of its latest ``subscribe_requested`` event. Entries
    made after the person asked (a bounce, an erasure, a marketer's unsubscribe) stop the
    mail whatever the channel.
    """
    keys = [sub.address_hash] + ([domain_key(sub.email)] if sub.email else [])
    found = entries_for(sub.account_id, keys)
    matches = [m for key in keys for m in found.get(key, ())]
    if not matches:
        return None
    channel = db.session.scalar(
        select(ConsentEvent.source)
        .where(ConsentEvent.subscription_id == sub.id, ConsentEvent.type == EventType.SUBSCRIBE_REQUESTED)
        .order_by(ConsentEvent.id.desc()).limit(1)
    )
    return blocking(matches, person_initiated=channel in PERSON_CHANNELS, asked_at=sub.requested_at)


def blocks_confirmations(subs: Iterable[Subscription]) -> dict[int, Match | None]:
    """``blocks_confirmation`` for many subscriptions (a batch of mails): one query per
    account, plus one per subscription that has an entry at all."""
    by_account: dict[int, list[Subscription]] = {}
    for sub in subs:
        by_account.setdefault(sub.account_id, []).append(sub)
    result: dict[int, Match | None] = {}
    for account_id, group in by_account.items():
        keys = {sub.id: [sub.address_hash] + ([domain_key(sub.email)] if sub.email else []) for sub in group}
        found = entries_for(account_id, {key for ks in keys.values() for key in ks})
        for sub in group:
            hit = any(found.get(key) for key in keys[sub.id])
            result[sub.id] = blocks_confirmation(sub) if hit else None
    return result


def suppressed_hashes(account_id: int, keys: Iterable[str]) -> set[str]:
    """The subset of ``keys`` (address and/or domain hashes) with an entry in scope. One query."""
    keys = set(keys)
    return set(entries_for(account_id, keys)) if keys else set()


def suppressed_addresses(account_id: int, normalized: Iterable[str]) -> set[str]:
    """The subset of normalised addresses that must not be mailed by the account. Two queries
    whatever the number of addresses."""
    h = hasher()
    keyed = {address: h.keys(address) for address in normalized}
    found = bulk_entries_for(account_id, {a for a, _ in keyed.values()}, {d for _, d in keyed.values()})
    return {address for address, (a, d) in keyed.items() if a in found or d in found}


def check_many(account_id: int, emails: list, *, reveal_global: bool = False) -> list[dict]:
    """One result per input, in input order: ``{"email", "valid", "suppressed", "reason", "scope"}``.

    Platform-wide entries show as ``scope: "global"`` with no reason unless
    ``reveal_global`` (an admin key). An invalid input is ``valid: false`` and not
    suppressed. At most ``MAX_BULK`` inputs; two queries whatever their number.
    """
    if len(emails) > MAX_BULK:
        raise ValidationFailed("Invalid input.", fields={"emails": [f"At most {MAX_BULK} addresses."]})
    norm, h = normalizer(), hasher()
    normalized_of, address_key, domain_key_of = norm.normalized, h.address, h.domain
    keyed: list[tuple[str, str] | None] = []
    append = keyed.append
    for raw in emails:
        try:
            normalized = normalized_of(raw)
        except InvalidAddress:
            append(None)
            continue
        append((address_key(normalized), domain_key_of(normalized.rpartition("@")[2])))
    valid = [pair for pair in keyed if pair]
    found = bulk_entries_for(account_id, {a for a, _ in valid}, {d for _, d in valid})
    get = found.get
    results = []
    add = results.append
    for raw, pair in zip(emails, keyed, strict=True):
        if pair is None:
            add({"email": raw, "valid": False, "suppressed": False, "reason": None, "scope": None})
            continue
        by_address, by_domain = get(pair[0]), get(pair[1])
        if by_address is None and by_domain is None:
            add({"email": raw, "valid": True, "suppressed": False, "reason": None, "scope": None})
            continue
        matches = (by_address or []) + (by_domain or [])
        entry = matches[0] if len(matches) == 1 else blocking(matches)
        if entry.account_id is not None:
            add({"email": raw, "valid": True, "suppressed": True, "reason": entry.reason, "scope": "account"})
        else:
            add({"email": raw, "valid": True, "suppressed": True, "reason": entry.reason if reveal_global else None,
                 "scope": "global"})
    return results


# --- writing -------------------------------------------------------------------------------------

def add_suppression(session, *, account_id: int | None, address_hash: str, reason: str,
                    source: str, email: str | None = None, created_by: str | None = None) -> tuple[Suppression, bool]:
    """Add an entry inside the caller's transaction; an existing identical entry is reused.

    Returns ``(entry, made_now)``. A new entry is flushed (it has its id) and its
    ``suppression.added`` webhook is written in the same transaction.
    """
    existing = session.scalar(
        select(Suppression).where(Suppression.address_hash == address_hash,
                                  Suppression.account_id.is_(None) if account_id is None
                                  else Suppression.account_id == account_id,
                                  Suppression.reason == reason)
    )
    if existing is not None:
        return existing, False
    row = Suppression(account_id=account_id, kind="address", address_hash=address_hash, reason=reason,
                      source=source, email=email if reason != "erasure" else None, created_by=created_by,
                      created_at=now())
    session.add(row)
    emit_added(session, row)
    return row, True


@dataclass
class AddResult:
    added: int
    existing: int
    #: ``[{"field": "emails"|"domains", "index": i, "reason": "..."}]``: inputs that are not
    #: valid addresses or domains.
    rejected: list[dict]
    #: The entries for the valid inputs, in input order (only for adds of up to ``MAX_ECHOED``).
    entries: list[Suppression] | None


def check_entry_request(*, reason: str, scope: str, actor: Actor) -> None:
    """The rule for every new entry (single, bulk or import): a reason a marketer may give,
    a known scope, and platform-wide entries only for the admin scope."""
    if reason not in MARKETER_REASONS:
        raise ValidationFailed("Invalid input.", fields={"reason": [f"One of {', '.join(MARKETER_REASONS)}."]})
    if scope not in SCOPES:
        raise ValidationFailed("Invalid input.", fields={"scope": ["account or global."]})
    if scope == "global" and not actor.admin:
        raise NotPermitted("Platform-wide entries need the 'admin' scope.")


def suppress(account_id: int, *, emails: list | None = None, domains: list | None = None, reason: str,
             scope: str = "account", actor: Actor, source: str = "api") -> AddResult:
    """Add address and/or domain entries for the account (``scope="account"``) or for the
    whole platform (``"global"``, admin only). Existing entries are kept and counted.
    """
    emails, domains = list(emails or []), list(domains or [])
    check_entry_request(reason=reason, scope=scope, actor=actor)
    if not emails and not domains:
        raise ValidationFailed("Invalid input.", fields={"email": ["Give email, emails or domain."]})
    if len(emails) + len(domains) > MAX_BULK:
        raise ValidationFailed("Invalid input.", fields={"emails": [f"At most {MAX_BULK} entries."]})
    norm, h = normalizer(), hasher()
    rejected, addresses, domain_items, order = [], {}, {}, []
    for index, raw in enumerate(emails):
        try:
            normalized = norm(raw).normalized
        except InvalidAddress as exc:
            rejected.append({"field": "emails", "index": index, "reason": exc.reason})
            continue
        key = h.address(normalized)
        addresses.setdefault(key, normalized)
        order.append(key)
    for index, raw in enumerate(domains):
        try:
            domain = normalize_domain(raw, test_environment=norm.test_environment)
        except InvalidAddress as exc:
            rejected.append({"field": "domains", "index": index, "reason": exc.reason})
            continue
        key = h.domain(domain)
        domain_items.setdefault(key, domain)
        order.append(key)
    owner = None if scope == "global" else account_id
    with unit_of_work() as uow:
        done = Added()
        for kind, items in (("address", addresses), ("domain", domain_items)):
            if items:
                part = add_entries(uow.session, account_id=owner, kind=kind, items=items, reason=reason,
                                   source=source, actor=actor, event_source=source)
                done.new.update(part.new)
                done.existing.update(part.existing)
    log.info("suppressions for account %s (%s): %d added, %d existing, %d rejected", account_id, scope,
             len(done.new), len(done.existing), len(rejected))
    entries = None
    if len(order) <= MAX_ECHOED:
        ids = {**done.existing, **done.new}
        rows = {r.id: r for r in db.session.scalars(select(Suppression).where(Suppression.id.in_(ids.values())))}
        entries = [rows[ids[key]] for key in dict.fromkeys(order) if ids.get(key) in rows]
    return AddResult(len(done.new), len(done.existing), rejected, entries)


def unsuppress(account_id: int, suppression_id: int, *, actor: Actor, note: str | None = None) -> SuppressionLift:
    """Lift an entry of the account (or a platform-wide one, admin only).

    An ``erasure`` entry cannot be lifted this way (``NotLiftable``): only the person's own
    confirmed double opt-in ends it. Another account's entry is ``NotFound``.
    """
    with unit_of_work() as uow:
        row = _visible(uow.session, account_id, suppression_id, admin=actor.admin)
        if row.reason == "erasure":
            raise NotLiftable("An erasure entry is lifted only by the person's own new double opt-in.")
        record = lift(uow.session, row, actor=actor, note=note, event_source="api")
        audit.record(actor, "suppression.lift", {"suppression_id": suppression_id, "reason": row.reason,
                                                 "scope": "global" if row.account_id is None else "account"},
                     session=uow.session, account_id=account_id)
    log.info("suppression %s of account %s lifted by %s", suppression_id, account_id, actor.name)
    return record


def lift_on_confirmation(session, sub: Subscription, *, meta: RequestMeta) -> int:
    """The person confirmed a new double opt-in: lift the account's entries for their address
    that they may override (``erasure``, ``unsubscribed``). Returns how many were lifted."""
    rows = session.scalars(
        select(Suppression).where(Suppression.account_id == sub.account_id, Suppression.kind == "address",
                                  Suppression.address_hash == sub.address_hash,
                                  Suppression.reason.in_(PERSON_LIFTABLE))
    ).all()
    for row in rows:
        lift(session, row, actor=Actor("recipient"), note="confirmed a new double opt-in", event_source="page",
             at=meta.at)
    if rows:
        log.info("subscription %s confirmed: %d suppression(s) lifted", sub.id, len(rows))
    return len(rows)


def _visible(session, account_id: int, suppression_id: int, *, admin: bool) -> Suppression:
    row = session.get(Suppression, suppression_id)
    if row is None or not (row.account_id == account_id or (row.account_id is None and admin)):
        raise NotFound("No such suppression.")
    return row


def get_suppression(account_id: int, suppression_id: int, *, admin: bool = False) -> Suppression:
    return _visible(db.session, account_id, suppression_id, admin=admin)


def list_suppressions(account_id: int, *, reason: str | None = None, kind: str | None = None,
                      scope: str = "account", admin: bool = False, after: int | None = None,
                      limit: int = 100) -> list[Suppression]:
    """A page of the account's entries in id order after the cursor id. ``scope="global"``
    lists platform-wide entries (admin only)."""
    if scope == "global" and not admin:
        raise NotPermitted("Platform-wide entries are listed only with the 'admin' scope.")
    owner = Suppression.account_id.is_(None) if scope == "global" else Suppression.account_id == account_id
    query = select(Suppression).where(owner)
    if reason:
        query = query.where(Suppression.reason == reason)
    if kind:
        query = query.where(Suppression.kind == kind)
    if after:
        query = query.where(Suppression.id > after)
    return list(db.session.scalars(query.order_by(Suppression.id).limit(limit)))
