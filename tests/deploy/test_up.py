"""`./dev up` (deploy/up.py) starts the whole topology against this machine's services and stops it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import BACKEND, PG_ADMIN_URL, need_service

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.postgres
@pytest.mark.skipif(BACKEND != "postgres", reason="runs in the PostgreSQL + Redis pass")
def test_up_check_creates_the_database_migrates_and_every_process_becomes_ready(tmp_path):
    """`up.py --check` creates a missing database, migrates it, starts web, workers, relay sink and inbound,
    sees /ready 200 and /metrics with Flexmail's series, then stops every process it started."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    need_service("Redis", "127.0.0.1", 6379)
    name = f"flexmail_up_{os.getpid()}"
    server = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://")
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        cmd = [sys.executable, "deploy/up.py", "--check", "--server", server, "--database", name,
               "--redis", "redis://127.0.0.1:6379/3", "--port", str(_free_port()), "--workers", "1",
               "--threads", "1", "--web-workers", "1", "--relay-port", str(_free_port()),
               "--inbound-port", str(_free_port()), "--metrics-port", str(_free_port()), "--instance",
               str(tmp_path / "instance")]
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
        out = run.stdout + run.stderr
        assert run.returncode == 0, out[-4000:]
        assert f"database {name} created" in out
        assert '"migrations": "ok"' in out and "/ready 200" in out
        for process in ("web", "worker-1", "relay", "inbound"):
            assert f"{process:>8} | " in out, process
        assert "up: all stopped" in out
        with admin.connect() as conn:  # nobody is left connected to the database
            left = conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
        assert left == 0
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
