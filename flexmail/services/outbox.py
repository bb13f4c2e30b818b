"""The transactional outbox: mail we committed to send survives a crash before enqueue.

A row is written in the same transaction as its cause; after commit the id is enqueued.
If the process dies in between, the sweeper (on start and periodically) enqueues rows
left pending. A send first claims its row with a guarded UPDATE, so a message enqueued
twice is still sent once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from urllib.parse import urlsplit

import dramatiq
from flask import current_app, render_template
from sqlalchemy import or_, select, update

from flexmail.clock import now
from flexmail.domain.consent import EventType, Status
from flexmail.domain.tokens import Purpose
from flexmail.extensions import db
from flexmail.mail.compose import compose
from flexmail.mail.transports import get_transport
from flexmail.models import MailingList, OutboxMessage, Subscription
from flexmail.services.addressing import bounce_address
from flexmail.services.context import RequestMeta, setting, signer
from flexmail.services.proof import record_event
from flexmail.services.suppressions import blocks_confirmation
from flexmail.services.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
CONFIRM_TEMPLATE = "mail/confirm"


def _enqueue(message_id: int) -> None:
    """Hand the id to the ``send_outbox`` actor on the app's broker (set at app start)."""
    dramatiq.get_broker().get_actor("send_outbox").send(message_id)


def add_confirmation(uow, sub: Subscription, *, signup_ip_hash: str | None) -> OutboxMessage:
    """Queue a confirmation mail for ``sub`` inside the caller's transaction."""
    host = urlsplit(setting("PUBLIC_URL")).hostname or "localhost"
    message = OutboxMessage(
        account_id=sub.account_id, subscription_id=sub.id, kind="confirmation",
        address_hash=sub.address_hash, signup_ip_hash=signup_ip_hash,
        message_id=f"<{secrets.token_hex(16)}@{host}>", created_at=now(),
    )
    uow.session.add(message)
    uow.session.flush()
    message_pk = message.id
    uow.after_commit(lambda: _enqueue(message_pk))
    return message


def skip_pending_confirmations(uow, subscription_id: int, *, reason: str) -> None:
    """Pending confirmation mails of a decided signup are no longer needed."""
    uow.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.subscription_id == subscription_id, OutboxMessage.status == "pending")
        .values(status="skipped", last_error=reason)
        .execution_options(synchronize_session=False)
    )


