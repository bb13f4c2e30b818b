"""Unsubscribe: one rule behind every channel (one-click, page, mailto, marketer API).

The signed token in the link (or in the mailto address) is the only authority: it names
the subscription and, for a campaign, the campaign; never the address. Tokens do not
expire and keep working after key rotation (while the old key is listed) and after the
person was erased, because an opt-out must never fail (standards A9, A14).

Every unsubscribe appends an ``unsubscribed`` consent event saying when, through which
``method`` (``one-click``, ``page``, ``mailto``, ``api``) and who sent the request
(``actor``): a one-click POST comes from the mailbox provider's servers on the person's
behalf, so its IP and user agent are kept as the provider's, never as the subscriber's
evidence (A13). Repeats change nothing and answer the same. Viewing a link changes nothing
(scanners fetch links, G3).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from flexmail.domain.consent import EventType, Status
from flexmail.domain.tokens import Purpose, TokenError
from flexmail.extensions import db
from flexmail.mail.headers import LIST_UNSUBSCRIBE, LIST_UNSUBSCRIBE_POST, list_unsubscribe_headers
from flexmail.models import ConsentEvent, MailingList, Subscription
from flexmail.services.consent.branding import Brand, brand_of_row
from flexmail.services.consent.rows import (
    BRAND_FIELDS,
    SUBSCRIPTION_COLUMNS,
    SubscriptionRow,
    brand_columns,
    event_parameters,
    has_webhooks,
    list_column,
    pending_mails,
    update_with_event,
)
from flexmail.services.consent.subscriptions import get_subscription, request_subscription
from flexmail.services.delivery import outbox
from flexmail.services.delivery.addressing import inbound_domain
from flexmail.services.evidence import ledger
from flexmail.services.evidence.proof import record_applied, record_event
from flexmail.services.marketer.lists import get_list
from flexmail.services.platform.context import RequestMeta, setting, signer
from flexmail.services.platform.errors import BadToken, RateLimited, Suppressed
from flexmail.services.platform.metrics import UNSUBSCRIBES
from flexmail.services.platform.unit_of_work import unit_of_work
from flexmail.services.suppression.suppressions import add_suppression

log = logging.getLogger(__name__)

METHODS = ("one-click", "page", "mailto", "api")
#: Who sent the request, per method: the proof must not pass a provider's IP off as the person's.
ACTORS = {"one-click": "mailbox_provider", "page": "recipient", "mailto": "mail_system", "api": "marketer"}
#: The optional answers to "why are you leaving?"; the marketer sees only their counts.
REASONS = ("too_many", "not_relevant", "never_signed_up", "other")
#: Local part prefix of the mailto address: ``unsub-<compact token>@<inbound domain>``.
MAILTO_PREFIX = "unsub-"
ACTIVE = (Status.PENDING, Status.SUBSCRIBED)
#: The source of the account-wide entry that "stop all mail from this sender" makes.
SUPPRESSION_SOURCE = "unsubscribe:{}"


# --- links and header values -------------------------------------------------------------

def _ids(subscription_id: int, campaign_id: int | None) -> list[int]:
    return [subscription_id] if campaign_id is None else [subscription_id, campaign_id]


def unsubscribe_url(subscription_id: int, *, campaign_id: int | None = None) -> str:
    """The per-recipient one-click URL: ``<PUBLIC_URL>/unsubscribe/<token>`` (no trailing slash)."""
    token = signer().dumps_untimed(Purpose.UNSUBSCRIBE, _ids(subscription_id, campaign_id))
    return f"{setting('PUBLIC_URL')}/unsubscribe/{token}"


def mailto_address(subscription_id: int, *, campaign_id: int | None = None) -> str:
    """``unsub-<token>@<inbound domain>``; the token survives case changes (see ``dumps_compact``)."""
    token = signer().dumps_compact(Purpose.UNSUBSCRIBE, _ids(subscription_id, campaign_id))
    return f"{MAILTO_PREFIX}{token}@{inbound_domain()}"


@dataclass(frozen=True)
class UnsubscribeHeaders:
    """What a sender needs for one recipient: the URL and both header values, ready to paste."""

    url: str
    mailto: str
    list_unsubscribe: str
    list_unsubscribe_post: str
    #: For ``compose(extra_headers=...)``: the List-Unsubscribe value folds safely (K1).
    headers: dict


def link_headers(subscription_id: int, *, campaign_id: int | None = None) -> UnsubscribeHeaders:
    """The unsubscribe URL, mailto address and header values of one subscription (and campaign)."""
    url = unsubscribe_url(subscription_id, campaign_id=campaign_id)
    mailto = mailto_address(subscription_id, campaign_id=campaign_id)
    headers = list_unsubscribe_headers(url, mailto)
    return UnsubscribeHeaders(url, mailto, str(headers[LIST_UNSUBSCRIBE]), headers[LIST_UNSUBSCRIBE_POST],
                              headers)


# --- the page ------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnsubscribeLink:
    """What the unsubscribe pages need to know about a link. Never the full address."""

    subscription_id: int
    #: ``None``: the link is genuine but its subscription no longer exists (nothing to stop).
    status: Status | None
    list_name: str | None = None
    sender_name: str | None = None
    language: str = "en"
    #: ``r•••@example.com``, or ``None`` once the person was erased.
    masked_email: str | None = None
    #: The list's consent wording, shown beside the undo (which asks for it again).
    consent_text: str | None = None
    #: An undo (a new double opt-in) is possible: the address is still known.
    can_undo: bool = False
    #: Set by ``unsubscribe_by_token``: this call made the change / stopped all mail.
    newly_unsubscribed: bool = False
    all_lists: bool = False
    #: The list's branding, read with the link (pages need no query of their own).
    brand: Brand | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def mask_address(email: str | None) -> str | None:
    """``Reader@example.com`` -> ``R•••@example.com``: enough to recognise, not to harvest."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}•••@{domain}"


