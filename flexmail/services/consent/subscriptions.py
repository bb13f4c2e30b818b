"""The double opt-in workflow: request, confirm, cancel, renew.

Only a POST by the person (button or same-origin auto-submit after the click gate)
confirms; every GET of a link is kept as a ``link_fetched`` observation and changes no
state, because mail security gateways fetch (and script) every link they see.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import bindparam, case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from flexmail.clock import now
from flexmail.domain.consent import EventType, Status, next_status
from flexmail.domain.suppression import PERSON_CHANNELS, blocking, person_may_override
from flexmail.domain.tokens import Purpose, TokenError
from flexmail.extensions import db
from flexmail.models import ConsentEvent, ListLogo, MailingList, OutboxMessage, Subscription
from flexmail.services.consent import flood
from flexmail.services.consent.branding import Brand, brand_of_row
from flexmail.services.consent.rows import (
    BRAND_FIELDS,
    SUBSCRIPTION_COLUMNS,
    SubscriptionRow,
    event_parameters,
    has_webhooks,
    pending_mails,
    update_with_event,
)
from flexmail.services.delivery import outbox, webhooks
from flexmail.services.evidence import ledger
from flexmail.services.evidence.proof import record_applied, record_event
from flexmail.services.marketer.lists import get_list, signup_list
from flexmail.services.platform.context import (
    RequestMeta,
    hash_address,
    parse_address,
    setting,
    signer,
)
from flexmail.services.platform.errors import (
    BadToken,
    ConfirmationBlocked,
    NotFound,
    RateLimited,
    Suppressed,
    ValidationFailed,
)
from flexmail.services.platform.unit_of_work import unit_of_work
from flexmail.services.suppression.suppression_store import entries_for
from flexmail.services.suppression.suppressions import (
    add_suppression,
    blocks_confirmation,
    blocks_signup,
    domain_key,
    lift_on_confirmation,
)

log = logging.getLogger(__name__)

MAX_CONSENT_TEXT = 10_000
#: A link fetched more often than this is noise (a scanner farm, a reload loop); we stop
#: recording further fetches but never refuse them.
MAX_FETCH_OBSERVATIONS = 20


@dataclass(frozen=True)
class SubscribeResult:
    subscription_id: int
    status: Status
    #: True when this call queued a confirmation mail.
    queued: bool
    #: The subscription as it is after the call (a ``SubscriptionRow``: no second read).
    subscription: SubscriptionRow | None = None


def request_subscription(account_id: int, list_id: int, *, email: str, meta: RequestMeta,
                         consent_text: str | None = None, source: str | None = None,
                         channel: str = "api") -> SubscribeResult:
    """Start (or restart) double opt-in for ``email`` on a list.

    Already subscribed: nothing is sent and nothing recorded. Suppressed for the account
    (or globally): ``Suppressed``. Any other state becomes pending with a fresh
    ``subscribe_requested`` event and one queued confirmation mail, within flood limits
    (``RateLimited``, and nothing changed); past the platform-wide cap for the address the
    mail is held, and the answer is the same as when it is queued.

    Six statements: the list, the suppression entries, one upsert of the subscription, the
    flood counters (before anything else is written, so a refusal costs little), the event,
    the outbox row.
    """
    lst = signup_list(account_id, list_id)
    address = parse_address(email)
    consent_text = (consent_text or lst.consent_text or "").strip()
    if not consent_text:
        raise ValidationFailed("Invalid input.", fields={"consent_text": ["Consent wording is required."]})
    if len(consent_text) > MAX_CONSENT_TEXT:
        raise ValidationFailed("Invalid input.", fields={"consent_text": ["At most 10000 characters."]})
    addr_hash = hash_address(address)
    with unit_of_work() as uow:
        if blocks_signup(lst.account_id, address.normalized, channel=channel) is not None:
            log.info("signup refused: address %s suppressed for account %s", addr_hash[:12], lst.account_id)
            raise Suppressed("This address must not be mailed by this account.")
        sub = _upsert_pending(uow.session, lst, address.normalized, addr_hash, consent_text=consent_text,
                              source=source, at=meta.at)
        if sub is None:  # subscribed already: the upsert changed nothing
            sub = SubscriptionRow.of(uow.session.execute(
                select(*SUBSCRIPTION_COLUMNS).where(Subscription.list_id == lst.id,
                                                    Subscription.address_hash == addr_hash)).one())
            return SubscribeResult(sub.id, sub.status, queued=False, subscription=sub)
        ip_hash = hash_address_ip(meta.ip)
        held = flood.count_confirmation(uow.session, account_id=lst.account_id, address_hash=addr_hash,
                                        ip_hash=ip_hash)
        details = {
            "consent_text": consent_text,
            "consent_text_sha256": hashlib.sha256(consent_text.encode()).hexdigest(),
            "form_source": source, "list_name": lst.name, "language": lst.language,
        }
        connection = uow.session.connection()
        if connection.dialect.name == "postgresql":
            # The event and the mail in one statement (two INSERTs, one round trip).
            event = ledger.event_values(
                email=sub.email, account_id=sub.account_id, subscription_id=sub.id, list_id=sub.list_id,
                type=EventType.SUBSCRIBE_REQUESTED, at=meta.at, ip=meta.ip, user_agent=meta.user_agent,
                source=channel, details=details)
            webhooks.on_consent_event(uow.session, sub, SimpleNamespace(**event))
            mail = outbox.confirmation_values(sub, signup_ip_hash=ip_hash, held=held)
            message_pk = connection.execute(_EVENT_AND_MAIL, {
                **event_parameters(event), **{f"m_{name}": value for name, value in mail.items()}}).scalar_one()
            outbox.enqueue_after_commit(uow, message_pk, held=held)
        else:
            record_applied(uow.session, sub, EventType.SUBSCRIBE_REQUESTED, meta=meta, source=channel,
                           details=details)
            message_pk = outbox.add_confirmation(uow, sub, signup_ip_hash=ip_hash, held=held).id
    log.info("subscription %s pending; confirmation %s %s", sub.id, message_pk, "held" if held else "queued")
    return SubscribeResult(sub.id, sub.status, queued=True, subscription=sub)


def _event_and_mail():
    """``request_subscription``'s event and confirmation mail in one statement (PostgreSQL):
    ``WITH event AS (INSERT INTO consent_events ...) INSERT INTO outbox ... RETURNING id``."""
    events, mails = ConsentEvent.__table__, OutboxMessage.__table__
    event = (insert(events).values({name: bindparam(f"e_{name}", type_=events.c[name].type)
                                    for name in ledger.NEW_EVENT_COLUMNS})
             .returning(events.c.id).cte("event"))
    names = ("account_id", "subscription_id", "kind", "address_hash", "signup_ip_hash", "message_id", "created_at",
             "next_attempt_at", "status")
    values = {name: bindparam(f"m_{name}", type_=mails.c[name].type) for name in names}
    # Column defaults are not filled in for an INSERT carrying a CTE: the one with a default, here.
    return insert(mails).values(**values, attempts=0).add_cte(event).returning(mails.c.id)


_EVENT_AND_MAIL = _event_and_mail()


def _upsert_pending(session, lst: MailingList, normalized: str, addr_hash: str, *, consent_text: str,
                    source: str | None, at) -> SubscriptionRow | None:
    """Make the subscription pending in one statement (insert, or update unless subscribed).

    The unique key (list, address hash) serialises parallel first signups of one address;
    a round that was already pending keeps its start (``pending_since``), any other state
    starts a new round. Returns ``None`` when the subscription is subscribed.
    """
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    statement = _UPSERT_PENDING.get(postgres)
    if statement is None:
        statement = _UPSERT_PENDING[postgres] = _upsert_statement(postgres)
    return SubscriptionRow.of(connection.execute(statement, {
        "account_id": lst.account_id, "list_id": lst.id, "email": normalized, "address_hash": addr_hash,
        "consent_text": consent_text, "source": source, "language": lst.language, "at": at,
    }).one_or_none())


def _upsert_statement(postgres: bool):
    """``_upsert_pending``'s statement, built once per backend."""
    table = Subscription.__table__
    at = bindparam("at", type_=table.c.created_at.type)
    stmt = (postgresql.insert if postgres else sqlite.insert)(table).values(
        account_id=bindparam("account_id"), list_id=bindparam("list_id"), email=bindparam("email"),
        address_hash=bindparam("address_hash"), status=Status.PENDING, consent_text=bindparam("consent_text"),
        source=bindparam("source"), language=bindparam("language"),
        created_at=at, requested_at=at, pending_since=at, updated_at=at,
    )
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[table.c.list_id, table.c.address_hash],
        set_={
            "email": new.email, "consent_text": new.consent_text, "source": new.source, "language": new.language,
            "requested_at": new.requested_at, "updated_at": new.updated_at, "status": Status.PENDING,
            "pending_since": case(
                ((table.c.status == Status.PENDING) & table.c.pending_since.is_not(None), table.c.pending_since),
                else_=new.pending_since),
        },
        # domain.consent: subscribe_requested is allowed from every state but subscribed.
        where=table.c.status != Status.SUBSCRIBED,
    ).returning(*table.c)


