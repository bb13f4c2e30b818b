"""The transactional outbox: mail we committed to send goes out once, through relay outages.

A row is written in the same transaction as its cause; after commit its id is enqueued.
The retry schedule lives on the row: a worker claims only *due* rows (``next_attempt_at``
passed), with a guarded UPDATE and a lease, and takes up to ``OUTBOX_BATCH`` due rows at
once, which it sends over one pooled SMTP connection and records in one transaction. The
message is rendered once, at its first claim, and stored on the row, so every attempt
sends the same bytes and the proof's digest is of what arrived.

A transient failure (4xx, no connection) schedules the next attempt on the row
(``domain.retry``); after ``OUTBOX_MAX_ATTEMPTS`` the row is ``failed`` and the proof says
why. A 5xx at RCPT or DATA is a refusal: the row is ``bounced`` at once and the refusal
goes to ``reports.record_smtp_refusal``. Nothing here raises for a send failure, and the
actor has no dramatiq retries: the row's schedule is the only one.

The sweeper (one per installation, ``services.platform.leases``) frees rows whose claim lapsed (a
worker died) and enqueues due rows nobody has taken.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from urllib.parse import urlsplit

import dramatiq
from flask import current_app
from sqlalchemy import and_, insert, or_, select, update

from flexmail.clock import iso, now
from flexmail.domain.consent import EventType, Status
from flexmail.domain.retry import backoff_seconds
from flexmail.extensions import db
from flexmail.mail.transports import Failure, failure_of, get_transport
from flexmail.models import MailingList, OutboxMessage, Subscription
from flexmail.services.consent.confirmation_mail import RenderCache, render_confirmation
from flexmail.services.delivery.addressing import bounce_address
from flexmail.services.evidence.proof import record_event
from flexmail.services.platform import leases
from flexmail.services.platform.context import RequestMeta, setting
from flexmail.services.platform.errors import NotFound, NothingToResend, Suppressed
from flexmail.services.platform.unit_of_work import unit_of_work
from flexmail.services.suppression import reports
from flexmail.services.suppression.suppressions import blocks_confirmation, blocks_confirmations

log = logging.getLogger(__name__)

#: The lease whose holder is the installation's one sweeper.
SWEEPER_LEASE = "outbox-sweeper"

#: Rows whose mail may still be sent (again): a re-send or erasure acts on these.
OPEN = ("pending", "failed")


def _enqueue(message_id: int) -> None:
    """Hand the id to the ``send_outbox`` actor on the app's broker (set at app start)."""
    dramatiq.get_broker().get_actor("send_outbox").send(message_id)


def add_confirmation(uow, sub: Subscription, *, signup_ip_hash: str | None, held: bool = False) -> SimpleNamespace:
    """Queue a confirmation mail for ``sub`` inside the caller's transaction (due at once).

    ``held``: over the platform-wide cap for the address (``services.consent.flood``); the row is
    kept with status ``held`` for the platform admin and never sent.
    """
    values = confirmation_values(sub, signup_ip_hash=signup_ip_hash, held=held)
    session = uow.session
    if session.new or session.dirty:  # the row refers to ORM changes not written yet
        session.flush()
    # One Core INSERT ... RETURNING on the session's connection (no ORM object or flush).
    message_pk = session.connection().execute(_INSERT_MESSAGE, values).scalar_one()
    enqueue_after_commit(uow, message_pk, held=held)
    return SimpleNamespace(id=message_pk, **values)


def confirmation_values(sub, *, signup_ip_hash: str | None, held: bool) -> dict:
    """The columns of a new confirmation mail (``add_confirmation``), for a caller that
    inserts it within a statement of its own."""
    host = urlsplit(setting("PUBLIC_URL")).hostname or "localhost"
    at = now()
    return dict(
        account_id=sub.account_id, subscription_id=sub.id, kind="confirmation",
        address_hash=sub.address_hash, signup_ip_hash=signup_ip_hash,
        message_id=f"<{secrets.token_hex(16)}@{host}>", created_at=at, next_attempt_at=at,
        status="held" if held else "pending",
    )