def _load(token: str) -> tuple[Subscription | None, MailingList | None, int | None, int]:
    """Decode a link token into (subscription, list, campaign id, subscription id)."""
    return _load_ids(list(_decode(token)))


def _load_ids(ids: list[int]):
    subscription_id = ids[0]
    campaign_id = ids[1] if len(ids) > 1 else None
    sub = db.session.get(Subscription, subscription_id)
    lst = db.session.get(MailingList, sub.list_id) if sub is not None else None
    return sub, lst, campaign_id, subscription_id


def _view(sub, lst, subscription_id, **flags) -> UnsubscribeLink:
    if sub is None:
        return UnsubscribeLink(subscription_id, None, **flags)
    return UnsubscribeLink(
        sub.id, sub.status, lst.name, lst.sender_name, lst.language or "en", mask_address(sub.email),
        lst.consent_text, sub.email is not None, **flags,
    )


def view_unsubscribe_link(token: str) -> UnsubscribeLink:
    """Describe a link for its page. Reads only: GET and HEAD must change nothing (A10, G3)."""
    sub, lst, _, subscription_id = _load(token)
    return _view(sub, lst, subscription_id)


# --- unsubscribing -------------------------------------------------------------------------

def _apply(uow, sub: Subscription, *, meta: RequestMeta, method: str, details: dict) -> bool:
    """Move ``sub`` to unsubscribed with its event; ``False`` if it was not active.

    The guarded UPDATE lets concurrent requests (a provider retrying, two clicks) race
    safely: exactly one records the event.
    """
    if sub.status not in ACTIVE:
        return False
    won = uow.session.execute(
        update(Subscription)
        .where(Subscription.id == sub.id, Subscription.status.in_(ACTIVE))
        .values(status=Status.UNSUBSCRIBED, unsubscribed_at=meta.at, updated_at=meta.at)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won:
        record_event(uow.session, sub, EventType.UNSUBSCRIBED, meta=meta, source=method, applied=True,
                     details={"method": method, "actor": ACTORS[method], **details})
        # A confirmation still queued for this signup must not go out any more.
        outbox.skip_pending_confirmations(uow, sub.id, reason="unsubscribed")
        uow.after_commit(UNSUBSCRIBES.labels(method).inc)  # the one place unsubscribes are counted
    return bool(won)


def _stop_all(uow, sub: Subscription, *, meta: RequestMeta, method: str, details: dict) -> None:
    """"Stop all mail from this sender": account-wide suppression plus every other list."""
    row, made = add_suppression(uow.session, account_id=sub.account_id, address_hash=sub.address_hash,
                                reason="unsubscribed", source=SUPPRESSION_SOURCE.format(sub.id), email=sub.email,
                                created_by=ACTORS[method])
    if made:  # not an entry that was already there
        record_event(uow.session, sub, EventType.SUPPRESSED, meta=meta, source=method, details={
            "method": method, "actor": ACTORS[method], "scope": "account", "reason": "unsubscribed",
            "suppression_id": row.id,
        })
    others = uow.session.scalars(
        select(Subscription).where(Subscription.account_id == sub.account_id,
                                   Subscription.address_hash == sub.address_hash,
                                   Subscription.id != sub.id, Subscription.status.in_(ACTIVE))
        .order_by(Subscription.id)
    ).all()
    for other in others:
        _apply(uow, other, meta=meta, method=method, details={**details, "via_subscription": sub.id})


def unsubscribe_by_token(token: str, *, meta: RequestMeta, method: str, all_lists: bool = False,
                         reason: str | None = None) -> UnsubscribeLink:
    """Unsubscribe the subscription a link names; any POST to a genuine link does it.

    ``method`` is ``one-click`` or ``page``; ``all_lists`` (page only) also suppresses the
    address for the whole account and unsubscribes its other lists. An unknown ``reason``
    is dropped, never a reason to refuse. A repeat, or a link whose subscription is gone,
    answers as a success and records nothing new.

    Everything this function needs comes from the token and ``meta`` (a spool can keep
    its arguments and call it again later). The one-list case is two statements: one
    ``UPDATE ... RETURNING`` (which also reads what the page shows) and the event; a repeat
    is that UPDATE, matching nothing, and one SELECT for the page.
    """
    if method not in ("one-click", "page"):
        raise ValueError(f"not a link method: {method}")
    all_lists = all_lists and method == "page"  # one-click removes only its own list (A12)
    subscription_id, campaign_id = _decode(token)
    details = {"scope": "account" if all_lists else "list"}
    if campaign_id is not None:
        details["campaign_id"] = campaign_id
    if method == "page" and reason in REASONS:
        details["reason"] = reason
    if all_lists:
        return _unsubscribe_all(subscription_id, meta=meta, method=method, details=details)
    if db.engine.dialect.name == "postgresql":
        link = _unsubscribe_in_one_statement(subscription_id, meta=meta, method=method, details=details)
        if link is not None:
            return link
    with unit_of_work() as uow:
        row = SubscriptionRow.of(uow.session.connection().execute(
            _UNSUBSCRIBE_LINK, {"subscription_id": subscription_id, "at": meta.at}).one_or_none())
        if row is not None:
            record_applied(uow.session, row, EventType.UNSUBSCRIBED, meta=meta, source=method,
                           details={"method": method, "actor": ACTORS[method], **details})
            uow.after_commit(UNSUBSCRIBES.labels(method).inc)  # (the link path's twin of _apply's count)
            if row.pending_mails:  # a confirmation still queued for this signup must not go out
                outbox.skip_pending_confirmations(uow, row.id, reason="unsubscribed")
    won = row is not None
    if not won:  # a repeat, or a subscription that is gone: read what the page shows
        row = SubscriptionRow.of(db.session.connection().execute(
            _READ_LINK, {"subscription_id": subscription_id}).one_or_none())
        if row is None:
            log.info("unsubscribe link for missing subscription %s (%s): nothing to do", subscription_id, method)
            return UnsubscribeLink(subscription_id, None)
    log.info("subscription %s unsubscribe via %s: %s", row.id, method, "done" if won else "no change")
    return _row_view(row, newly_unsubscribed=won)


def _unsubscribe_in_one_statement(subscription_id: int, *, meta: RequestMeta, method: str,
                                  details: dict) -> UnsubscribeLink | None:
    """The link path on PostgreSQL in two round trips and no explicit transaction: read the
    link (autocommit), then one statement that makes the guarded UPDATE and inserts the
    event only if the UPDATE won (``WITH changed AS (UPDATE ...) INSERT ... SELECT FROM
    changed``), atomic on its own. The event's hashes are computed from the row as read; the
    UPDATE also requires the address to be the one read, so a concurrent erasure cannot
    leave an event that commits to an address the row no longer has.

    ``None`` when the general path must run instead: the account has webhook endpoints (their
    deliveries go in the same transaction, ``services.delivery.webhooks``), a confirmation mail still
    waits (it must be skipped too), or the row changed between the two statements.
    """
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        row = connection.execute(_READ_LINK_FAST, {"subscription_id": subscription_id}).one_or_none()
        if row is None or row.status not in ACTIVE:  # gone, or a repeat: nothing to write
            return None if row is None else _row_view(SubscriptionRow.of(row), newly_unsubscribed=False)
        if row.has_webhooks or row.pending_mails:
            return None
        sub = SubscriptionRow.of(row)
        event = ledger.event_values(
            email=sub.email, account_id=sub.account_id, subscription_id=sub.id, list_id=sub.list_id,
            type=EventType.UNSUBSCRIBED, at=meta.at, ip=meta.ip, user_agent=meta.user_agent, source=method,
            details={"method": method, "actor": ACTORS[method], **details})
        won = connection.execute(_UNSUBSCRIBE_WITH_EVENT, {
            "the_subscription": sub.id, "email_read": sub.email, "changed_at": meta.at,
            **event_parameters(event)}).first() is not None
    if not won:
        return None  # someone else changed the row meanwhile: the general path decides
    UNSUBSCRIBES.labels(method).inc()
    log.info("subscription %s unsubscribe via %s: done", sub.id, method)
    sub.status = Status.UNSUBSCRIBED
    return _row_view(sub, newly_unsubscribed=True)


#: What the page shows of the list, read in the same statement as the subscription.
_LIST_COLUMNS = tuple(list_column(column, label) for column, label in (
    (MailingList.name, "list_name"), (MailingList.sender_name, "sender_name"),
    (MailingList.language, "list_language"), (MailingList.consent_text, "list_consent_text"))) + brand_columns()

#: The link's two statements, built once (Core, run on the session's connection: no ORM
#: bulk-update machinery per request). The guarded UPDATE lets concurrent requests (a
#: provider retrying, two clicks) race safely: exactly one gets the row back.
_UNSUBSCRIBE_LINK = (
    update(Subscription.__table__)
    .where(Subscription.id == bindparam("subscription_id"), Subscription.status.in_(ACTIVE))
    .values(status=Status.UNSUBSCRIBED, unsubscribed_at=bindparam("at"), updated_at=bindparam("at"))
    .returning(*SUBSCRIPTION_COLUMNS, *_LIST_COLUMNS, pending_mails())
)
_READ_LINK = select(*SUBSCRIPTION_COLUMNS, *_LIST_COLUMNS).where(Subscription.id == bindparam("subscription_id"))
def _read_link_joined():
    """The one-statement path's read: the same columns as ``_READ_LINK`` (same labels), the
    list joined once instead of a scalar subquery per column (a plain SELECT may join; the
    UPDATE ... RETURNING of the general path may not on SQLite), plus what decides the path."""
    from flexmail.models import ListLogo

    listed = [(MailingList.name, "list_name"), (MailingList.sender_name, "sender_name"),
              (MailingList.language, "list_language"), (MailingList.consent_text, "list_consent_text"),
              *((getattr(MailingList, name), f"brand_{name}") for name in BRAND_FIELDS)]
    return (
        select(*SUBSCRIPTION_COLUMNS, *(column.label(label) for column, label in listed),
               ListLogo.sha256.label("brand_logo_sha"), pending_mails(), has_webhooks())
        .join(MailingList, MailingList.id == Subscription.list_id)
        .outerjoin(ListLogo, ListLogo.list_id == Subscription.list_id)
        .where(Subscription.id == bindparam("subscription_id"))
    )


_READ_LINK_FAST = _read_link_joined()


_UNSUBSCRIBE_WITH_EVENT = update_with_event(
    Subscription.status.in_(ACTIVE),
    status=Status.UNSUBSCRIBED, unsubscribed_at=bindparam("changed_at"), updated_at=bindparam("changed_at"))


def _decode(token: str) -> tuple[int, int | None]:
    try:
        ids = signer().loads_untimed(Purpose.UNSUBSCRIBE, token)
    except TokenError:
        raise BadToken("invalid") from None
    if not 1 <= len(ids) <= 2:
        raise BadToken("invalid")
    return ids[0], ids[1] if len(ids) > 1 else None


def _row_view(row, **flags) -> UnsubscribeLink:
    return UnsubscribeLink(
        row.id, row.status, row.list_name, row.sender_name, row.list_language or "en", mask_address(row.email),
        row.list_consent_text, row.email is not None, brand=brand_of_row(row), **flags,
    )


def _unsubscribe_all(subscription_id: int, *, meta: RequestMeta, method: str, details: dict) -> UnsubscribeLink:
    """The page's "stop all mail from this sender": this list, every other list, and an
    account-wide suppression entry."""
    sub, lst, _, _ = _load_ids([subscription_id])
    if sub is None:
        log.info("unsubscribe link for missing subscription %s (%s): nothing to do", subscription_id, method)
        return _view(None, None, subscription_id)
    for attempt in range(2):
        try:
            with unit_of_work() as uow:
                won = _apply(uow, sub, meta=meta, method=method, details=details)
                _stop_all(uow, sub, meta=meta, method=method, details=details)
            break
        except IntegrityError:
            # Two "stop all" requests raced to make the same suppression entry; the second
            # try finds the entry the first one made.
            if attempt:
                raise
    log.info("subscription %s unsubscribe via %s: %s (all lists of the account)", sub.id, method,
             "done" if won else "no change")
    return _view(sub, lst, sub.id, newly_unsubscribed=won, all_lists=True)


def unsubscribe_subscription(account_id: int, subscription_id: int, *, meta: RequestMeta,
                             api_key_id: int | None = None) -> Subscription:
    """The marketer unsubscribes someone (source ``api``). A repeat changes nothing.

    ``meta`` describes the API request (the marketer's system), recorded as such.
    """
    sub = get_subscription(account_id, subscription_id)
    with unit_of_work() as uow:
        won = _apply(uow, sub, meta=meta, method="api", details={"scope": "list", "api_key_id": api_key_id})
    log.info("subscription %s unsubscribe via api: %s", subscription_id, "done" if won else "no change")
    return get_subscription(account_id, subscription_id)


# --- mailto --------------------------------------------------------------------------------

def _mailto_ids(address: str) -> list[int] | None:
    """The ids of an ``unsub-<token>@<inbound domain>`` address, or ``None`` if it is not one."""
    if not isinstance(address, str):
        return None
    local, at, domain = address.strip().strip("<>").rpartition("@")
    if not at or domain.rstrip(".").lower() != inbound_domain():
        return None
    if not local.lower().startswith(MAILTO_PREFIX):
        return None
    try:
        return signer().loads_compact(Purpose.UNSUBSCRIBE, local[len(MAILTO_PREFIX):])
    except TokenError:
        return None


def is_unsubscribe_address(address: str) -> bool:
    """True for a genuine unsubscribe mailto address of ours (checked before taking mail)."""
    return _mailto_ids(address) is not None


def unsubscribe_by_mailto(address: str, *, meta: RequestMeta, message_sha256: str | None = None) -> bool:
    """Unsubscribe for a mail to ``address`` (the envelope recipient, standards B6).

    Returns ``False``, having changed nothing, when the address is not a genuine
    unsubscribe address of ours. The sender's From and Subject are ignored: people edit
    them and forwarding rewrites them. The digest of the received message is kept as
    evidence of the request without keeping its content.
    """
    ids = _mailto_ids(address)
    if ids is None:
        return False
    sub, _, campaign_id, subscription_id = _load_ids(ids)
    if sub is None:
        log.info("mailto unsubscribe for missing subscription %s: nothing to do", subscription_id)
        return True
    details = {"scope": "list", "message_sha256": message_sha256}
    if campaign_id is not None:
        details["campaign_id"] = campaign_id
    with unit_of_work() as uow:
        won = _apply(uow, sub, meta=meta, method="mailto", details=details)
    log.info("subscription %s unsubscribe via mailto: %s", sub.id, "done" if won else "no change")
    return True


# --- undo ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class UndoResult:
    link: UnsubscribeLink
    #: ``sent`` (a confirmation mail is queued), ``subscribed`` (nothing to undo),
    #: ``rate_limited`` or ``not_possible`` (erased, or suppressed for another reason).
    outcome: str
    retry_after: int | None = None


def undo_unsubscribe(token: str, *, meta: RequestMeta) -> UndoResult:
    """Changed one's mind: a new double opt-in for the link's list, never a direct resubscribe.

    The signup goes through ``request_subscription`` with channel ``undo``: the person acts
    themselves, so an ``unsubscribed`` entry they made with "stop all mail" does not refuse
    it (``services.suppression.suppressions``), and only their click in the fresh confirmation mail
    lifts that entry. Until then every list of the sender stays stopped; the other lists
    stay unsubscribed even after it, each needs its own opt-in. Flood limits apply.
    """
    sub, lst, _, subscription_id = _load(token)
    if sub is None or sub.email is None:
        return UndoResult(_view(sub, lst, subscription_id), "not_possible")
    if sub.status == Status.SUBSCRIBED:
        return UndoResult(_view(sub, lst, sub.id), "subscribed")
    try:
        request_subscription(sub.account_id, sub.list_id, email=sub.email, meta=meta,
                             source="unsubscribe-page:undo", channel="undo")
    except RateLimited as exc:
        log.info("undo for subscription %s refused: rate limited", sub.id)
        return UndoResult(_view(sub, lst, sub.id), "rate_limited", exc.retry_after)
    except Suppressed:
        log.info("undo for subscription %s refused: suppressed", sub.id)
        return UndoResult(_view(sub, lst, sub.id), "not_possible")
    log.info("undo for subscription %s: new confirmation queued", sub.id)
    return UndoResult(_view(sub, lst, sub.id), "sent")


# --- what the marketer sees --------------------------------------------------------------

def unsubscribe_reasons(account_id: int, list_id: int) -> dict:
    """Counts of unsubscribes of a list by the reason people gave; nothing per person."""
    get_list(account_id, list_id)
    reason = ConsentEvent.details["reason"].as_string()
    rows = db.session.execute(
        select(reason, func.count(ConsentEvent.id))
        .join(Subscription, Subscription.id == ConsentEvent.subscription_id)
        .where(Subscription.list_id == list_id, ConsentEvent.type == EventType.UNSUBSCRIBED)
        .group_by(reason)
    )
    counts = dict.fromkeys(REASONS, 0)
    none = 0
    for value, count in rows:
        if value in counts:
            counts[value] += count
        else:
            none += count
    return {"list_id": list_id, "unsubscribes": sum(counts.values()) + none, "reasons": counts, "no_reason": none}