_UPSERT_PENDING: dict[bool, object] = {}


def hash_address_ip(ip: str | None) -> str | None:
    """Keyed hash of an IP for counting; the clear IP lives only in the proof."""
    return hash_address("ip:" + ip) if ip else None


@dataclass(frozen=True)
class ConfirmLink:
    """What the confirmation page needs to know about a link."""

    subscription_id: int
    status: Status
    list_name: str
    sender_name: str
    consent_text: str
    language: str
    #: The page may submit its form by script: the mail left long enough ago that an
    #: early security-gateway fetch is not the one doing it.
    auto_submit: bool
    redirect_url: str | None = None
    #: Set by ``confirm_subscription``: this call is the one that confirmed.
    newly_confirmed: bool = False
    #: The list's branding, read with the link (pages need no query of their own).
    brand: Brand | None = None


def _decode(token: str, *, purpose: Purpose, max_age: int) -> tuple[int, int]:
    """The ``[subscription id, outbox id]`` of a confirm/cancel token (its round's mail)."""
    try:
        sid, oid = signer().loads(purpose, token, max_age=max_age)
    except TokenError as exc:
        sid = exc.payload[0] if exc.kind == "expired" and exc.payload else None
        raise BadToken(exc.kind, subscription_id=sid if purpose == Purpose.CONFIRM else None) from None
    except (ValueError, TypeError):  # a validly signed payload of the wrong shape
        raise BadToken("invalid") from None
    if not (isinstance(sid, int) and isinstance(oid, int)):
        raise BadToken("invalid")
    return sid, oid


