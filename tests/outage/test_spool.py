"""The opt-out spool on the embedded default: SQLite made unreachable for real, corrupt and
forged lines kept and reported, concurrent drainers, file permissions."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flexmail.domain.tokens import Purpose, Signer
from flexmail.extensions import db
from tests.conftest import BACKEND, HASH_KEY, SECRET
from tests.helpers import token_of

# These run on the embedded default's own SQLite file (the fixtures of the postgres run
# would truncate it as if it were PostgreSQL); test_database_down.py covers PostgreSQL.
pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite outage tests run in the sqlite run")

ONE_CLICK = {"data": b"List-Unsubscribe=One-Click", "content_type": "application/x-www-form-urlencoded"}
ROOT = Path(__file__).resolve().parents[2]


class Embedded:
    """An app on a SQLite file whose folder the test can take away and give back."""

    def __init__(self, make_app, app_config, tmp_path: Path, **overrides):
        from flexmail.services.marketer import accounts, lists

        self.db_dir = tmp_path / "db"
        self.db_dir.mkdir()
        self.spool_dir = tmp_path / "spool"
        self.url = f"sqlite:///{self.db_dir / 'flexmail.db'}"
        self.app = make_app({**app_config, "DATABASE_URL": self.url, "BROKER_URL": "stub",
                             "RATELIMIT_STORAGE_URL": "memory://", "SPOOL_DIR": str(self.spool_dir),
                             "CONFIRM_PER_IP_PER_HOUR": 1000, **overrides})
        self.client = self.app.test_client()
        with self.app.app_context():
            account_id, key = accounts.create_account("Acme", scopes=["marketer"])
            self.list_id = lists.create_list(account_id, name="News", sender_name="Acme",
                                             sender_email="n@acme.example", consent_text="News.").id
        self.headers = {"Authorization": f"Bearer {key}"}

    def subscribe(self, n: int) -> list[tuple[int, str]]:
        made = []
        for i in range(n):
            response = self.client.post(f"/api/v1/lists/{self.list_id}/subscriptions", headers=self.headers, json={
                "email": f"r{i}@example.com", "ip": "203.0.113.9", "user_agent": "t", "source": "test"})
            assert response.status_code == 202, response.json
            sub_id = response.json["subscription"]["id"]
            url = self.client.get(f"/api/v1/subscriptions/{sub_id}", headers=self.headers).json["unsubscribe_url"]
            made.append((sub_id, "/unsubscribe/" + token_of(url)))
        return made

    def take_database_away(self) -> None:
        """Replace the database's folder by a file: every new connection fails to open."""
        with self.app.app_context():
            db.engine.dispose()
        self.db_dir.rename(self.db_dir.with_name("db-away"))
        self.db_dir.write_text("not a folder")

    def give_database_back(self) -> None:
        self.db_dir.unlink()
        self.db_dir.with_name("db-away").rename(self.db_dir)
        with self.app.app_context():
            db.engine.dispose()

    def cli(self, *args: str):
        return self.app.test_cli_runner().invoke(args=list(args))

    def unsubscribed_events(self) -> int:
        from flexmail.domain.consent import EventType
        from flexmail.models import ConsentEvent

        with self.app.app_context():
            count = db.session.scalar(select(func.count(ConsentEvent.id))
                                      .where(ConsentEvent.type == EventType.UNSUBSCRIBED))
            db.session.remove()
        return count


@pytest.fixture
def embedded(make_app, app_config, tmp_path):
    return Embedded(make_app, app_config, tmp_path)


def test_sqlite_unreachable_one_click_is_spooled_and_other_requests_get_503(embedded):
    """With the SQLite file unreachable a one-click POST answers 202 and is spooled, the API
    answers 503 with Retry-After, and the opt-out takes effect once the file is back."""
    (sub_id, path), = embedded.subscribe(1)
    embedded.take_database_away()
    response = embedded.client.post(path, **ONE_CLICK)
    assert response.status_code == 202
    api = embedded.client.get("/api/v1/lists", headers=embedded.headers)
    assert api.status_code == 503 and api.headers["Retry-After"] == "30"
    assert api.json["error"]["code"] == "unavailable"
    embedded.give_database_back()
    assert json.loads(embedded.cli("spool", "drain").output)["applied"] == 1
    detail = embedded.client.get(f"/api/v1/subscriptions/{sub_id}", headers=embedded.headers).json
    assert detail["status"] == "unsubscribed"