def enqueue_after_commit(uow, message_pk: int, *, held: bool) -> None:
    """A new mail goes to the broker once its row is committed (a held one never)."""
    if not held:
        uow.after_commit(lambda: _enqueue(message_pk))


_INSERT_MESSAGE = insert(OutboxMessage.__table__).returning(OutboxMessage.__table__.c.id)


def skip_pending_confirmations(uow, subscription_id: int, *, reason: str) -> None:
    """Confirmation mails of a decided signup that have not gone out are no longer needed."""
    uow.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.subscription_id == subscription_id, OutboxMessage.status.in_(OPEN))
        .values(status="skipped", last_error=reason, body=None)
        .execution_options(synchronize_session=False)
    )


# -- sending ---------------------------------------------------------------------------------


@dataclass
class _Job:
    id: int
    subscription_id: int
    message_id: str
    attempts: int
    body: bytes
    summary: dict
    recipient: str
    outcome: str = ""
    failure: Failure | None = None
    at: dt.datetime | None = None


@dataclass
class _Batch:
    lease: dt.datetime
    jobs: list[_Job] = field(default_factory=list)
    outcomes: dict[int, str] = field(default_factory=dict)
    transport: object = None
    sender: str = ""
    deadline: float = 0.0
    #: Set when the relay could not be reached (no reply): the rest of the batch is not tried.
    unreachable: Failure | None = None


def send_outbox(message_id: int) -> str:
    """Send due outbox mail, ``message_id`` first (the actor's body): what happened to that row.

    ``not-claimed``: the row was not due (sent, skipped, scheduled later, or another worker
    holds it); other due rows may still have been sent in the same batch.
    """
    if _recently_done(message_id):
        return "not-claimed"
    batch = _claim(message_id, setting("OUTBOX_BATCH"))
    # Outcomes are recorded (one transaction) every OUTBOX_RECORD_EVERY mails, so a worker
    # killed mid-batch leaves at most that many mails sent but unrecorded (sent again after
    # the lease); fewer transactions cost less per mail.
    every = max(1, setting("OUTBOX_RECORD_EVERY"))
    for start in range(0, len(batch.jobs), every):
        chunk = batch.jobs[start:start + every]
        _deliver(batch, chunk)
        _finish(batch, chunk)
    _remember_done(pk for pk, outcome in batch.outcomes.items() if outcome in ("sent", "skipped"))
    return batch.outcomes.get(message_id, "not-claimed")


#: A batch sends rows whose own queue messages come later; this process remembers the rows
#: it sent (or skipped) for a short while, so those messages cost no query. Short, because
#: on SQLite the id of a deleted row can be given again.
_DONE_SECONDS = 30.0
_done_lock = threading.Lock()


def _done() -> dict[int, float]:
    return current_app.extensions.setdefault("outbox_done", {})


def _recently_done(message_id: int) -> bool:
    return _done().get(message_id, 0.0) > time.monotonic()


def _remember_done(ids) -> None:
    done, clock = _done(), time.monotonic()
    with _done_lock:
        for pk in ids:
            done[pk] = clock + _DONE_SECONDS
        if len(done) > 10_000:
            for pk in [pk for pk, until in done.items() if until <= clock]:
                del done[pk]


