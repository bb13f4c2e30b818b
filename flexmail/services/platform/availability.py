"""Telling "the database is unreachable" apart from every other database error.

An unreachable database is an outage, not a bug: opt-outs go to the spool
(``services.optout.spool``) and every other request answers 503 with Retry-After, so clients
and mailbox providers come back instead of giving up on a 500.
"""

from __future__ import annotations

import logging

from sqlalchemy import exc as sa_exc

from flexmail.extensions import db

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait when the database is unreachable.
RETRY_AFTER = 30
#: The exception classes to look at with ``is_database_unavailable`` (for error handlers).
DATABASE_ERRORS = (sa_exc.DBAPIError, sa_exc.TimeoutError)


def is_database_unavailable(error: BaseException) -> bool:
    """True when ``error`` says the database cannot be reached or used right now.

    Operational errors (connection refused or lost, server shutting down, SQLite file
    missing or locked, a serialization failure), interface errors (a closed connection),
    any error that invalidated its connection, and a pool that had no connection to give.
    Integrity and data errors are the request's fault and are not outages.
    """
    if isinstance(error, sa_exc.TimeoutError):  # QueuePool: no connection within its timeout
        return True
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return True
    return isinstance(error, sa_exc.DBAPIError) and bool(error.connection_invalidated)


def reset_session() -> None:
    """Drop the failed transaction so the next use of the session reconnects."""
    try:
        db.session.rollback()
    except Exception:  # the connection is gone; rolling back cannot fail the caller
        log.debug("rollback after a database outage failed", exc_info=True)
    db.session.remove()