def _claim(message_id: int) -> bool:
    """Take the row for sending; False if it was sent, skipped, or another worker holds it."""
    at = now()
    lease = at + dt.timedelta(seconds=setting("OUTBOX_LEASE_SECONDS"))
    with unit_of_work() as uow:
        claimed = uow.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id,
                   or_(OutboxMessage.status == "pending",
                       (OutboxMessage.status == "sending") & (OutboxMessage.claimed_until < at)))
            .values(status="sending", claimed_until=lease, attempts=OutboxMessage.attempts + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
    return bool(claimed)


def _finish(message_id: int, status: str, error: str | None = None) -> None:
    with unit_of_work() as uow:
        uow.session.execute(
            update(OutboxMessage).where(OutboxMessage.id == message_id)
            .values(status=status, last_error=error, claimed_until=None)
            .execution_options(synchronize_session=False)
        )


def send_outbox(message_id: int) -> str:
    """Send one outbox message (the actor's body). Returns what happened, for tests and logs."""
    if not _claim(message_id):
        log.info("outbox %s already handled or claimed elsewhere", message_id)
        return "not-claimed"
    message = db.session.get(OutboxMessage, message_id)
    db.session.refresh(message)
    sub = db.session.get(Subscription, message.subscription_id)
    lst = db.session.get(MailingList, sub.list_id)
    reason = _skip_reason(message, sub)
    if reason:
        _finish(message_id, "skipped", reason)
        log.info("outbox %s skipped: %s", message_id, reason)
        return "skipped"
    mail, proof = _render_confirmation(message, sub, lst)
    try:
        get_transport(setting("MAIL_URL")).send(mail, envelope_from=bounce_address())
    except Exception as exc:
        status = "failed" if message.attempts >= MAX_ATTEMPTS else "pending"
        _finish(message_id, status, f"{type(exc).__name__}")
        log.warning("outbox %s send attempt %s failed (%s)", message_id, message.attempts, type(exc).__name__)
        raise
    with unit_of_work() as uow:
        message = uow.session.get(OutboxMessage, message_id)
        message.status, message.sent_at, message.claimed_until = "sent", now(), None
        sub = uow.session.get(Subscription, message.subscription_id)
        record_event(uow.session, sub, EventType.CONFIRMATION_SENT, meta=RequestMeta(at=message.sent_at),
                     source="system", details=proof)
    log.info("outbox %s sent for subscription %s", message_id, sub.id)
    return "sent"


def _skip_reason(message: OutboxMessage, sub: Subscription) -> str | None:
    if message.kind != "confirmation":
        return f"unknown kind {message.kind}"
    if sub.status != Status.PENDING:
        return f"subscription is {sub.status.value}"
    if sub.email is None:
        return "address erased"
    if blocks_confirmation(sub) is not None:
        return "suppressed"
    return None


def template_version(name: str) -> str:
    """A content hash of the text and HTML templates: changes whenever the wording does."""
    env = current_app.jinja_env
    digest = hashlib.sha256()
    for suffix in (".txt", ".html"):
        source, _, _ = env.loader.get_source(env, f"{name}{suffix}")
        digest.update(source.encode())
    return f"{name.rsplit('/', 1)[-1]}@{digest.hexdigest()[:12]}"


def _render_confirmation(message: OutboxMessage, sub: Subscription, lst: MailingList):
    """Build the mail and the proof of what the person was asked."""
    base = setting("PUBLIC_URL")
    ids = [sub.id, message.id]
    context = {
        "list": lst, "consent_text": sub.consent_text,
        "confirm_url": f"{base}/confirm/{signer().dumps(Purpose.CONFIRM, ids)}",
        "cancel_url": f"{base}/not-me/{signer().dumps(Purpose.CANCEL, ids)}",
        "max_age_days": max(1, setting("CONFIRM_MAX_AGE") // 86400),
    }
    lang = sub.language if sub.language in ("en", "de") else "en"
    subject = {"en": f"Please confirm your subscription to {lst.name}",
               "de": f"Bitte bestätigen Sie Ihr Abonnement von {lst.name}"}[lang]
    text = render_template(f"{CONFIRM_TEMPLATE}.txt", lang=lang, **context)
    html = render_template(f"{CONFIRM_TEMPLATE}.html", lang=lang, **context)
    mail = compose(
        sender_name=lst.sender_name, sender_email=lst.sender_email, to=sub.email,
        subject=subject, text=text, html=html, message_id=message.message_id, date=now(),
    )
    proof = {
        "subject": subject, "message_id": message.message_id, "outbox_id": message.id,
        "template_version": template_version(CONFIRM_TEMPLATE),
        # Digests of the parts as a recipient's mail program decodes them, so anyone holding
        # the received mail can check it against the proof.
        "text_sha256": _part_digest(mail, "plain"),
        "html_sha256": _part_digest(mail, "html"),
        "from": lst.sender_email,
    }
    return mail, proof


def _part_digest(mail, subtype: str) -> str:
    """SHA-256 of a decoded part with LF line ends (mail in transit uses CRLF)."""
    content = mail.get_body((subtype,)).get_content().replace("\r\n", "\n")
    return hashlib.sha256(content.encode()).hexdigest()


def sweep(*, grace_seconds: int | None = None) -> int:
    """Enqueue rows left pending (crash between commit and enqueue) or with a lapsed claim.

    Returns how many were enqueued. Enqueuing one that is also in the queue is harmless:
    the claim lets only one send happen.
    """
    grace = setting("OUTBOX_SWEEP_GRACE") if grace_seconds is None else grace_seconds
    at = now()
    ids = list(db.session.scalars(
        select(OutboxMessage.id).where(
            or_((OutboxMessage.status == "pending")
                & (OutboxMessage.created_at <= at - dt.timedelta(seconds=grace)),
                (OutboxMessage.status == "sending") & (OutboxMessage.claimed_until < at))
        ).order_by(OutboxMessage.id).limit(1000)
    ))
    db.session.rollback()
    for message_id in ids:
        _enqueue(message_id)
    if ids:
        log.info("outbox sweep enqueued %d message(s)", len(ids))
    return len(ids)