def _claim(message_id: int, limit: int) -> _Batch:
    """Claim ``message_id`` if due and other due rows up to ``limit``; render the ones not
    rendered yet and store them on their rows, in the claim's transaction."""
    at = now()
    batch = _Batch(lease=at + dt.timedelta(seconds=setting("OUTBOX_LEASE_SECONDS")))
    due = and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= at)
    with unit_of_work() as uow:
        session = uow.session
        ids = list(session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.id == message_id, due).with_for_update(skip_locked=True)))
        if limit > len(ids):
            ids += [i for i in session.scalars(
                select(OutboxMessage.id).where(due).order_by(OutboxMessage.next_attempt_at)
                .limit(limit).with_for_update(skip_locked=True)) if i != message_id][:limit - len(ids)]
        if not ids:
            return batch
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids))
            .values(status="sending", claimed_until=batch.lease, attempts=OutboxMessage.attempts + 1)
            .execution_options(synchronize_session=False))
        rows = session.execute(
            select(OutboxMessage, Subscription, MailingList)
            .join(Subscription, Subscription.id == OutboxMessage.subscription_id)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(OutboxMessage.id.in_(ids)).order_by(OutboxMessage.id)
            .execution_options(populate_existing=True)).all()
        blocked = blocks_confirmations([sub for message, sub, _ in rows if _mailable(message, sub)])
        cache, changes = RenderCache(), []
        for message, sub, lst in rows:
            reason = _skip_reason(message, sub) or ("suppressed" if blocked.get(sub.id) else None)
            if reason:
                changes.append({"id": message.id, "status": "skipped", "last_error": reason, "body": None,
                                "claimed_until": None})
                batch.outcomes[message.id] = "skipped"
                log.info("outbox %s skipped: %s", message.id, reason)
                continue
            body, summary = message.body, message.summary
            if body is None:
                try:
                    body, summary = render_confirmation(message, sub, lst, cache=cache)
                except Exception as exc:  # one mail that cannot be rendered must not hold up the batch
                    log.exception("outbox %s could not be rendered", message.id)
                    changes.append({"id": message.id, "status": "failed", "claimed_until": None,
                                    "last_error": f"rendering failed: {type(exc).__name__}"})
                    batch.outcomes[message.id] = "failed"
                    continue
                changes.append({"id": message.id, "body": body, "summary": summary, "rendered_at": now()})
            batch.jobs.append(_Job(message.id, sub.id, message.message_id, message.attempts, body, dict(summary),
                                   sub.email))
        if changes:  # the rendered bytes are stored before the first attempt sends them
            session.execute(update(OutboxMessage), changes)
    return batch


def _skip_reason(message: OutboxMessage, sub: Subscription) -> str | None:
    if message.kind != "confirmation":
        return f"unknown kind {message.kind}"
    if sub.status != Status.PENDING:
        return f"subscription is {sub.status.value}"
    if sub.email is None:
        return "address erased"
    return None


def _mailable(message: OutboxMessage, sub: Subscription) -> bool:
    return _skip_reason(message, sub) is None


def _deliver(batch: _Batch, jobs: list[_Job]) -> None:
    """Send each claimed mail; stop before the lease could lapse and give the rest back."""
    if batch.transport is None:
        batch.transport = get_transport(setting("MAIL_URL"))
        batch.sender = bounce_address()
        batch.deadline = time.monotonic() + setting("OUTBOX_LEASE_SECONDS") / 2
    for job in jobs:
        if batch.unreachable is not None:  # the relay did not answer: the rest would fail alike
            job.outcome, job.failure, job.at = "retry", batch.unreachable, now()
            continue
        if time.monotonic() > batch.deadline:
            job.outcome = "released"
            continue
        try:
            batch.transport.send_bytes(job.body, sender=batch.sender, recipients=[job.recipient])
        except Exception as exc:  # every failure is recorded on the row; nothing is raised
            failure = _redacted(failure_of(exc), job.recipient)
            job.outcome, job.failure, job.at = ("bounced" if failure.permanent else "retry"), failure, now()
            log.warning("outbox %s attempt %s failed: %s %s", job.id, job.attempts, failure.code or "",
                        failure.status or type(exc).__name__)
            if failure.code is None:
                batch.unreachable = failure
            continue
        job.outcome, job.at = "sent", now()


def _redacted(failure: Failure, address: str) -> Failure:
    """The relay's text without the recipient's address (replies often quote it)."""
    text = re.sub(re.escape(address), "<recipient>", failure.text, flags=re.IGNORECASE)
    return Failure(failure.permanent, failure.code, failure.status, text)


