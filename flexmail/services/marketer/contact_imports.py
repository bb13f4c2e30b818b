"""Contact imports: bring an existing list, with its proof, into a list (issue 10.4).

The upload is streamed: read in bounded chunks into a spool file (so a slow client holds
no database lock), counted, then stored in 1 MiB parts (``ContactImportPart``) beside the
job row. The ``import_contacts`` actor reads the parts back as one stream, parses it
incrementally and works in set-based batches that commit together with the progress (a
retried job resumes after the last committed line): per batch one query for suppressions,
one for the addresses already on the list, one bulk insert of the subscriptions and one
of their consent events (``proof.record_many``: COPY on PostgreSQL). Rows are reported by
line number and reason. What a row is, is decided by ``domain.contact_files``:

- existing proof: a subscription with ``subscribe_requested`` and ``confirmed`` events
  recorded now, source ``import:<id>``, with the original times, IPs, source and wording
  in the events (times in ``details``) -> subscribed;
- a signup the marketer's own form took: pending, ``subscribe_requested`` with the form's
  facts and a confirmation mail, within the flood limits (over a limit the row is
  ``deferred``: import the file again later);
- neither: refused (standards D8, E3).

A suppressed address is skipped and reported whatever proof it carries (F6). An address
already on the list is left as it is, in any state (the person's later choices win), so
importing the same file again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from sqlalchemy import delete, select

from flexmail.clock import iso, now
from flexmail.domain.addresses import InvalidAddress
from flexmail.domain.consent import EventType, Status
from flexmail.domain.contact_files import classify, count_records, read_records
from flexmail.extensions import db
from flexmail.models import ContactImport, ContactImportPart, MailingList, Subscription
from flexmail.services.consent import flood
from flexmail.services.consent.rows import SubscriptionRow
from flexmail.services.consent.subscriptions import hash_address_ip
from flexmail.services.delivery import outbox
from flexmail.services.evidence.proof import record_event, record_many
from flexmail.services.marketer.lists import get_list
from flexmail.services.platform import bulk
from flexmail.services.platform.context import RequestMeta, setting
from flexmail.services.platform.errors import NotFound, RateLimited, TooLarge, ValidationFailed
from flexmail.services.platform.jobs import new_job
from flexmail.services.platform.unit_of_work import unit_of_work
from flexmail.services.suppression.suppression_store import hasher, in_keys, normalizer
from flexmail.services.suppression.suppressions import suppressed_addresses

log = logging.getLogger(__name__)

BATCH = 5_000
MAX_ROWS = 1_000_000
MAX_REPORTED = 1_000
#: Bytes read from the request at a time.
READ_BYTES = 64 * 1024
#: Bytes per stored part of the file.
PART_BYTES = 1024 * 1024
#: The spool stays in memory up to this size, then becomes a temporary file.
SPOOL_IN_MEMORY = 8 * 1024 * 1024


def _text(binary: BinaryIO) -> io.TextIOWrapper:
    """The file as text lines: UTF-8 (a BOM dropped); undecodable bytes survive as
    surrogates, so only the rows holding them are refused."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _spool(stream: BinaryIO, max_bytes: int) -> tuple[tempfile.SpooledTemporaryFile, int, bool]:
    """Read ``stream`` in bounded chunks into a spool; ``(spool, size, blank)``."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    size, blank = 0, True
    try:
        while chunk := stream.read(READ_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"The file is larger than {max_bytes} bytes.")
            blank = blank and not chunk.strip()
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, size, blank


def create_import(account_id: int, list_id: int, stream: BinaryIO, *, max_bytes: int,
                  enqueue: bool = True) -> ContactImport:
    """Stage the uploaded file (read from ``stream``) as a job and queue it
    (``enqueue=False``: the caller runs it). More than ``max_bytes``: ``TooLarge`` (413);
    empty or more than ``MAX_ROWS`` rows: ``ValidationFailed``. Nothing is stored then."""
    get_list(account_id, list_id)
    spool, size, blank = _spool(stream, max_bytes)
    with spool:
        if blank:
            raise ValidationFailed("Invalid input.", fields={"file": ["The file is empty."]})
        text = _text(spool)
        total = count_records(text)
        text.detach()
        if total > MAX_ROWS:
            raise ValidationFailed("Invalid input.", fields={"file": [f"At most {MAX_ROWS} rows."]})
        spool.seek(0)
        job = ContactImport(account_id=account_id, list_id=list_id, status="queued", size_bytes=size,
                            total_rows=total, results=[], created_at=now())
        with new_job(job, actor="import_contacts", enqueue_job=enqueue) as uow:
            part = 0
            while data := spool.read(PART_BYTES):
                uow.session.execute(ContactImportPart.__table__.insert(),
                                    {"import_id": job.id, "part": part, "data": data})
                part += 1
    log.info("contact import %s for list %s: %d rows (%d bytes) queued", job.id, list_id, total, size)
    return job


def get_import(account_id: int, list_id: int, import_id: int) -> ContactImport:
    job = db.session.get(ContactImport, import_id)
    if job is None or job.account_id != account_id or job.list_id != list_id:
        raise NotFound("No such import.")
    return job


class _Parts(io.RawIOBase):
    """The stored parts of a file, read one at a time, as one binary stream."""

    def __init__(self, import_id: int):
        self._import_id, self._next, self._buffer = import_id, 0, b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer:
            data = db.session.scalar(select(ContactImportPart.data).where(
                ContactImportPart.import_id == self._import_id, ContactImportPart.part == self._next))
            if data is None:
                return 0
            self._buffer, self._next = bytes(data), self._next + 1
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def _records(import_id: int) -> Iterator:
    return read_records(_text(io.BufferedReader(_Parts(import_id), buffer_size=READ_BYTES)))


def run_import(import_id: int) -> str:
    """Work through a job (the actor's body); resumes where a previous attempt stopped."""
    job = db.session.get(ContactImport, import_id)
    if job is None:
        return "missing"
    if job.status == "done":
        return job.status
    with unit_of_work():
        job.status, job.started_at = "running", job.started_at or now()
    try:
        batch: list = []
        skip_to = job.lines_done
        for record in _records(import_id):
            if record[0] <= skip_to:
                continue
            batch.append(record)
            if len(batch) >= BATCH:
                _commit_batch(import_id, batch)
                batch = []
        if batch:
            _commit_batch(import_id, batch)
    except Exception as exc:
        db.session.rollback()
        with unit_of_work() as uow:
            uow.session.get(ContactImport, import_id).last_error = type(exc).__name__
        log.warning("contact import %s attempt failed (%s); it resumes on retry", import_id, type(exc).__name__)
        raise
    with unit_of_work() as uow:
        job = uow.session.get(ContactImport, import_id)
        job.status, job.finished_at = "done", now()
        uow.session.execute(delete(ContactImportPart).where(ContactImportPart.import_id == import_id))
    log.info("contact import %s done: %d subscribed, %d pending, %d existing, %d suppressed, %d rejected",
             import_id, job.subscribed, job.pending, job.existing, job.suppressed, job.rejected)
    return "done"


def _commit_batch(import_id: int, records: list) -> None:
    at = now()
    max_age = dt.timedelta(days=setting("PENDING_RETENTION_DAYS"))
    norm, h = normalizer(), hasher()
    results, rows = [], []
    for number, record, problem in records:
        row = None if problem else classify(number, record, now=at, max_signup_age=max_age)
        problem = problem or row.problem
        if problem is None:
            try:
                normalized = norm(row.values["email"]).normalized
            except InvalidAddress as exc:
                problem = exc.reason
            else:
                rows.append((row, normalized, h.address(normalized)))
        if problem is not None:
            results.append({"line": number, "outcome": "rejected", "reason": problem})
    with unit_of_work() as uow:
        job = uow.session.get(ContactImport, import_id)
        lst = uow.session.get(MailingList, job.list_id)
        blocked = suppressed_addresses(job.account_id, {n for _, n, _ in rows})
        seen = set(uow.session.scalars(select(Subscription.address_hash).where(
            Subscription.list_id == lst.id, in_keys(Subscription.address_hash, [k for _, _, k in rows]))))
        counts = {"subscribed": 0, "pending": 0, "existing": 0, "suppressed": 0}
        proofs = []
        for row, normalized, key in rows:
            if normalized in blocked:
                counts["suppressed"] += 1
                results.append({"line": row.number, "outcome": "suppressed",
                                "reason": "The address is suppressed for this account."})
            elif key in seen:
                counts["existing"] += 1
            elif row.kind == "proof":
                proofs.append((row, normalized, key))
            else:
                try:
                    _import_signup(uow, lst, job.id, row, normalized, key, at)
                except RateLimited as exc:
                    results.append({"line": row.number, "outcome": "deferred", "reason": exc.message})
                    continue
                counts["pending"] += 1
            seen.add(key)
        made = _import_proofs(uow, lst, job.id, proofs, at)
        counts["subscribed"] = made
        counts["existing"] += len(proofs) - made  # taken meanwhile by a signup: left as it is
        job.subscribed += counts["subscribed"]
        job.pending += counts["pending"]
        job.existing += counts["existing"]
        job.suppressed += counts["suppressed"]
        job.rejected += len(results) - counts["suppressed"]
        job.rows_done += len(records)
        job.lines_done = records[-1][0]
        room = MAX_REPORTED - len(job.results or [])
        if results and room > 0:
            job.results = [*(job.results or []), *sorted(results, key=lambda r: r["line"])[:room]]


def _new_subscription(uow, lst: MailingList, normalized: str, key: str, *, consent_text: str, source: str | None,
                      at) -> Subscription:
    sub = Subscription(account_id=lst.account_id, list_id=lst.id, address_hash=key, email=normalized,
                       status=Status.PENDING, consent_text=consent_text, source=(source or "")[:200] or None,
                       language=lst.language, created_at=at, requested_at=at, pending_since=at)
    uow.session.add(sub)
    uow.session.flush()
    return sub


def _requested_details(lst: MailingList, consent_text: str, source: str | None, import_id: int, values: dict) -> dict:
    return {"consent_text": consent_text, "consent_text_sha256": hashlib.sha256(consent_text.encode()).hexdigest(),
            "form_source": source, "list_name": lst.name, "language": lst.language, "import_id": import_id,
            "signup_at": iso(values["signup_at"])}


#: The subscription columns a proof row sets.
_SUBSCRIPTION_COLUMNS = ("account_id", "list_id", "address_hash", "email", "status", "consent_text", "source",
                         "language", "created_at", "requested_at", "pending_since", "confirmed_at", "updated_at")


def _import_proofs(uow, lst, import_id, proofs: list, at) -> int:
    """Record the proof the marketer holds, as imported, with its origin: the subscriptions
    in one bulk insert (an address a concurrent signup took meanwhile is skipped), their two
    events each in one bulk append (``proof.record_many``). Returns how many were made."""
    if not proofs:
        return 0
    rows = {}
    for row, normalized, key in proofs:
        v = row.values
        rows[key] = (row, {
            "account_id": lst.account_id, "list_id": lst.id, "address_hash": key, "email": normalized,
            "status": Status.SUBSCRIBED, "consent_text": v["consent_text"], "source": v["source"][:200],
            "language": lst.language, "created_at": at, "requested_at": v["signup_at"], "pending_since": at,
            "confirmed_at": v["confirmed_at"], "updated_at": at})
    made = bulk.insert_new(uow.session, Subscription.__table__, _SUBSCRIPTION_COLUMNS,
                           [values for _, values in rows.values()], unique=("list_id", "address_hash"),
                           returning=("address_hash", "id"))
    ids = dict(made)
    events = []
    for key, (row, values) in rows.items():
        if key not in ids:
            continue
        sub = SubscriptionRow(id=ids[key], **values)
        v = row.values
        events.append((sub, EventType.SUBSCRIBE_REQUESTED,
                       RequestMeta(ip=v["signup_ip"], user_agent=v.get("user_agent"), at=at),
                       {**_requested_details(lst, v["consent_text"], v["source"], import_id, v),
                        "imported_proof": True}))
        events.append((sub, EventType.CONFIRMED, RequestMeta(ip=v["confirm_ip"], at=at),
                       {"imported_proof": True, "import_id": import_id, "confirmed_at": iso(v["confirmed_at"])}))
    record_many(uow.session, events, source=f"import:{import_id}")
    return len(ids)


def _import_signup(uow, lst, import_id, row, normalized, key, at) -> None:
    """A signup the marketer's form took: pending and a confirmation mail, within flood limits."""
    values = row.values
    ip_hash = hash_address_ip(values["signup_ip"])
    with uow.session.begin_nested():  # a refusal (RateLimited) undoes this row's counting only
        held = flood.count_confirmation(uow.session, account_id=lst.account_id, address_hash=key, ip_hash=ip_hash)
    consent_text = values.get("consent_text") or lst.consent_text
    sub = _new_subscription(uow, lst, normalized, key, consent_text=consent_text, source=values["form_url"], at=at)
    record_event(uow.session, sub, EventType.SUBSCRIBE_REQUESTED,
                 meta=RequestMeta(ip=values["signup_ip"], user_agent=values["user_agent"], at=at),
                 source=f"import:{import_id}",
                 details=_requested_details(lst, consent_text, values["form_url"], import_id, values))
    outbox.add_confirmation(uow, sub, signup_ip_hash=ip_hash, held=held)


def import_json(job: ContactImport) -> dict:
    return {
        "id": job.id, "list_id": job.list_id, "status": job.status, "total_rows": job.total_rows,
        "rows_done": job.rows_done, "subscribed": job.subscribed, "pending": job.pending, "existing": job.existing,
        "suppressed": job.suppressed, "rejected": job.rejected, "results": job.results or [],
        "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
    }
