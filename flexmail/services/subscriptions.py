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

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from flexmail.clock import now
from flexmail.domain.consent import EventType, Status, next_status
from flexmail.domain.tokens import Purpose, TokenError
from flexmail.extensions import db
from flexmail.models import ConsentEvent, MailingList, OutboxMessage, Subscription
from flexmail.services import outbox
from flexmail.services.context import (
    RequestMeta,
    hash_address,
    parse_address,
    setting,
    signer,
)
from flexmail.services.errors import BadToken, NotFound, RateLimited, Suppressed, ValidationFailed
from flexmail.services.flood import check_confirmation_allowed
from flexmail.services.lists import get_list
from flexmail.services.proof import record_event
from flexmail.services.suppressions import (
    add_suppression,
    blocks_confirmation,
    blocks_signup,
    lift_on_confirmation,
)
from flexmail.services.unit_of_work import unit_of_work

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


def request_subscription(account_id: int, list_id: int, *, email: str, meta: RequestMeta,
                         consent_text: str | None = None, source: str | None = None,
                         channel: str = "api") -> SubscribeResult:
    """Start (or restart) double opt-in for ``email`` on a list.

    Already subscribed: nothing is sent and nothing recorded. Suppressed for the account
    (or globally): ``Suppressed``. Any other state becomes pending with a fresh
    ``subscribe_requested`` event and one queued confirmation mail, within flood limits.
    """
    lst = get_list(account_id, list_id)
    address = parse_address(email)
    consent_text = (consent_text or lst.consent_text or "").strip()
    if not consent_text:
        raise ValidationFailed("Invalid input.", fields={"consent_text": ["Consent wording is required."]})
    if len(consent_text) > MAX_CONSENT_TEXT:
        raise ValidationFailed("Invalid input.", fields={"consent_text": ["At most 10000 characters."]})
    addr_hash = hash_address(address)
    for attempt in range(2):
        try:
            return _request(lst, address.normalized, addr_hash, meta=meta, consent_text=consent_text,
                            source=source, channel=channel)
        except IntegrityError:
            # Two first signups of one address raced on the unique key; the second try
            # finds the row the first one made.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _request(lst: MailingList, normalized: str, addr_hash: str, *, meta, consent_text, source, channel):
    with unit_of_work() as uow:
        if blocks_signup(lst.account_id, normalized, channel=channel) is not None:
            log.info("signup refused: address %s suppressed for account %s", addr_hash[:12], lst.account_id)
            raise Suppressed("This address must not be mailed by this account.")
        sub = uow.session.scalar(
            select(Subscription).where(Subscription.list_id == lst.id,
                                       Subscription.address_hash == addr_hash)
        )
        if sub is not None and sub.status == Status.SUBSCRIBED:
            return SubscribeResult(sub.id, sub.status, queued=False)
        ip_hash = hash_address_ip(meta.ip)
        check_confirmation_allowed(account_id=lst.account_id, address_hash=addr_hash, ip_hash=ip_hash)
        at = meta.at
        if sub is None:
            sub = Subscription(account_id=lst.account_id, list_id=lst.id, address_hash=addr_hash,
                               status=Status.PENDING, created_at=at, consent_text=consent_text)
            uow.session.add(sub)
            uow.session.flush()
        if sub.status != Status.PENDING or sub.pending_since is None:
            sub.pending_since = at
        sub.email = normalized
        sub.consent_text = consent_text
        sub.source = source
        sub.language = lst.language
        sub.requested_at = at
        record_event(uow.session, sub, EventType.SUBSCRIBE_REQUESTED, meta=meta, source=channel, details={
            "consent_text": consent_text,
            "consent_text_sha256": hashlib.sha256(consent_text.encode()).hexdigest(),
            "form_source": source, "list_name": lst.name, "language": lst.language,
        })
        message = outbox.add_confirmation(uow, sub, signup_ip_hash=ip_hash)
        log.info("subscription %s pending; confirmation %s queued", sub.id, message.id)
        return SubscribeResult(sub.id, sub.status, queued=True)


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


def _load_confirm(token: str, *, purpose: Purpose = Purpose.CONFIRM, max_age: int | None = None):
    """Decode a confirm/cancel token into its subscription, list and confirmation mail."""
    try:
        sid, oid = signer().loads(purpose, token, max_age=max_age)
    except TokenError as exc:
        sid = exc.payload[0] if exc.kind == "expired" and exc.payload else None
        raise BadToken(exc.kind, subscription_id=sid) from None
    except ValueError:  # a validly signed payload of the wrong shape
        raise BadToken("invalid") from None
    sub = db.session.get(Subscription, sid)
    message = db.session.get(OutboxMessage, oid)
    if sub is None or message is None or message.subscription_id != sub.id:
        raise BadToken("invalid")
    lst = db.session.get(MailingList, sub.list_id)
    return sub, lst, message


def _link_view(sub, lst, message, *, newly_confirmed=False) -> ConfirmLink:
    gate = dt.timedelta(seconds=setting("CONFIRM_CLICK_GATE"))
    auto = (sub.status == Status.PENDING and message.sent_at is not None
            and now() - message.sent_at >= gate)
    return ConfirmLink(sub.id, sub.status, lst.name, lst.sender_name, sub.consent_text or "",
                       sub.language, auto, lst.confirm_redirect_url, newly_confirmed)