def _finish(batch: _Batch, chunk: list[_Job]) -> None:
    """Record outcomes in one transaction: rows, ``confirmation_sent`` events, refusals."""
    ids = [job.id for job in chunk]
    with unit_of_work() as uow:
        session = uow.session
        # Rows whose claim lapsed and were taken by another worker meanwhile are not ours to record.
        owned = set(session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.id.in_(ids), OutboxMessage.status == "sending",
                                           OutboxMessage.claimed_until == batch.lease).with_for_update()))
        jobs = [job for job in chunk if job.id in owned]
        subs = {s.id: s for s in session.scalars(
            select(Subscription).where(Subscription.id.in_({job.subscription_id for job in jobs})))}
        updates = [_row_update(job) for job in jobs]
        if updates:
            session.execute(update(OutboxMessage), updates)
        # Events go in with the commit, in one batch: the ledger's head query need not flush each.
        with session.no_autoflush:
            for job in jobs:
                batch.outcomes[job.id] = "not-claimed" if job.outcome == "released" else job.outcome
                sub = subs[job.subscription_id]
                if job.outcome == "sent":
                    record_event(session, sub, EventType.CONFIRMATION_SENT, meta=RequestMeta(at=job.at),
                                 source="system", details=job.summary)
                elif job.outcome == "bounced":
                    f = job.failure
                    reports.record_smtp_refusal(session, subscription_id=sub.id, outbox_id=job.id,
                                                message_id=job.message_id, code=f.code, text=f.text, at=job.at)
                elif job.outcome == "retry" and job.attempts >= setting("OUTBOX_MAX_ATTEMPTS"):
                    batch.outcomes[job.id] = "failed"
                    record_event(session, sub, EventType.CONFIRMATION_FAILED, meta=RequestMeta(at=job.at),
                                 source="system", details=_failure_details(job, "attempts_exhausted"))
    for job in jobs:
        if job.outcome == "sent":
            log.info("outbox %s sent for subscription %s", job.id, job.subscription_id)


def _row_update(job: _Job) -> dict:
    row = {"id": job.id, "claimed_until": None}
    if job.outcome == "sent":
        return {**row, "status": "sent", "sent_at": job.at, "body": None, "last_error": None,
                "error_code": None, "error_status": None}
    if job.outcome == "released":  # never tried: due again at once, the attempt not counted
        return {**row, "status": "pending", "attempts": job.attempts - 1, "enqueued_at": None}
    f = job.failure
    row.update(last_error=f.text, error_code=f.code, error_status=f.status)
    if job.outcome == "bounced":
        return {**row, "status": "bounced"}
    if job.attempts >= setting("OUTBOX_MAX_ATTEMPTS"):
        return {**row, "status": "failed"}
    delay = backoff_seconds(job.attempts, base=setting("OUTBOX_RETRY_BASE"), cap=setting("OUTBOX_RETRY_CAP"),
                            rand=random.random())
    return {**row, "status": "pending", "next_attempt_at": job.at + dt.timedelta(seconds=delay),
            "enqueued_at": None}


def _failure_details(job: _Job, reason: str) -> dict:
    f = job.failure
    return {"outbox_id": job.id, "message_id": job.message_id, "reason": reason, "attempts": job.attempts,
            "smtp_code": f.code, "smtp_status": f.status, "diagnostic": f.text}


# -- the sweeper ------------------------------------------------------------------------------