def _load_link(token: str, *, purpose: Purpose = Purpose.CONFIRM, deciding: bool = False) -> SubscriptionRow:
    """Decode a confirm/cancel token and read, in one statement, its subscription, list and
    confirmation mail. ``deciding`` also reads what a decision needs: the round's channel
    and whether mails of the subscription still wait to be sent."""
    sid, oid = _decode(token, purpose=purpose, max_age=setting("CONFIRM_MAX_AGE"))
    row = db.session.connection().execute(_LINK_DECIDING if deciding else _LINK,
                                          {"subscription_id": sid, "outbox_id": oid}).one_or_none()
    if row is None:
        raise BadToken("invalid")
    return SubscriptionRow.of(row)


def _link_statement(*, deciding: bool, one_statement: bool = False):
    """The one SELECT of a confirm/cancel link, built once (Core, run on the session's connection)."""
    columns = [*SUBSCRIPTION_COLUMNS, MailingList.name.label("list_name"), MailingList.sender_name,
               MailingList.confirm_redirect_url, OutboxMessage.id.label("outbox_id"), OutboxMessage.message_id,
               OutboxMessage.sent_at, OutboxMessage.created_at.label("mail_created_at"),
               # The branding from the joined list (not a scalar subquery per column).
               *(getattr(MailingList, name).label(f"brand_{name}") for name in BRAND_FIELDS),
               ListLogo.sha256.label("brand_logo_sha")]
    if deciding:
        columns += [pending_mails(), select(ConsentEvent.source).where(
            ConsentEvent.subscription_id == Subscription.id, ConsentEvent.type == EventType.SUBSCRIBE_REQUESTED,
        ).order_by(ConsentEvent.id.desc()).limit(1).correlate(Subscription).scalar_subquery().label("channel")]
    if one_statement:
        columns.append(has_webhooks())
    return (
        select(*columns)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .join(OutboxMessage, (OutboxMessage.id == bindparam("outbox_id"))
              & (OutboxMessage.subscription_id == Subscription.id))
        .outerjoin(ListLogo, ListLogo.list_id == Subscription.list_id)
        .where(Subscription.id == bindparam("subscription_id"))
    )


