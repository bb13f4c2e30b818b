"""Fixtures: an app per test on the backend chosen by FLEXMAIL_TEST_BACKEND.

``sqlite`` (default): a fresh SQLite file per test, StubBroker, Maildir.
``postgres``: PostgreSQL (schema made once, tables truncated per test) and a Redis broker
with a namespace per test. In CI (``CI=true``) a missing service fails; locally it skips.
"""

from __future__ import annotations

import logging
import mailbox
import os
import socket
import threading
import uuid
from email import message_from_bytes, policy
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from flexmail import clock, create_app
from flexmail.extensions import db
from tests.helpers import smtp_server

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKEND = os.environ.get("FLEXMAIL_TEST_BACKEND", "sqlite")
#: The server's ``test`` database is only used to create one database per test session,
#: so that runs side by side (developers, CI, helpers) never share tables.
PG_ADMIN_URL = os.environ.get("FLEXMAIL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_DATABASE = f"flexmail_test_{os.getpid()}"
PG_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_DATABASE
REDIS_URL = os.environ.get("FLEXMAIL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBIT_URL = os.environ.get("FLEXMAIL_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
SECRET = "test-secret-key-newest"
HASH_KEY = "test-hash-pepper"


def need_service(name: str, host: str, port: int) -> None:
    """Fail in CI, skip locally, when a service the test needs does not answer."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        message = f"{name} is not reachable at {host}:{port} ({exc})"
        if CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def pg_schema():
    """Create the schema once per session on PostgreSQL (from the models)."""
    if BACKEND != "postgres":
        yield None
        return
    need_service("PostgreSQL", "127.0.0.1", 5432)
    need_service("Redis", "127.0.0.1", 6379)
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {PG_DATABASE}"))
    app = create_app(_config(Path(f"/tmp/flexmail-pg-schema-{os.getpid()}"), uuid.uuid4().hex))
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    yield PG_URL
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
    admin.dispose()


def _config(tmp: Path, namespace: str) -> dict:
    config = {
        "TESTING": True,
        "EMBEDDED_WORKER": False,
        "OUTBOX_SWEEP_INTERVAL": 0,
        "LEDGER_SEAL_INTERVAL": 0,
        "SPOOL_DRAIN_INTERVAL": 0,
        "PUBLIC_URL": "http://flexmail.test",
        "SECRET_KEYS": [SECRET],
        "HASH_KEY": HASH_KEY,
        "MAIL_URL": f"maildir:{tmp / 'mail'}",
        "RATELIMIT_KEY_PREFIX": f"t{namespace}",
        # limits' Redis storage resets by deleting every key under its prefix: one prefix per
        # pytest process, so runs side by side on one Redis do not wipe each other's counters.
        "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": f"LIMITS-{PG_DATABASE}"},
    }
    if BACKEND == "postgres":
        config.update(DATABASE_URL=PG_URL, BROKER_URL=REDIS_URL, BROKER_NAMESPACE=f"fm-test-{namespace}",
                      RATELIMIT_STORAGE_URL=REDIS_URL)
    else:
        config.update(DATABASE_URL=f"sqlite:///{tmp / 'flexmail.db'}", BROKER_URL="stub")
    return config


@pytest.fixture
def app_config(tmp_path):
    """Overrides a test can tweak before ``app`` is built."""
    return _config(tmp_path, uuid.uuid4().hex[:12])


@pytest.fixture
def make_app(tmp_path, pg_schema, monkeypatch):
    """Build an app with overrides; tables are fresh for each test."""
    monkeypatch.setenv("FLEXMAIL_INSTANCE_PATH", str(tmp_path / "instance"))
    built = []

    def make(config: dict):
        app = create_app(config)
        # Flask-Limiter keeps its storage (and key prefix) across apps: start every test at zero.
        from flexmail.guards import limiter

        with app.app_context():
            limiter.reset()
        with app.app_context():
            if BACKEND == "postgres":
                if not built:
                    tables = ", ".join(t.name for t in db.metadata.sorted_tables)
                    with db.engine.begin() as conn:
                        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            else:
                db.create_all()
        built.append(app)
        return app

    yield make
    for app in built:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        broker = app.extensions["dramatiq"]
        if BACKEND == "postgres":
            broker.flush_all()
        broker.close()


@pytest.fixture
def app(make_app, app_config):
    return make_app(app_config)


@pytest.fixture
def app_with_list(make_app, app_config):
    """``app_with_list(**config)``: an app built with config overrides, one account (marketer
    key) and one list; returns ``(app, client, list_id, headers)``."""
    from flexmail.services.marketer import accounts, lists

    def make(**overrides):
        app = make_app({**app_config, **overrides})
        with app.app_context():
            account_id, key = accounts.create_account("A", scopes=["marketer"])
            list_id = lists.create_list(account_id, name="L", sender_name="S", sender_email="s@example.com",
                                        consent_text="C").id
        return app, app.test_client(), list_id, {"Authorization": f"Bearer {key}"}

    return make


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(autouse=True)
def _unfreeze():
    yield
    clock.freeze(None)


def _start_worker(app) -> dramatiq.Worker:
    broker = app.extensions["dramatiq"]
    w = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    w.start()

    def drain():
        for queue in broker.get_declared_queues():
            if BACKEND == "postgres":
                broker.join(queue, timeout=30_000)
            else:
                broker.join(queue, fail_fast=True, timeout=30_000)
        w.join()

    w.drain = drain
    return w


@pytest.fixture
def worker(app):
    """A dramatiq worker on the app's broker; ``worker.drain()`` runs everything queued."""
    w = _start_worker(app)
    yield w
    w.stop()


@pytest.fixture
def worker_for():
    """``worker_for(app)``: a worker (as ``worker``) for an app built by ``make_app``."""
    started = []

    def make(app):
        started.append(_start_worker(app))
        return started[-1]

    yield make
    for w in started:
        w.stop()


@pytest.fixture
def account(app):
    """An account with a marketer+compliance key: ``account.id``, ``account.key``, ``account.headers``."""
    from flexmail.services.marketer import accounts

    with app.app_context():
        account_id, key = accounts.create_account("Acme", scopes=["marketer", "compliance"])
    return _Account(account_id, key)


class _Account:
    def __init__(self, account_id, key):
        self.id, self.key = account_id, key
        self.headers = {"Authorization": f"Bearer {key}"}


@pytest.fixture
def create_account(app):
    from flexmail.services.marketer import accounts

    def make(name="Other", scopes=("marketer",)):
        with app.app_context():
            return _Account(*accounts.create_account(name, scopes=list(scopes)))

    return make


@pytest.fixture
def create_list(client, account):
    def make(acct=None, **overrides):
        acct = acct or account
        body = {"name": "Weekly News", "sender_name": "Acme News", "sender_email": "news@acme.example",
                "consent_text": "Send me the weekly Acme newsletter. I can unsubscribe at any time."}
        body.update(overrides)
        response = client.post("/api/v1/lists", json=body, headers=acct.headers)
        assert response.status_code == 201, response.json
        return response.json

    return make


@pytest.fixture
def subscribe(client, account):
    def make(list_id, email="Reader@Example.com", acct=None, **overrides):
        acct = acct or account
        body = {"email": email, "ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (signup)", "source": "test"}
        body.update(overrides)
        return client.post(f"/api/v1/lists/{list_id}/subscriptions", json=body, headers=acct.headers)

    return make


def read_maildir(app) -> list:
    """Messages delivered to the app's Maildir, parsed, oldest first."""
    path = app.config["MAIL_URL"].removeprefix("maildir:")
    if not os.path.isdir(path):
        return []
    box = mailbox.Maildir(path, create=False)
    raw = [(os.path.getmtime(os.path.join(path, "new", key)), key, box.get_bytes(key)) for key in box.keys()]
    return [message_from_bytes(data, policy=policy.default) for _, _, data in sorted(raw)]


@pytest.fixture
def maildir(app):
    """``maildir()`` reads the test app's Maildir."""
    return lambda: read_maildir(app)


@pytest.fixture
def maildir_for():
    """``maildir_for(app)`` reads the Maildir of an app built by ``make_app``."""
    return read_maildir


@pytest.fixture
def live_server(app):
    """The app on a real HTTP server in a thread: ``live_server.url``."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()
    thread.join(5)


@pytest.fixture
def smtp_sink():
    """A real SMTP server (aiosmtpd) that keeps every envelope it receives."""
    class Sink:
        def __init__(self):
            self.envelopes = []

        async def handle_DATA(self, server, session, envelope):
            self.envelopes.append(envelope)
            return "250 OK"

    with smtp_server(Sink()) as handler:
        yield handler


@pytest.fixture
def log_text(caplog):
    """Every log line of the test, formatted as a handler would write it."""
    caplog.set_level(logging.DEBUG)

    def read():
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return "\n".join(formatter.format(r) for r in caplog.records)

    return read