def _round_is_current(sub: Subscription, message: OutboxMessage) -> bool:
    """A confirmation mail from an earlier, ended opt-in round cannot confirm this one."""
    return sub.pending_since is not None and message.created_at >= sub.pending_since


def view_confirm_link(token: str, *, meta: RequestMeta, method: str = "GET") -> ConfirmLink:
    """Describe a confirmation link for its page and keep the fetch as an observation.

    Changes no subscription state (G3/G6): the token stays valid, nothing is consumed.
    """
    sub, lst, message = _load_confirm(token, max_age=setting("CONFIRM_MAX_AGE"))
    if sub.status == Status.PENDING and not _round_is_current(sub, message):
        raise BadToken("expired", subscription_id=sub.id)
    with unit_of_work() as uow:
        if sub.status == Status.PENDING and _fetch_count(sub.id) < MAX_FETCH_OBSERVATIONS:
            since_sent = (meta.at - message.sent_at).total_seconds() if message.sent_at else None
            record_event(uow.session, sub, EventType.LINK_FETCHED, meta=meta, source="page", details={
                "method": method, "message_id": message.message_id,
                "seconds_since_sent": round(since_sent, 1) if since_sent is not None else None,
                "before_click_gate": since_sent is None or since_sent < setting("CONFIRM_CLICK_GATE"),
            })
    return _link_view(sub, lst, message)


def _fetch_count(subscription_id: int) -> int:
    return db.session.scalar(
        select(func.count(ConsentEvent.id)).where(ConsentEvent.subscription_id == subscription_id,
                                                  ConsentEvent.type == EventType.LINK_FETCHED)
    )


def confirm_subscription(token: str, *, meta: RequestMeta, method: str) -> ConfirmLink:
    """Confirm by the person's POST. A repeat (double submit) succeeds and records nothing."""
    if method not in ("button", "auto"):
        method = "button"
    sub, lst, message = _load_confirm(token, max_age=setting("CONFIRM_MAX_AGE"))
    if sub.status == Status.SUBSCRIBED:
        return _link_view(sub, lst, message)
    if sub.status != Status.PENDING or not _round_is_current(sub, message):
        raise BadToken("expired", subscription_id=sub.id)
    with unit_of_work() as uow:
        # The guarded UPDATE makes concurrent submits race safely: one wins, one sees 0 rows.
        won = uow.session.execute(
            update(Subscription)
            .where(Subscription.id == sub.id, Subscription.status == Status.PENDING)
            .values(status=next_status(Status.PENDING, EventType.CONFIRMED),
                    confirmed_at=meta.at, updated_at=meta.at)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won:
            since_sent = (meta.at - message.sent_at).total_seconds() if message.sent_at else None
            record_event(uow.session, sub, EventType.CONFIRMED, meta=meta, source="page", applied=True, details={
                "method": method, "message_id": message.message_id, "outbox_id": message.id,
                "seconds_since_sent": round(since_sent, 1) if since_sent is not None else None,
            })
            outbox.skip_pending_confirmations(uow, sub.id, reason="confirmed")
            lift_on_confirmation(uow.session, sub, meta=meta)
    db.session.refresh(sub)
    if won:
        log.info("subscription %s confirmed (%s)", sub.id, method)
    return _link_view(sub, lst, message, newly_confirmed=bool(won))


def cancel_subscription(token: str, *, meta: RequestMeta) -> ConfirmLink:
    """"This was not me": cancel a pending signup and stop confirmation mails from the account.

    The account-wide ``not_me`` suppression is the only way to keep that promise without
    keeping the address; a confirmed subscription is not touched (that is unsubscribe).
    """
    sub, lst, message = _load_confirm(token, purpose=Purpose.CANCEL)
    if sub.status == Status.PENDING:
        with unit_of_work() as uow:
            record_event(uow.session, sub, EventType.CANCELLED, meta=meta, source="page",
                         details={"message_id": message.message_id})
            add_suppression(uow.session, account_id=sub.account_id, address_hash=sub.address_hash,
                            reason="not_me", source=f"subscription:{sub.id}")
            outbox.skip_pending_confirmations(uow, sub.id, reason="cancelled")
        log.info("subscription %s cancelled by recipient", sub.id)
    return _link_view(sub, lst, message)


def view_cancel_link(token: str) -> ConfirmLink:
    sub, lst, message = _load_confirm(token, purpose=Purpose.CANCEL)
    return _link_view(sub, lst, message)


def renew_confirmation(token: str, *, meta: RequestMeta) -> None:
    """Send a fresh link in answer to an expired (or superseded) one, if the signup is
    still waiting. Returns nothing either way: the caller only proved they once held a
    link, so they learn nothing about the subscription.
    """
    try:
        sub, _, message = _load_confirm(token, max_age=setting("CONFIRM_MAX_AGE"))
        if _round_is_current(sub, message):
            return  # the link still works; nothing to renew
    except BadToken as exc:
        if exc.kind != "expired" or exc.subscription_id is None:
            return
        sub = db.session.get(Subscription, exc.subscription_id)
    subscription_id = sub.id if sub is not None else None
    if sub is None or sub.status != Status.PENDING or sub.email is None:
        return
    try:
        with unit_of_work() as uow:
            if blocks_confirmation(sub) is not None:
                return
            check_confirmation_allowed(account_id=sub.account_id, address_hash=sub.address_hash,
                                       ip_hash=hash_address_ip(meta.ip))
            outbox.add_confirmation(uow, sub, signup_ip_hash=hash_address_ip(meta.ip))
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
