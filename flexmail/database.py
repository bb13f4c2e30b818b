"""Engine-level settings per backend.

SQLite (embedded default) runs in WAL mode and starts every transaction with
BEGIN IMMEDIATE: one writer at a time, no "database is locked" upgrade failures when
two requests read then write. PostgreSQL needs nothing special.
"""

from __future__ import annotations

from sqlalchemy import event


def init_app(app) -> None:
    from flexmail.extensions import db

    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    with app.app_context():
        engine = db.engine

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
