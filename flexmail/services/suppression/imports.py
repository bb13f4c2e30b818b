"""Suppression file imports: a job row, a worker that works through it in batches.

The uploaded file is stored in the job row (the marketer's own data) so that the actor
carries only the job id; it is deleted when the job is done. Each batch commits its
entries together with the job's progress, so a worker that dies resumes after the last
committed line and counts nothing twice. Rejected lines are reported by number and
reason, never by content.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flexmail.clock import now
from flexmail.domain.addresses import InvalidAddress
from flexmail.domain.suppression_files import FORMULA_PROBLEM, count_rows, decode, read_lines
from flexmail.extensions import db
from flexmail.models import Account, SuppressionImport
from flexmail.services.platform.errors import NotFound, ValidationFailed
from flexmail.services.platform.jobs import create_job
from flexmail.services.platform.unit_of_work import unit_of_work
from flexmail.services.suppression.suppression_store import Actor, add_entries, hasher, normalizer
from flexmail.services.suppression.suppressions import check_entry_request

log = logging.getLogger(__name__)

BATCH = 2_000
#: Rejected lines listed in the job (all are counted).
MAX_REPORTED = 1_000


def create_import(account_id: int, content: bytes, *, reason: str = "manual", scope: str = "account",
                  actor: Actor, enqueue: bool = True) -> SuppressionImport:
    """Store the file as a job and queue it (``enqueue=False``: the caller runs it)."""
    check_entry_request(reason=reason, scope=scope, actor=actor)
    if not content or not content.strip():
        raise ValidationFailed("Invalid input.", fields={"file": ["The file is empty."]})
    if db.session.get(Account, account_id) is None:
        raise NotFound("No such account.")
    total = count_rows(decode(content))
    job = SuppressionImport(account_id=account_id, scope=scope, reason=reason, status="queued", content=content,
                            size_bytes=len(content), total_rows=total, errors=[], created_by=actor.name,
                            api_key_id=actor.api_key_id, created_at=now())
    create_job(job, actor="import_suppressions", enqueue_job=enqueue)
    log.info("suppression import %s for account %s: %d rows queued", job.id, account_id, total)
    return job


def get_import(account_id: int, import_id: int) -> SuppressionImport:
    job = db.session.get(SuppressionImport, import_id)
    if job is None or job.account_id != account_id:
        raise NotFound("No such import.")
    return job


def run_import(import_id: int, *, progress: Callable[[int], None] | None = None) -> str:
    """Work through a job (the actor's body); resumes where a previous attempt stopped.

    ``progress(rows)`` is called after each committed batch with the rows it handled.
    Returns the job's final status.
    """
    job = db.session.get(SuppressionImport, import_id)
    if job is None:
        log.warning("suppression import %s does not exist", import_id)
        return "missing"
    if job.status == "done" or job.content is None:
        return job.status
    with unit_of_work():
        job.status, job.started_at = "running", job.started_at or now()
    try:
        _work(import_id, progress)
    except Exception as exc:
        db.session.rollback()
        with unit_of_work() as uow:
            uow.session.get(SuppressionImport, import_id).last_error = type(exc).__name__
        log.warning("suppression import %s attempt failed (%s); it resumes on retry", import_id,
                    type(exc).__name__)
        raise
    with unit_of_work() as uow:
        job = uow.session.get(SuppressionImport, import_id)
        job.status, job.finished_at, job.content = "done", now(), None
    log.info("suppression import %s done: %d imported, %d existing, %d rejected", import_id, job.imported,
             job.existing, job.rejected)
    return "done"


def _work(import_id: int, progress) -> None:
    job = db.session.get(SuppressionImport, import_id)
    owner = None if job.scope == "global" else job.account_id
    actor = Actor(job.created_by or "import", job.api_key_id)
    source = f"import:{job.id}"
    skip_to = job.lines_done
    norm, h = normalizer(), hasher()
    batch = []

    def flush():
        _commit_batch(import_id, batch, owner=owner, actor=actor, source=source, norm=norm, h=h)
        if progress:
            progress(len(batch))
        batch.clear()

    for line in read_lines(decode(job.content)):
        if line.number <= skip_to:
            continue
        batch.append(line)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()


def _commit_batch(import_id: int, lines: list, *, owner, actor, source, norm, h) -> None:
    items: dict[str, str] = {}
    errors = []
    for line in lines:
        problem = line.problem
        if problem is None:
            try:
                normalized = norm(line.value).normalized
            except InvalidAddress as exc:
                problem = FORMULA_PROBLEM if line.formula else exc.reason
            else:
                items.setdefault(h.address(normalized), normalized)
        if problem is not None:
            errors.append({"line": line.number, "reason": problem})
    with unit_of_work() as uow:
        job = uow.session.get(SuppressionImport, import_id)
        added = add_entries(uow.session, account_id=owner, kind="address", items=items, reason=job.reason,
                            source=source, actor=actor, event_source="import")
        valid = len(lines) - len(errors)
        job.imported += len(added.new)
        job.existing += valid - len(added.new)
        job.rejected += len(errors)
        job.rows_done += len(lines)
        job.lines_done = lines[-1].number
        room = MAX_REPORTED - len(job.errors or [])
        if errors and room > 0:
            job.errors = [*(job.errors or []), *errors[:room]]
