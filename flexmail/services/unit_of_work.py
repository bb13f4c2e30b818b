"""One transaction per service call, with work that must wait for the commit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager

from flexmail.extensions import db

log = logging.getLogger(__name__)


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
    """Commit on success, roll back on any exception, then run the after-commit hooks."""
    uow = UnitOfWork()
    try:
        yield uow
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    for fn in uow._after_commit:
        try:
            fn()
        except Exception:
            log.exception("after-commit hook %s failed; the outbox sweeper will retry", fn)
