"""One transaction per service call, with work that must wait for the commit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar

from flexmail.extensions import db

log = logging.getLogger(__name__)

#: Set by ``one_transaction``: the after-commit hooks of the units of work it holds.
_HELD: ContextVar[list | None] = ContextVar("flexmail_held_commits", default=None)


class UnitOfWork:
    def __init__(self):
        self.session = db.session
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the transaction committed (enqueue, notify). Failures are logged:
        whatever they were meant to trigger must be recoverable from committed state."""
        self._after_commit.append(fn)


@contextmanager
def unit_of_work():
    """Commit on success, roll back on any exception, then run the after-commit hooks.

    Inside ``one_transaction`` it flushes instead, and its hooks wait for that commit."""
    uow = UnitOfWork()
    held = _HELD.get()
    try:
        yield uow
        if held is None:
            db.session.commit()
        else:
            db.session.flush()
    except BaseException:
        db.session.rollback()
        raise
    if held is not None:
        held.extend(uow._after_commit)
        return
    _run_hooks(uow._after_commit)


@contextmanager
def one_transaction():
    """Every unit of work in this block joins one transaction, committed at its end.

    For work whose record must commit with it or not at all: an idempotent request's work
    and its stored answer (``api.idempotency``), so that a database that dies between the
    two can never leave work done whose answer a retry cannot find (and would do again).
    """
    hooks: list = []
    token = _HELD.set(hooks)
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        _HELD.reset(token)
    _run_hooks(hooks)


def _run_hooks(hooks) -> None:
    for fn in hooks:
        try:
            fn()
        except Exception:
            log.exception("after-commit hook %s failed; the outbox sweeper will retry", fn)
