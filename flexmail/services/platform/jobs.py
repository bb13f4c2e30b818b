"""Background jobs kept as rows (imports): created, committed, then handed to their actor.

The actor gets only the job's id, and only after the commit, so a worker never looks for a
job that is not there yet. Contact and suppression imports share this one way of doing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq

from flexmail.services.platform.unit_of_work import unit_of_work


def enqueue(actor: str, job_id: int) -> None:
    dramatiq.get_broker().get_actor(actor).send(job_id)


@contextmanager
def new_job(job, *, actor: str, enqueue_job: bool = True) -> Iterator:
    """Add ``job`` (flushed, so it has its id), let the caller add what belongs to it in the
    same transaction, commit, and send its id to ``actor`` after the commit
    (``enqueue_job=False``: the caller runs it)."""
    with unit_of_work() as uow:
        uow.session.add(job)
        uow.session.flush()
        yield uow
        if enqueue_job:
            job_id = job.id
            uow.after_commit(lambda: enqueue(actor, job_id))


def create_job(job, *, actor: str, enqueue_job: bool = True):
    """``new_job`` for a job that is complete in itself; returns it."""
    with new_job(job, actor=actor, enqueue_job=enqueue_job):
        pass
    return job