_LINK = _link_statement(deciding=False)
_LINK_DECIDING = _link_statement(deciding=True)
_LINK_ONE_STATEMENT = _link_statement(deciding=True, one_statement=True)
_CONFIRM_WITH_EVENT = update_with_event(
    Subscription.status == Status.PENDING, Subscription.pending_since == bindparam("round_since"),
    status=Status.SUBSCRIBED, updated_at=bindparam("changed_at"), confirmed_at=bindparam("changed_at"))


def _link_view(link: SubscriptionRow, *, status: Status | None = None, newly_confirmed=False) -> ConfirmLink:
    status = status or link.status
    gate = dt.timedelta(seconds=setting("CONFIRM_CLICK_GATE"))
    auto = status == Status.PENDING and link.sent_at is not None and now() - link.sent_at >= gate
    return ConfirmLink(link.id, status, link.list_name, link.sender_name, link.consent_text or "",
                       link.language, auto, link.confirm_redirect_url, newly_confirmed, brand_of_row(link))


def _round_is_current(link: SubscriptionRow) -> bool:
    """A mail from an earlier, ended opt-in round can neither confirm nor cancel this one."""
    return link.pending_since is not None and link.mail_created_at >= link.pending_since


def view_confirm_link(token: str, *, meta: RequestMeta, method: str = "GET") -> ConfirmLink:
    """Describe a confirmation link for its page and keep the fetch as an observation.

    Changes no subscription state (G3/G6): the token stays valid, nothing is consumed.
    """
    link = _load_link(token)
    if link.status == Status.PENDING and not _round_is_current(link):
        raise BadToken("expired", subscription_id=link.id)
    with unit_of_work() as uow:
        if link.status == Status.PENDING and _fetch_count(link.id) < MAX_FETCH_OBSERVATIONS:
            since_sent = (meta.at - link.sent_at).total_seconds() if link.sent_at else None
            record_event(uow.session, link, EventType.LINK_FETCHED, meta=meta, source="page", details={
                "method": method, "message_id": link.message_id,
                "seconds_since_sent": round(since_sent, 1) if since_sent is not None else None,
                "before_click_gate": since_sent is None or since_sent < setting("CONFIRM_CLICK_GATE"),
            })
    return _link_view(link)


def _fetch_count(subscription_id: int) -> int:
    return db.session.scalar(
        select(func.count(ConsentEvent.id)).where(ConsentEvent.subscription_id == subscription_id,
                                                  ConsentEvent.type == EventType.LINK_FETCHED)
    )


def _decide(session, link: SubscriptionRow, to: Status, **values) -> bool:
    """Move a pending subscription of the link's round to ``to``; ``False`` when another
    request decided first or a new round began (guarded UPDATE: exactly one wins)."""
    if to == Status.SUBSCRIBED and set(values) == {"at", "confirmed_at"}:
        return bool(session.connection().execute(_DECIDE_CONFIRMED, {
            "subscription_id": link.id, "round_since": link.pending_since, "at": values["at"],
            "decided_at": values["confirmed_at"]}).rowcount)
    statement = (
        update(Subscription.__table__)
        .where(Subscription.id == bindparam("subscription_id"), Subscription.status == Status.PENDING,
               Subscription.pending_since == bindparam("round_since"))
        .values(status=to, updated_at=values.pop("at"), **values))
    return bool(session.connection().execute(statement, {
        "subscription_id": link.id, "round_since": link.pending_since}).rowcount)


#: ``_decide``'s confirmation, built once.
_DECIDE_CONFIRMED = (
    update(Subscription.__table__)
    .where(Subscription.id == bindparam("subscription_id"), Subscription.status == Status.PENDING,
           Subscription.pending_since == bindparam("round_since"))
    .values(status=Status.SUBSCRIBED, updated_at=bindparam("at"), confirmed_at=bindparam("decided_at")))


