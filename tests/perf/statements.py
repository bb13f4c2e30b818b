"""Count the SQL statements a request sends, by listening on the engine."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from sqlalchemy import event

from flexmail.extensions import db


def is_counted(statement: str) -> bool:
    """Transaction control (SQLite's explicit BEGIN) is not a statement of the path, and
    the per-account ledger head lock is the ``ledger`` work's to remove (issue 11.1): the
    pinned numbers hold before and after it lands."""
    text = statement.lstrip().upper()
    return not text.startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")) \
        and "LEDGER_HEADS" not in text


@contextmanager
def count_statements(app):
    """``with count_statements(app) as seen:``: ``seen`` lists the SQL texts this thread sent
    (a worker thread delivering mail meanwhile is not counted)."""
    seen: list[str] = []
    thread = threading.get_ident()
    with app.app_context():
        engine = db.engine

    def before(conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() == thread and is_counted(statement):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)
