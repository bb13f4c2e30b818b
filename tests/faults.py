"""Servers a test starts, stops and restarts itself, to inject outages for real.

``PostgresServer``: a private PostgreSQL 15 cluster (initdb + pg_ctl) in a temporary folder,
on a free port. initdb refuses to run as root, so as root (CI) the cluster belongs to the
``postgres`` system user and every command runs through ``runuser``.
``RedisServer``: a ``redis-server`` process on a free port, without persistence.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.helpers import free_port

PG_BIN = Path(os.environ.get("FLEXMAIL_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _missing(what: str) -> None:
    if CI:
        pytest.fail(f"{what} is needed for the outage tests")
    pytest.skip(f"{what} is not installed")


def _wait_port(port: int, *, up: bool, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            if up:
                return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not go {'up' if up else 'down'}")


class PostgresServer:
    """A PostgreSQL cluster of the test's own; ``stop()`` and ``start()`` at will."""

    def __init__(self):
        if not (PG_BIN / "initdb").exists():
            _missing(f"PostgreSQL 15 ({PG_BIN})")
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="flexmail-pg-"))
        self.data = self.root / "data"
        self.user = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                _missing("the postgres system user")
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C.UTF-8")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(PG_BIN / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.root)

    def start(self) -> None:
        # fsync=off only matters if the machine crashes; an immediate stop (our "crash")
        # still keeps every committed transaction, as synchronous_commit stays on.
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        _wait_port(self.port, up=True)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: like a crash, open connections are cut)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        _wait_port(self.port, up=False)

    def destroy(self) -> None:
        try:
            self.stop()
        except (subprocess.CalledProcessError, RuntimeError):
            pass
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A redis-server of the test's own; ``kill()`` (SIGKILL) and ``start()`` again."""

    def __init__(self):
        self.binary = shutil.which("redis-server")
        if not self.binary:
            _missing("redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, up=True)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
        _wait_port(self.port, up=False)

    def destroy(self) -> None:
        if self.process and self.process.poll() is None:
            self.kill()
