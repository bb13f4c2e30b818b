"""Engine-level settings per backend.

SQLite (embedded default) runs in WAL mode and starts every transaction with
BEGIN IMMEDIATE: one writer at a time, no "database is locked" upgrade failures when
two requests read then write.

PostgreSQL: a pooled connection is pinged (``SELECT 1``) before use only when it sat idle
for ``PING_IDLE_SECONDS`` or more. ``pool_pre_ping`` would ping before every request, one
round trip more than a one-click unsubscribe's own work; a connection used a moment ago is
as good as a ping. A server that went away meanwhile fails that one request, and SQLAlchemy
then drops every pooled connection (a disconnect invalidates the pool), so the next ones
reconnect; an opt-out among the failed requests is spooled (``services.optout.spool``).
"""

from __future__ import annotations

import time

from sqlalchemy import event, exc

#: A connection idle this long in the pool is pinged before it is handed out.
PING_IDLE_SECONDS = 1.0
_LAST_USED = "flexmail_last_used"


def _ping_if_idle(engine) -> None:
    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection, record):
        if record is not None:
            record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection, record, _proxy):
        last = record.info.get(_LAST_USED)
        if last is not None and time.monotonic() - last < PING_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:  # noqa: BLE001 (any failure means: not usable)
            alive = False
        if not alive:
            # The pool discards this connection and tries a fresh one (up to three times).
            raise exc.DisconnectionError("pooled connection did not answer a ping")


def init_app(app) -> None:
    from flexmail.extensions import db

    with app.app_context():
        engine = db.engine
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        _ping_if_idle(engine)
        return

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # Long read-only work (a proof export) must not hold the write lock.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("flexmail_readonly") else "BEGIN IMMEDIATE")