def confirm_subscription(token: str, *, meta: RequestMeta, method: str) -> ConfirmLink:
    """Confirm by the person's POST. A repeat (double submit) succeeds and records nothing.

    A link of an earlier round is ``expired``. An entry that blocks the round's confirmation
    mail (a marketer's manual suppression, a bounce, anything added after the person asked)
    also blocks its confirmation: ``ConfirmationBlocked``, nothing changed. The person's own
    entries they may override (``erasure``, ``unsubscribed``, ``not_me``) are lifted.

    Four statements: the link (subscription, list, mail), the suppression entries, the
    guarded UPDATE, the event.
    """
    if method not in ("button", "auto"):
        method = "button"
    if db.engine.dialect.name == "postgresql":
        confirmed = _confirm_in_one_statement(token, meta=meta, method=method)
        if confirmed is not None:
            return confirmed
    link = _load_link(token, deciding=True)
    if link.status == Status.SUBSCRIBED:
        return _link_view(link)
    if link.status != Status.PENDING or not _round_is_current(link):
        raise BadToken("expired", subscription_id=link.id)
    with unit_of_work() as uow:
        keys = [link.address_hash] + ([domain_key(link.email)] if link.email else [])
        found = entries_for(link.account_id, keys)
        matches = [m for key in keys for m in found.get(key, ())]
        person = link.channel in PERSON_CHANNELS
        if matches and blocking(matches, person_initiated=person, asked_at=link.requested_at) is not None:
            log.info("subscription %s not confirmed: the address is suppressed", link.id)
            raise ConfirmationBlocked("This address can no longer be subscribed to this list.")
        won = _decide(uow.session, link, next_status(Status.PENDING, EventType.CONFIRMED), at=meta.at,
                      confirmed_at=meta.at)
        if won:
            since_sent = (meta.at - link.sent_at).total_seconds() if link.sent_at else None
            record_applied(uow.session, link, EventType.CONFIRMED, meta=meta, source="page", details={
                "method": method, "message_id": link.message_id, "outbox_id": link.outbox_id,
                "seconds_since_sent": round(since_sent, 1) if since_sent is not None else None,
            })
            if link.pending_mails:
                outbox.skip_pending_confirmations(uow, link.id, reason="confirmed")
            if any(person_may_override(m) for m in matches):
                lift_on_confirmation(uow.session, link, meta=meta)
    if not won:  # a parallel submit won, or a new round began meanwhile
        status = db.session.scalar(select(Subscription.status).where(Subscription.id == link.id))
        if status != Status.SUBSCRIBED:
            raise BadToken("expired", subscription_id=link.id)
        return _link_view(link, status=status)
    log.info("subscription %s confirmed (%s)", link.id, method)
    return _link_view(link, status=Status.SUBSCRIBED, newly_confirmed=True)


def _confirm_in_one_statement(token: str, *, meta: RequestMeta, method: str) -> ConfirmLink | None:
    """The common confirmation on PostgreSQL in three round trips and no explicit
    transaction: the link and the suppression entries read in autocommit, then one statement
    that confirms the round (guarded UPDATE) and inserts the event only if it won
    (``rows.update_with_event``).

    ``None`` when ``confirm_subscription``'s general path must decide: the link is not a
    pending current round, the address has suppression entries (they may block, or be
    lifted), the account has webhook endpoints, mails of the signup still wait, or another
    request changed the row meanwhile.
    """
    sid, oid = _decode(token, purpose=Purpose.CONFIRM, max_age=setting("CONFIRM_MAX_AGE"))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        row = connection.execute(_LINK_ONE_STATEMENT, {"subscription_id": sid, "outbox_id": oid}).one_or_none()
        if row is None:
            return None
        link = SubscriptionRow.of(row)
        if (link.status != Status.PENDING or not _round_is_current(link) or link.has_webhooks
                or link.pending_mails):
            return None
        keys = [link.address_hash] + ([domain_key(link.email)] if link.email else [])
        found = entries_for(link.account_id, keys, connection=connection)
        if any(found.get(key) for key in keys):
            return None
        since_sent = (meta.at - link.sent_at).total_seconds() if link.sent_at else None
        event = ledger.event_values(
            email=link.email, account_id=link.account_id, subscription_id=link.id, list_id=link.list_id,
            type=EventType.CONFIRMED, at=meta.at, ip=meta.ip, user_agent=meta.user_agent, source="page", details={
                "method": method, "message_id": link.message_id, "outbox_id": link.outbox_id,
                "seconds_since_sent": round(since_sent, 1) if since_sent is not None else None,
            })
        won = connection.execute(_CONFIRM_WITH_EVENT, {
            "the_subscription": link.id, "round_since": link.pending_since, "email_read": link.email,
            "changed_at": meta.at, **event_parameters(event)}).first() is not None
    if not won:
        return None
    log.info("subscription %s confirmed (%s)", link.id, method)
    return _link_view(link, status=Status.SUBSCRIBED, newly_confirmed=True)


