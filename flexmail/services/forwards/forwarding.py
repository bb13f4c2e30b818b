"""Forward to a friend: counted for the marketer, never stored, never a spam relay.

A confirmed subscriber's link (``/forward/<token>``, signed, naming subscription and
campaign) lets them send the campaign to up to five friends. The addresses of the friends
(and of the forwarder, who never types theirs) exist only in this process's memory and, for
each friend, in one broker message, sealed (AES-GCM, ``domain.sealed``) so that not even
the broker holds them in clear. Forward mail is the one exception to the outbox: an outbox
row would be a stored address. No table, log line, exception message, retry record or
dead-letter queue ever gets one: the send actor never raises, it re-enqueues itself a few
times with a delay and then drops the mail and counts it as failed.

A list in ``client`` forward mode (standards H2) never sees a friend: its page opens the
forwarder's own mail program with a prepared ``mailto:`` (``forward_by_mail_program``), counted
by the same counters and limits; friends posted to such a list are refused unread.

What is kept: aggregate counters on the campaign (``UPDATE ... SET n = n + k``, exact with
any number of processes), per-link and per-campaign daily counts for the abuse limits, and,
only when a friend asks never to receive forwards, the keyed hash of that friend's address.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app
from markupsafe import Markup
from sqlalchemy import func, select, update

from flexmail.clock import now
from flexmail.domain.consent import Status
from flexmail.domain.forwarding import (
    CLIENT,
    MAX_FRIENDS,
    SERVER,
    TextRefused,
    clean_name,
    clean_note,
    html_to_text,
    mailto_link,
    sanitize_html,
    shorten,
)
from flexmail.domain.sealed import Sealer, SealError, SealPurpose
from flexmail.domain.tokens import Purpose, TokenError
from flexmail.extensions import db
from flexmail.mail.compose import compose
from flexmail.mail.transports import get_transport
from flexmail.models import (
    Campaign,
    CampaignForwardDay,
    ForwardOptOut,
    ForwardQuota,
    MailingList,
    Subscription,
)
from flexmail.services.consent import localized
from flexmail.services.delivery.addressing import bounce_address
from flexmail.services.platform.availability import is_database_unavailable, reset_session
from flexmail.services.platform.context import RequestMeta, hash_address, parse_address, setting, signer
from flexmail.services.platform.errors import BadToken, RateLimited, ValidationFailed, WrongForwardMode
from flexmail.services.platform.unit_of_work import unit_of_work
from flexmail.services.suppression.suppressions import suppressed_addresses

log = logging.getLogger(__name__)

ACTOR = "send_forward"
#: A form with more fields than this is not ours (the page has five); refused outright.
MAX_FRIEND_FIELDS = 20


# --- links -----------------------------------------------------------------------------------

def forward_url(subscription_id: int, campaign_id: int) -> str:
    """The recipient's forward link; it works ``FORWARD_MAX_AGE`` (90 days) while they are subscribed."""
    token = signer().dumps(Purpose.FORWARD, [subscription_id, campaign_id])
    return f"{setting('PUBLIC_URL')}/forward/{token}"


def forward_url_for(account_id: int, subscription_id: int, campaign_id: int | None) -> str | None:
    """The forward link for the API's subscription resource, or ``None`` when ``campaign_id``
    is not a campaign of this account on the subscription's list (nothing to forward)."""
    if campaign_id is None:
        return None
    campaign = db.session.get(Campaign, campaign_id)
    sub = db.session.get(Subscription, subscription_id)
    if campaign is None or sub is None or campaign.account_id != account_id or campaign.list_id != sub.list_id:
        return None
    return forward_url(sub.id, campaign.id)


def _sealer() -> Sealer:
    keys = tuple(current_app.config["SECRET_KEYS"])
    cached = current_app.extensions.get("flexmail_sealer")
    if cached is None or cached.secret_keys != keys:
        cached = current_app.extensions["flexmail_sealer"] = Sealer(keys)
    return cached


