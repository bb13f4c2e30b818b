"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
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
            assert {"consent_events_guard", "ledger_nodes_frozen", "ledger_tree_heads_frozen"} <= triggers
        else:
            triggers = set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
            assert {"consent_events_no_delete", "consent_events_chain_fixed", "consent_events_redact_only",
                    "consent_events_seq_once", "ledger_nodes_no_update", "ledger_nodes_no_delete",
                    "ledger_tree_heads_no_update", "ledger_tree_heads_no_delete"} <= triggers
    downgrade = _flask(["db", "downgrade", "base"], env)
    assert downgrade.returncode == 0, downgrade.stderr[-3000:]
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_an_old_hash_chain_migrates_into_the_first_leaves_of_the_tree(database_url, tmp_path):
    """A database with chained events of the initial schema upgrades; the first seal makes them leaves
    1..n in seq order under a signed head whose root is theirs, and the old chain columns stay."""
    from flexmail.domain import ledger

    env = {**os.environ, "FLEXMAIL_DATABASE_URL": database_url, "FLEXMAIL_INSTANCE_PATH": str(tmp_path / "inst"),
           "FLEXMAIL_EMBEDDED_WORKER": "0"}
    step = _flask(["db", "upgrade", "0a5d2dca01fa"], env)
    assert step.returncode == 0, step.stderr[-3000:]
    engine = create_engine(database_url)
    prev, pepper = ledger.GENESIS, "unused-for-this-check"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO accounts (id, name, created_at) VALUES (1, 'Old', CURRENT_TIMESTAMP)"))
        for seq in range(1, 6):
            salt = f"salt{seq}"
            row = {"account_id": 1, "seq": seq, "subscription_id": None, "list_id": None, "type": "suppressed",
                   "at": f"2026-01-0{seq}T00:00:00Z", "source": "api", "details_hash": ledger.details_digest({}),
                   "commitments": ledger.commitments(pepper, salt, {}), "prev_hash": prev}
            content = ledger.content_hash(row)
            entry = ledger.entry_hash(prev, content)
            conn.execute(text(
                "INSERT INTO consent_events (account_id, seq, type, at, source, details, details_hash, salt, "
                "commitments, prev_hash, content_hash, entry_hash) VALUES (1, :seq, 'suppressed', :at, 'api', '{}', "
                ":dh, :salt, :c, :prev, :content, :entry)"),
                {"seq": seq, "at": f"2026-01-0{seq} 00:00:00+00:00", "dh": row["details_hash"], "salt": salt,
                 "c": json.dumps(row["commitments"]), "prev": prev, "content": content, "entry": entry})
            prev = entry
        conn.execute(text("INSERT INTO ledger_heads (account_id, seq, entry_hash, updated_at) "
                          "VALUES (1, 5, :h, CURRENT_TIMESTAMP)"), {"h": prev})
    engine.dispose()
    upgrade = _flask(["db", "upgrade"], env)
    assert upgrade.returncode == 0, upgrade.stderr[-3000:]
    sealed = _flask(["proof", "seal"], env)
    assert sealed.returncode == 0, sealed.stderr[-3000:]
    head = json.loads(sealed.stdout.strip().splitlines()[-1])
    assert head["tree_size"] == 5 and head["account_id"] == 1
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = list(conn.execute(text("SELECT seq, content_hash, entry_hash FROM consent_events ORDER BY seq")))
    engine.dispose()
    from flexmail.domain import merkle

    assert [r[0] for r in rows] == [1, 2, 3, 4, 5] and rows[-1][2] == prev
    assert head["root_hash"] == merkle.root_of(ledger.leaf(r[1]) for r in rows).hex()
