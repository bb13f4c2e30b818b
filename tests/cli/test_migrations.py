"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

import flexmail.models  # noqa: F401  (the tables the migrations must build)
from flexmail.extensions import db
from tests.conftest import BACKEND, PG_ADMIN_URL, need_service

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _flask(args, env):
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def database_url(tmp_path):
    if BACKEND != "postgres":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    need_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"flexmail_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def test_upgrade_builds_the_models_schema_and_downgrade_removes_it(database_url, tmp_path):
    """`flask db upgrade` on an empty database gives no difference to the models; downgrade undoes it."""
    env = {**os.environ, "FLEXMAIL_DATABASE_URL": database_url, "FLEXMAIL_INSTANCE_PATH": str(tmp_path / "inst"),
           "FLEXMAIL_EMBEDDED_WORKER": "0"}
    upgrade = _flask(["db", "upgrade"], env)
    assert upgrade.returncode == 0, upgrade.stderr[-3000:]
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
    assert diff == [], diff
    assert {"accounts", "lists", "subscriptions", "consent_events", "outbox"} <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:  # the ledger guards are part of the migrated schema too
        if engine.dialect.name == "postgresql":
            triggers = set(conn.scalars(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))
            assert "consent_events_guard" in triggers
        else:
            triggers = set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
            assert {"consent_events_no_delete", "consent_events_chain_fixed", "consent_events_redact_only"} <= triggers
    downgrade = _flask(["db", "downgrade", "base"], env)
    assert downgrade.returncode == 0, downgrade.stderr[-3000:]
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