def test_corrupt_and_forged_lines_are_kept_in_the_rejected_file_and_reported(embedded, log_text):
    """A line whose checksum fails and a line whose token is not ours are moved to
    rejected.jsonl with their reason and counted by ``spool status``; the good lines apply."""
    from flexmail.services.optout import spool

    subs = embedded.subscribe(3)
    embedded.take_database_away()
    for _, path in subs:
        assert embedded.client.post(path, **ONE_CLICK).status_code == 202
    forged = Signer(("another-installation-key",)).dumps_untimed(Purpose.UNSUBSCRIBE, [subs[0][0]])
    with embedded.app.app_context():
        spool.append({"kind": "link", "method": "one-click", "token": forged, "all_lists": False, "reason": None,
                      "at": "2026-03-02T09:00:00Z", "ip": None, "user_agent": None})
    pending = embedded.spool_dir / "optouts.jsonl"
    raw = pending.read_bytes().split(b"\n")
    raw[1] = raw[1].replace(b'"one-click"', b'"one-clicK"')  # damage the second line
    pending.write_bytes(b"\n".join(raw))
    embedded.give_database_back()

    result = embedded.cli("spool", "drain")
    assert json.loads(result.output) == {"applied": 2, "already_applied": 0, "rejected": 2, "left": 0, "busy": False}
    assert embedded.unsubscribed_events() == 2
    rejected = [json.loads(line) for line in (embedded.spool_dir / "rejected.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rejected] == ["corrupt: checksum mismatch", "not a genuine unsubscribe token"]
    assert rejected[0]["line"] == raw[1].decode()  # kept byte for byte
    assert json.loads(embedded.cli("spool", "status").output)["rejected"] == 2
    assert json.loads(embedded.cli("spool", "status").output)["pending"] == 0
    assert "2 applied, 0 already applied, 2 rejected, 0 left" in log_text()
    assert json.loads(embedded.cli("spool", "drain").output)["rejected"] == 0  # reported once, kept


def test_spool_files_are_private(embedded):
    """The spool folder is 0700 and its files 0600: they hold unsubscribe tokens."""
    (_, path), = embedded.subscribe(1)
    embedded.take_database_away()
    assert embedded.client.post(path, **ONE_CLICK).status_code == 202
    assert stat.S_IMODE(embedded.spool_dir.stat().st_mode) == 0o700
    for file in embedded.spool_dir.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name


def test_concurrent_drainers_apply_each_line_once(embedded, tmp_path):
    """Three ``flask spool drain`` processes started together apply 20 spooled opt-outs
    exactly once between them."""
    subs = embedded.subscribe(20)
    embedded.take_database_away()
    for _, path in subs:
        assert embedded.client.post(path, **ONE_CLICK).status_code == 202
    embedded.give_database_back()
    env = {**os.environ, "FLEXMAIL_DATABASE_URL": embedded.url, "FLEXMAIL_SPOOL_DIR": str(embedded.spool_dir),
           "FLEXMAIL_SECRET_KEYS": SECRET, "FLEXMAIL_HASH_KEY": HASH_KEY, "FLEXMAIL_EMBEDDED_WORKER": "0",
           "FLEXMAIL_PUBLIC_URL": embedded.app.config["PUBLIC_URL"],
           "FLEXMAIL_SIGNING_KEY": embedded.app.config["SIGNING_KEY"],
           "FLEXMAIL_INSTANCE_PATH": str(tmp_path / "instance")}
    command = [sys.executable, "-m", "flask", "--app", "app", "spool", "drain"]
    processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(3)]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()[-2000:]
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    assert sum(r["applied"] for r in results) == 20
    assert embedded.unsubscribed_events() == 20
    assert json.loads(embedded.cli("spool", "drain").output)["applied"] == 0


def _wait_for(predicate, seconds: float = 30.0) -> bool:
    """Poll ``predicate`` until it holds (bounded; the drain loop runs in its own thread)."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.parametrize("process", ["web", "worker"])
def test_web_and_worker_processes_drain_the_spool_by_themselves(make_app, app_config, tmp_path, process):
    """A web process (from its first request) and a dramatiq worker (from its boot) run the
    drain loop: a spooled opt-out is applied once the database is back, with no command."""
    import dramatiq

    from flexmail import drainer

    embedded = Embedded(make_app, app_config, tmp_path, SPOOL_DRAIN_INTERVAL=1)
    subs = embedded.subscribe(2)
    embedded.take_database_away()
    for _, path in subs:
        assert embedded.client.post(path, **ONE_CLICK).status_code == 202
    worker = None
    if process == "worker":
        drainer.stop(embedded.app)  # the requests above started the web loop: leave it to the worker
        worker = dramatiq.Worker(embedded.app.extensions["dramatiq"], worker_threads=1)
        worker.start()
    try:
        embedded.give_database_back()
        assert _wait_for(lambda: embedded.unsubscribed_events() == 2)
        assert _wait_for(lambda: json.loads(embedded.cli("spool", "status").output)["pending"] == 0)
    finally:
        if worker is not None:
            worker.stop()
        drainer.stop(embedded.app)