@dataclass(frozen=True)
class ForwardLink:
    """What the forward page shows: the campaign and its sender, nothing about the forwarder."""

    subscription_id: int
    campaign_id: int
    subject: str
    list_name: str
    sender_name: str
    max_friends: int = MAX_FRIENDS
    #: ``server`` (the form for friends' addresses) or ``client`` (a button that opens the
    #: forwarder's own mail program; the page has no field for an address).
    mode: str = SERVER
    #: The campaign's web page, offered for copying where no mail program opens.
    web_url: str | None = None


def _load(token: str) -> tuple[Subscription, Campaign, MailingList]:
    """Decode a forward token. Only a subscribed recipient of the campaign's list may forward."""
    try:
        ids = signer().loads(Purpose.FORWARD, token, max_age=setting("FORWARD_MAX_AGE"))
    except TokenError as exc:
        raise BadToken(exc.kind) from None
    if len(ids) != 2:
        raise BadToken("invalid")
    sub = db.session.get(Subscription, ids[0])
    campaign = db.session.get(Campaign, ids[1])
    if sub is None or campaign is None or campaign.list_id != sub.list_id or sub.status != Status.SUBSCRIBED:
        raise BadToken("invalid")
    return sub, campaign, db.session.get(MailingList, campaign.list_id)


def view_forward_link(token: str) -> ForwardLink:
    """Describe a forward link for its page. Reads only: a GET never counts (standards H4)."""
    sub, campaign, lst = _load(token)
    return ForwardLink(sub.id, campaign.id, campaign.subject, lst.name, lst.sender_name,
                       mode=lst.forward_mode, web_url=campaign.web_url)


# --- forwarding ------------------------------------------------------------------------------

def _parse_friends(friends) -> list:
    """Validated, de-duplicated addresses; errors name the field's position, never its value."""
    if not isinstance(friends, list | tuple) or len(friends) > MAX_FRIEND_FIELDS:
        raise ValidationFailed("Invalid input.", fields={"friends": [f"At most {MAX_FRIENDS} addresses."]})
    given = [(pos, value) for pos, value in enumerate(friends, 1) if not isinstance(value, str) or value.strip()]
    if not given:
        raise ValidationFailed("Invalid input.", fields={"friends": ["Enter at least one address."]})
    if len(given) > MAX_FRIENDS:
        raise ValidationFailed("Invalid input.", fields={"friends": [f"At most {MAX_FRIENDS} addresses."]})
    addresses, errors = {}, []
    for pos, value in given:
        try:
            address = parse_address(value.strip() if isinstance(value, str) else value, field_name="friends")
        except ValidationFailed:
            errors.append(f"Address {pos} is not valid.")
            continue
        addresses.setdefault(address.key, address)
    if errors:
        raise ValidationFailed("Invalid input.", fields={"friends": errors})
    return list(addresses.values())


def _clean_texts(sender_name, note) -> tuple[str | None, str | None]:
    fields = {}
    try:
        sender_name = clean_name(sender_name)
    except TextRefused as exc:
        fields["sender_name"] = [exc.reason]
    try:
        note = clean_note(note)
    except TextRefused as exc:
        fields["note"] = [exc.reason]
    if fields:
        raise ValidationFailed("Invalid input.", fields=fields)
    return sender_name, note


def _blocked(account_id: int, normalized: list[str]) -> set[str]:
    """Which addresses get no forward: suppressed for the account or platform-wide (address
    and domain entries), or opted out of forwards. Two queries, whatever the number."""
    if not normalized:
        return set()
    blocked = suppressed_addresses(account_id, normalized)
    by_hash = {hash_address(address): address for address in normalized}
    opted_out = db.session.scalars(select(ForwardOptOut.address_hash).where(ForwardOptOut.address_hash.in_(by_hash)))
    return blocked | {by_hash[h] for h in opted_out}


def _insert_missing(session, model, **values) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING``: the row exists afterwards, whoever made it."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(model).values(**values).on_conflict_do_nothing())


def _seconds_to_midnight(at: dt.datetime) -> int:
    tomorrow = (at.astimezone(dt.UTC) + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((tomorrow - at).total_seconds()) + 1)