def sweep(*, grace_seconds: int | None = None) -> int:
    """Free rows whose claim lapsed (their worker died) and enqueue due rows nobody took.

    A row is enqueued when it has been due for ``grace_seconds`` (its own enqueue after
    commit had that long) and was not enqueued by a sweep within the last lease. Returns
    how many were enqueued. Run by the one sweeper of the installation (``broker``).
    """
    grace = setting("OUTBOX_SWEEP_GRACE") if grace_seconds is None else grace_seconds
    lease = dt.timedelta(seconds=setting("OUTBOX_LEASE_SECONDS"))
    at = now()
    with unit_of_work() as uow:
        freed = uow.session.execute(
            update(OutboxMessage).where(OutboxMessage.status == "sending", OutboxMessage.claimed_until < at)
            .values(status="pending", claimed_until=None, next_attempt_at=at, enqueued_at=None)
            .execution_options(synchronize_session=False)).rowcount
        waiting = and_(OutboxMessage.status == "pending",
                       OutboxMessage.next_attempt_at <= at - dt.timedelta(seconds=grace),
                       or_(OutboxMessage.enqueued_at.is_(None), OutboxMessage.enqueued_at < at - lease))
        # One statement, with the condition checked again on the row it updates: a worker
        # that took the row meanwhile has rescheduled it, and then it is not marked.
        pick = select(OutboxMessage.id).where(waiting).order_by(OutboxMessage.next_attempt_at).limit(1000)
        ids = sorted(uow.session.scalars(
            update(OutboxMessage).where(OutboxMessage.id.in_(pick.scalar_subquery()), waiting)
            .values(enqueued_at=at).returning(OutboxMessage.id).execution_options(synchronize_session=False)))
    for message_id in ids:
        _enqueue(message_id)
    if ids or freed:
        log.info("outbox sweep: %d lapsed claim(s) freed, %d message(s) enqueued", freed, len(ids))
    return len(ids)


def run_sweeper(app, interval: float, stop: threading.Event) -> None:
    """Sweep every ``interval`` seconds while holding the sweeper lease, until ``stop`` is set."""
    leases.run_while_holding(app, SWEEPER_LEASE, interval, stop, lambda: sweep())


# -- state and re-send ------------------------------------------------------------------------


def latest_confirmation(subscription_id: int) -> OutboxMessage | None:
    return db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.subscription_id == subscription_id,
                                    OutboxMessage.kind == "confirmation")
        .order_by(OutboxMessage.id.desc()).limit(1))


def confirmation_state(subscription_id: int) -> dict:
    """The delivery state of the latest confirmation mail (for the API); status ``none``
    when no confirmation mail was ever queued."""
    row = latest_confirmation(subscription_id)
    if row is None:
        return {"outbox_id": None, "message_id": None, "status": "none", "attempts": 0, "queued_at": None,
                "sent_at": None, "next_attempt_at": None, "last_error": None, "error_code": None,
                "error_status": None}
    return {
        "outbox_id": row.id, "message_id": row.message_id, "status": row.status, "attempts": row.attempts,
        "queued_at": iso(row.created_at), "sent_at": iso(row.sent_at),
        "next_attempt_at": iso(row.next_attempt_at) if row.status in ("pending", "sending") else None,
        "last_error": row.last_error, "error_code": row.error_code, "error_status": row.error_status,
    }


def resend_confirmation(account_id: int, subscription_id: int) -> dict:
    """Make a ``failed`` or ``bounced`` confirmation mail due again, with fresh attempts.

    The same bytes go out while the link in them is younger than half the confirmation
    lifetime; an older rendering is dropped and the next attempt renders anew (new link,
    and the proof records the new digest when it is sent). Raises ``NotFound``,
    ``NothingToResend`` (the signup is not pending, or its mail has not failed) or
    ``Suppressed`` (the address may not be mailed now).
    """
    with unit_of_work() as uow:
        sub = uow.session.get(Subscription, subscription_id)
        if sub is None or sub.account_id != account_id:
            raise NotFound("No such subscription.")
        row = latest_confirmation(sub.id)
        if sub.status != Status.PENDING or row is None or row.status not in ("failed", "bounced"):
            raise NothingToResend("Only a pending signup whose confirmation mail failed can be re-sent.")
        if sub.email is None or blocks_confirmation(sub) is not None:
            raise Suppressed("This address must not be mailed by this account.")
        at = now()
        row.status, row.attempts, row.next_attempt_at, row.enqueued_at = "pending", 0, at, None
        row.last_error = row.error_code = row.error_status = None
        max_age = dt.timedelta(seconds=setting("CONFIRM_MAX_AGE") / 2)
        if row.rendered_at is not None and row.rendered_at + max_age < at:
            row.body = row.summary = row.rendered_at = None
        row_id = row.id
        uow.after_commit(lambda: _enqueue(row_id))
    log.info("outbox %s made due again for subscription %s", row_id, subscription_id)
    return confirmation_state(subscription_id)