def cancel_subscription(token: str, *, meta: RequestMeta) -> ConfirmLink:
    """"This was not me": cancel a pending signup and stop confirmation mails from the account.

    The link belongs to its round and expires like the confirm link: a link of an earlier
    round never cancels a later one (``expired``). The account-wide ``not_me`` entry is the
    only way to keep the promise without keeping the address; the person's own later signup
    on the hosted form passes it, and confirming that signup lifts it (recorded). A
    confirmed subscription is not touched (that is unsubscribe).
    """
    link = _load_link(token, purpose=Purpose.CANCEL, deciding=True)
    if link.status == Status.PENDING and not _round_is_current(link):
        raise BadToken("expired")
    if link.status != Status.PENDING:
        return _link_view(link)
    with unit_of_work() as uow:
        won = _decide(uow.session, link, next_status(Status.PENDING, EventType.CANCELLED), at=meta.at)
        if won:
            record_event(uow.session, link, EventType.CANCELLED, meta=meta, source="page", applied=True,
                         details={"message_id": link.message_id, "outbox_id": link.outbox_id})
            add_suppression(uow.session, account_id=link.account_id, address_hash=link.address_hash,
                            reason="not_me", source=f"subscription:{link.id}")
            if link.pending_mails:
                outbox.skip_pending_confirmations(uow, link.id, reason="cancelled")
    if won:
        log.info("subscription %s cancelled by recipient", link.id)
    status = Status.CANCELLED if won else db.session.scalar(
        select(Subscription.status).where(Subscription.id == link.id))
    return _link_view(link, status=status)


def view_cancel_link(token: str) -> ConfirmLink:
    link = _load_link(token, purpose=Purpose.CANCEL)
    if link.status == Status.PENDING and not _round_is_current(link):
        raise BadToken("expired")
    return _link_view(link)


def renew_confirmation(token: str, *, meta: RequestMeta) -> None:
    """Send a fresh link in answer to an expired (or superseded) one, if the signup is
    still waiting. Returns nothing either way: the caller only proved they once held a
    link, so they learn nothing about the subscription.
    """
    try:
        link = _load_link(token)
        if _round_is_current(link):
            return  # the link still works; nothing to renew
        subscription_id = link.id
    except BadToken as exc:
        if exc.kind != "expired" or exc.subscription_id is None:
            return
        subscription_id = exc.subscription_id
    sub = db.session.get(Subscription, subscription_id)
    if sub is None or sub.status != Status.PENDING or sub.email is None:
        return
    try:
        with unit_of_work() as uow:
            if blocks_confirmation(sub) is not None:
                return
            ip_hash = hash_address_ip(meta.ip)
            held = flood.count_confirmation(uow.session, account_id=sub.account_id,
                                            address_hash=sub.address_hash, ip_hash=ip_hash)
            outbox.add_confirmation(uow, sub, signup_ip_hash=ip_hash, held=held)
    except RateLimited as exc:  # the page says the same either way
        log.info("renewal for subscription %s not sent: %s", subscription_id, type(exc).__name__)


def get_subscription(account_id: int, subscription_id: int) -> Subscription:
    sub = db.session.get(Subscription, subscription_id)
    if sub is None or sub.account_id != account_id:
        raise NotFound("No such subscription.")
    return sub


def list_subscriptions(account_id: int, list_id: int, *, status: str | None, after: int | None,
                       limit: int) -> list[Subscription]:
    """A page of a list's subscriptions in id order, starting after the cursor id."""
    get_list(account_id, list_id)
    query = select(Subscription).where(Subscription.list_id == list_id)
    if status:
        query = query.where(Subscription.status == Status(status))
    if after:
        query = query.where(Subscription.id > after)
    return list(db.session.scalars(query.order_by(Subscription.id).limit(limit)))
