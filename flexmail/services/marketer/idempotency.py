"""Idempotency keys: a POST or DELETE retried with the same key does its work once.

The first request with a key inserts a claim (``in_progress``) and commits it before any
work; the unique constraint on (account, key) lets only one of two simultaneous requests
win. The winner runs, then stores its answer (``done``); later requests with the key get
that answer replayed. A second request that arrives while the first still runs waits up to
``IDEMPOTENCY_WAIT_SECONDS`` for the answer, then gets 409 ``idempotency_in_progress``
(as Stripe answers). The same key with another request (method, path, query or body) is
422 ``idempotency_key_reused``. Records live 24 h (``purge_expired``, run by retention).

If a process dies between committing its work and storing the answer, the claim stays
``in_progress`` until ``locked_until``; a retry after that runs the work again. That is the
one case where the work can happen twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models import IdempotencyRecord
from flexmail.services.platform.context import hash_key, setting
from flexmail.services.platform.errors import FlexmailError, ValidationFailed
from flexmail.services.platform.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

#: How long a key is remembered.
LIFETIME = dt.timedelta(hours=24)
#: How long a claim belongs to the request that made it before a retry may take it over
#: (FLEXMAIL_IDEMPOTENCY_LEASE_SECONDS; longer than any request may run).
LEASE = dt.timedelta(seconds=60)


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=int(setting("IDEMPOTENCY_LEASE_SECONDS")))
MAX_KEY_LENGTH = 255
POLL_SECONDS = 0.05


class InProgress(FlexmailError):
    """Another request with this key is still running."""

    code = "idempotency_in_progress"
    status = 409

    def __init__(self, message: str, **kw):
        super().__init__(message, **kw)
        self.retry_after = 1


class KeyReused(FlexmailError):
    """The key was used before for a different request."""

    code = "idempotency_key_reused"
    status = 422


@dataclass(frozen=True)
class Claim:
    """This request owns the key: do the work, then ``complete`` or ``release``."""

    record_id: int


@dataclass(frozen=True)
class StoredResponse:
    """The first answer given for the key."""

    status: int
    headers: dict
    body: bytes


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What "the same request" means: method, path with query string, and the body bytes.

    Keyed (HMAC with FLEXMAIL_HASH_KEY): a body may name a person, and a plain SHA-256 of a
    known body shape could be tried against a list of addresses (standards F3)."""
    digest = hmac.new(hash_key().encode(), digestmod=hashlib.sha256)
    for part in (method.upper().encode(), path.encode("utf-8", "surrogateescape"), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not all(33 <= ord(c) <= 126 for c in key):
        raise ValidationFailed(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters without spaces.",
            fields={"Idempotency-Key": ["1 to 255 printable ASCII characters, no spaces."]})
    return key


def begin(account_id: int, key: str, fingerprint_: str) -> Claim | StoredResponse:
    """Claim ``key`` for this request, or return the answer stored for it.

    Raises ``KeyReused`` (422) for another request under the same key and ``InProgress``
    (409) when the first request does not finish within the wait.
    """
    check_key(key)
    deadline = time.monotonic() + float(setting("IDEMPOTENCY_WAIT_SECONDS"))
    while True:
        claim = _try_claim(account_id, key, fingerprint_)
        if claim is not None:
            return claim
        db.session.rollback()  # end the read snapshot (SQLite WAL) so the next look is fresh
        row = db.session.execute(
            select(IdempotencyRecord.id, IdempotencyRecord.fingerprint, IdempotencyRecord.state,
                   IdempotencyRecord.locked_until, IdempotencyRecord.created_at, IdempotencyRecord.status_code,
                   IdempotencyRecord.response_headers, IdempotencyRecord.response_body)
            .where(IdempotencyRecord.account_id == account_id, IdempotencyRecord.key == key)).one_or_none()
        db.session.rollback()
        at = now()
        if row is None:
            continue  # released (or purged) between our insert and our read: try again
        if row.created_at <= at - LIFETIME:
            _delete(row.id)  # older than 24 h and not purged yet: the key is free again
            continue
        if row.fingerprint != fingerprint_:
            raise KeyReused("This Idempotency-Key was used for a different request (method, path or body).")
        if row.state == "done":
            return StoredResponse(row.status_code, dict(row.response_headers or {}), row.response_body or b"")
        if row.locked_until <= at and _take_over(row.id, at):
            log.warning("idempotency claim %s taken over after its lease ran out", row.id)
            return Claim(row.id)
        if time.monotonic() >= deadline:
            raise InProgress("A request with this Idempotency-Key is still being processed; retry shortly.")
        time.sleep(POLL_SECONDS)


def _try_claim(account_id: int, key: str, fingerprint_: str) -> Claim | None:
    at = now()
    try:
        with unit_of_work() as uow:
            record = IdempotencyRecord(account_id=account_id, key=key, fingerprint=fingerprint_,
                                       state="in_progress", locked_until=at + _lease(), created_at=at)
            uow.session.add(record)
            uow.session.flush()
            record_id = record.id
    except IntegrityError:
        return None
    return Claim(record_id)


def _take_over(record_id: int, at: dt.datetime) -> bool:
    with unit_of_work() as uow:
        taken = uow.session.execute(
            update(IdempotencyRecord).where(IdempotencyRecord.id == record_id,
                                            IdempotencyRecord.state == "in_progress",
                                            IdempotencyRecord.locked_until <= at)
            .values(locked_until=at + _lease()).execution_options(synchronize_session=False)).rowcount
    return taken == 1


def _delete(record_id: int) -> None:
    with unit_of_work() as uow:
        uow.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


def complete(claim: Claim, *, status: int, headers: dict, body: bytes) -> None:
    """Store the answer that later requests with the key will get."""
    with unit_of_work() as uow:
        uow.session.execute(
            update(IdempotencyRecord).where(IdempotencyRecord.id == claim.record_id)
            .values(state="done", status_code=status, response_headers=headers, response_body=body,
                    completed_at=now()).execution_options(synchronize_session=False))


def release(claim: Claim) -> None:
    """Give the key up (the work failed and was rolled back): a retry runs it afresh."""
    try:
        _delete(claim.record_id)
    except Exception:
        db.session.rollback()
        log.exception("could not release idempotency claim %s; it frees itself after its lease", claim.record_id)


def forget_answers_naming(session, account_id: int, needles: tuple[str, ...]) -> int:
    """Erasure: delete the account's stored answers that contain the address (a subscribe
    answer names it). The keys are then free: a retry runs afresh. Returns how many."""
    doomed = []
    for record_id, body in session.execute(select(IdempotencyRecord.id, IdempotencyRecord.response_body)
                                           .where(IdempotencyRecord.account_id == account_id)):
        try:
            text = json.dumps(json.loads(body or b"null"), ensure_ascii=False).casefold()
        except ValueError:
            text = (body or b"").decode("utf-8", "replace").casefold()
        if any(needle in text for needle in needles):
            doomed.append(record_id)
    if doomed:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(doomed)))
    return len(doomed)


def purge_expired(*, as_of: dt.datetime | None = None) -> int:
    """Delete keys older than 24 h; return how many."""
    cutoff = (as_of or now()) - LIFETIME
    with unit_of_work() as uow:
        return uow.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at <= cutoff)).rowcount