def _count_forward(session, sub: Subscription, campaign: Campaign, *, at: dt.datetime, recipients: int) -> None:
    """Take one use of the link's daily quota and room in the campaign's daily cap, then count.

    Each step is one guarded UPDATE, atomic on both backends: concurrent forwards can
    neither pass a limit nor lose an increment.
    """
    day = at.astimezone(dt.UTC).date()
    _insert_missing(session, ForwardQuota, subscription_id=sub.id, campaign_id=campaign.id, day=day, forwards=0)
    took = session.execute(
        update(ForwardQuota)
        .where(ForwardQuota.subscription_id == sub.id, ForwardQuota.campaign_id == campaign.id,
               ForwardQuota.day == day, ForwardQuota.forwards < setting("FORWARD_PER_TOKEN_PER_DAY"))
        .values(forwards=ForwardQuota.forwards + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not took:
        raise RateLimited("This link has been used as often as it can be today.", retry_after=_seconds_to_midnight(at))
    list_size = session.scalar(select(func.count(Subscription.id)).where(
        Subscription.list_id == campaign.list_id, Subscription.status == Status.SUBSCRIBED))
    cap = setting("FORWARD_CAMPAIGN_DAILY_FACTOR") * max(list_size or 0, 1)
    _insert_missing(session, CampaignForwardDay, campaign_id=campaign.id, day=day, forwards=0, recipients=0)
    took = session.execute(
        update(CampaignForwardDay)
        .where(CampaignForwardDay.campaign_id == campaign.id, CampaignForwardDay.day == day,
               CampaignForwardDay.recipients + recipients <= cap)
        .values(forwards=CampaignForwardDay.forwards + 1, recipients=CampaignForwardDay.recipients + recipients)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not took:
        raise RateLimited("This message has been forwarded as often as it can be today.",
                          retry_after=_seconds_to_midnight(at))
    session.execute(
        update(Campaign).where(Campaign.id == campaign.id)
        .values(forwards=Campaign.forwards + 1, forwarded_recipients=Campaign.forwarded_recipients + recipients)
        .execution_options(synchronize_session=False)
    )


def forward_to_friends(token: str, *, friends: list[str], meta: RequestMeta, sender_name: str | None = None,
                       note: str | None = None, trap: bool = False) -> None:
    """Send the campaign of a forward link to up to five friends, and count it.

    Friends suppressed for the campaign's account (or globally) or opted out of forwards
    are dropped silently: this returns the same (nothing) either way, so the forwarder
    learns nothing about anyone. Nobody is added to any list. ``trap`` (a bot filled the
    honeypot) checks the link and does nothing else. Raises ``BadToken``,
    ``ValidationFailed`` (422: messages name a field's position, never its value) or
    ``RateLimited`` (429: per-link daily quota, per-campaign daily cap).
    """
    sub, campaign, lst = _load(token)
    if lst.forward_mode != SERVER:  # the addresses are not even parsed
        raise WrongForwardMode("This list's subscribers forward from their own mail program.")
    if trap:
        log.info("forward of campaign %s: honeypot filled, dropped", campaign.id)
        return
    addresses = _parse_friends(friends)
    sender_name, note = _clean_texts(sender_name, note)
    blocked = _blocked(campaign.account_id, [a.normalized for a in addresses])
    send_to = [a for a in addresses if a.normalized not in blocked]
    with unit_of_work() as uow:
        _count_forward(uow.session, sub, campaign, at=meta.at, recipients=len(send_to))
    queued = _enqueue_all(campaign.id, [_seal_message(a.normalized, sender_name, note) for a in send_to])
    log.info("campaign %s forwarded by subscription %s: %d mail(s) queued", campaign.id, sub.id, queued)


def forward_by_mail_program(token: str, *, meta: RequestMeta, lang: str | None = None, trap: bool = False) -> str:
    """Count one forward on a ``client``-mode list and return the ``mailto:`` link that opens the
    forwarder's own mail program with the campaign's subject and link prepared (no recipient).

    The friends are chosen in the mail program, so no address of theirs ever reaches us. The
    count is the server mode's: one forward on the campaign's counters (``forwards``; the
    friends are unknown, so ``forwarded_recipients`` is not raised) under the same daily
    quota per link and cap per campaign. ``lang`` is the page's language (else the list's).
    ``trap`` (a bot filled the honeypot) counts nothing. Raises ``BadToken``,
    ``WrongForwardMode`` (409, a ``server``-mode list) or ``RateLimited`` (429).
    """
    sub, campaign, lst = _load(token)
    if lst.forward_mode != CLIENT:
        raise WrongForwardMode("This list's subscribers forward through the form.")
    if trap:
        log.info("forward of campaign %s: honeypot filled, not counted", campaign.id)
    else:
        with unit_of_work() as uow:
            _count_forward(uow.session, sub, campaign, at=meta.at, recipients=0)
        log.info("campaign %s forwarded by subscription %s from the mail program", campaign.id, sub.id)
    language = localized.mail_language(lang, lst.language)
    content = campaign.web_url or shorten(html_to_text(campaign.html or ""))
    body = f"{localized.forward_invitation(lst.sender_name, language)}\n\n{campaign.subject}\n{content}\n"
    return mailto_link(subject=localized.forward_subject(campaign.subject, language), body=body)


def _seal_message(to: str, sender_name: str | None, note: str | None) -> str:
    data = json.dumps({"to": to, "name": sender_name, "note": note}, ensure_ascii=False).encode()
    return _sealer().seal(SealPurpose.FORWARD_MESSAGE, data)


def _send(campaign_id: int, sealed: str, attempt: int, *, delay: int | None = None) -> None:
    actor = current_app.extensions["dramatiq"].get_actor(ACTOR)
    actor.send_with_options(args=(campaign_id, sealed, attempt), delay=delay)


def _enqueue_all(campaign_id: int, sealed_messages: list[str]) -> int:
    """Hand each sealed mail to the broker; one that cannot be enqueued is counted as failed."""
    queued = 0
    for sealed in sealed_messages:
        try:
            _send(campaign_id, sealed, 1)
            queued += 1
        except Exception as exc:
            log.warning("forward of campaign %s: enqueue failed (%s)", campaign_id, type(exc).__name__)
    if queued < len(sealed_messages):
        _count_failed(campaign_id, len(sealed_messages) - queued)
    return queued


def _count_failed(campaign_id: int, n: int) -> None:
    try:
        with unit_of_work() as uow:
            uow.session.execute(
                update(Campaign).where(Campaign.id == campaign_id)
                .values(forwards_failed=Campaign.forwards_failed + n)
                .execution_options(synchronize_session=False)
            )
    except Exception as exc:
        log.error("forward of campaign %s: counting %d failure(s) failed (%s)", campaign_id, n, type(exc).__name__)


# --- delivery (the actor's body) --------------------------------------------------------------

def deliver_forward(campaign_id: int, sealed: str, *, attempt: int = 1) -> str:
    """Send one forward mail. Never raises: an exception here would take the message, and
    with it the friend's address, into dramatiq's retry records and dead-letter queue.

    Returns ``sent``, ``skipped`` (campaign gone, friend suppressed or opted out meanwhile),
    ``retry`` (re-enqueued with a delay, the same sealed message) or ``failed`` (dropped
    after ``FORWARD_MAX_ATTEMPTS`` attempts, or unreadable; counted in ``forwards_failed``).
    Log lines name the campaign and the exception type only, never its text: an SMTP
    refusal quotes the address.
    """
    try:
        return _deliver(campaign_id, sealed, attempt)
    except Exception as exc:
        if is_database_unavailable(exc):  # a restart: try later, like a relay that is away
            reset_session()
            return _retry_or_drop(campaign_id, sealed, attempt, type(exc).__name__)
        log.error("forward mail of campaign %s: unexpected %s; dropped", campaign_id, type(exc).__name__)
        _count_failed(campaign_id, 1)
        return "failed"
    finally:
        db.session.rollback()


def _deliver(campaign_id: int, sealed: str, attempt: int) -> str:
    try:
        data = json.loads(_sealer().open(SealPurpose.FORWARD_MESSAGE, sealed))
        to, sender_name, note = data["to"], data.get("name"), data.get("note")
    except (SealError, ValueError, KeyError, TypeError):
        log.warning("forward mail of campaign %s: message could not be opened; dropped", campaign_id)
        _count_failed(campaign_id, 1)
        return "failed"
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        log.info("forward mail of campaign %s: campaign gone; skipped", campaign_id)
        return "skipped"
    if _blocked(campaign.account_id, [to]):
        log.info("forward mail of campaign %s: recipient suppressed meanwhile; skipped", campaign_id)
        return "skipped"
    lst = db.session.get(MailingList, campaign.list_id)
    mail = _compose(campaign, lst, to=to, sender_name=sender_name, note=note)
    db.session.rollback()  # no transaction stays open while the relay talks
    error = _try_send(mail)
    if error is None:
        log.info("forward mail of campaign %s sent", campaign_id)
        return "sent"
    return _retry_or_drop(campaign_id, sealed, attempt, error)


def _retry_or_drop(campaign_id: int, sealed: str, attempt: int, error: str) -> str:
    """Re-enqueue the same sealed message with a growing delay, or drop it after the last attempt."""
    if attempt < setting("FORWARD_MAX_ATTEMPTS"):
        delay = setting("FORWARD_RETRY_DELAY_MS") * 4 ** (attempt - 1)
        try:
            _send(campaign_id, sealed, attempt + 1, delay=delay)
        except Exception as exc:
            log.warning("forward mail of campaign %s: re-enqueue failed (%s)", campaign_id, type(exc).__name__)
        else:
            log.warning("forward mail of campaign %s: attempt %s failed (%s); retry in %s ms",
                        campaign_id, attempt, error, delay)
            return "retry"
    log.warning("forward mail of campaign %s: attempt %s failed (%s); dropped", campaign_id, attempt, error)
    _count_failed(campaign_id, 1)
    return "failed"


def _try_send(mail) -> str | None:
    """Send; on failure return only the exception's type name (its text may quote the address)."""
    try:
        get_transport(setting("MAIL_URL")).send(mail, envelope_from=bounce_address())
    except Exception as exc:
        return type(exc).__name__
    return None


def _compose(campaign: Campaign, lst: MailingList, *, to: str, sender_name: str | None, note: str | None):
    """The forward mail: from the list's sender, the campaign's link or content, the forwarder's
    name and note as plain text, the "not added to any list" line and the opt-out link.

    No ``List-Unsubscribe``: the friend is on no list, so there is nothing to unsubscribe from.
    """
    base = setting("PUBLIC_URL")
    opt_out = _sealer().seal(SealPurpose.FORWARD_OPT_OUT, bytes.fromhex(hash_address(to)))
    lang = localized.mail_language(lst.language)
    context = {
        "lang": lang, "campaign": campaign, "list": lst, "sender_name": sender_name, "note": note,
        "opt_out_url": f"{base}/forward/{opt_out}/stop",
        "campaign_html": Markup(sanitize_html(campaign.html)) if campaign.html else None,  # noqa: S704
        "campaign_text": html_to_text(campaign.html) if campaign.html else None,
    }
    subject = localized.forward_subject(campaign.subject, lang)
    text, html = localized.render_mail("mail/forward", **context)
    host = urlsplit(base).hostname or "localhost"
    return compose(
        sender_name=lst.sender_name, sender_email=lst.sender_email, to=to, subject=subject,
        text=text, html=html,
        message_id=f"<{secrets.token_hex(16)}@{host}>", date=now(),
    )


# --- the friend's "never send me forwards" -------------------------------------------------------

def _opt_out_hash(token: str) -> str:
    try:
        raw = _sealer().open(SealPurpose.FORWARD_OPT_OUT, token)
    except SealError:
        raise BadToken("invalid") from None
    if len(raw) != 32:
        raise BadToken("invalid")
    return raw.hex()


def view_forward_opt_out(token: str) -> None:
    """Check an opt-out link for its page; changes nothing (scanners fetch links)."""
    _opt_out_hash(token)


def stop_forwards(token: str) -> None:
    """Never send forwards to the address this link was mailed to. Repeats change nothing.

    The link holds the keyed hash of the address, sealed; only now, because the person
    asked, is that hash stored.
    """
    addr_hash = _opt_out_hash(token)
    with unit_of_work() as uow:
        _insert_missing(uow.session, ForwardOptOut, address_hash=addr_hash, created_at=now())
    log.info("forward opt-out recorded for %s", addr_hash[:12])
