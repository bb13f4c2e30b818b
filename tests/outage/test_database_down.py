"""Opt-outs while PostgreSQL is down: spooled, answered 202, applied once with their time.

The test starts its own PostgreSQL cluster and stops it mid-test (``tests.faults``); the
requests travel over real HTTP to the app in a thread.
"""

from __future__ import annotations

import datetime as dt
import json
import smtplib
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from werkzeug.serving import make_server

from flexmail import clock
from flexmail import models as _models  # noqa: F401  (registers the tables)
from flexmail.domain import spool as spool_lines
from flexmail.extensions import db
from tests.faults import PostgresServer
from tests.helpers import free_port, token_of

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
ONE_CLICK = b"List-Unsubscribe=One-Click"


@pytest.fixture(scope="module")
def pg():
    server = PostgresServer()
    server.start()
    engine = create_engine(server.url)
    db.metadata.create_all(engine)
    engine.dispose()
    yield server
    server.destroy()


@pytest.fixture
def outage(pg, make_app, app_config, tmp_path):
    """An app on the test's own PostgreSQL, an account with a list, and helpers."""
    from flexmail.services.marketer import accounts, lists

    if not _up(pg):
        pg.start()
    engine = create_engine(pg.url)
    with engine.begin() as conn:  # fresh tables for every test
        conn.exec_driver_sql("TRUNCATE " + ", ".join(t.name for t in db.metadata.sorted_tables)
                             + " RESTART IDENTITY CASCADE")
    engine.dispose()
    app = make_app({**app_config, "DATABASE_URL": pg.url, "BROKER_URL": "stub",
                    "RATELIMIT_STORAGE_URL": "memory://", "SPOOL_DIR": str(tmp_path / "spool"),
                    "CONFIRM_PER_IP_PER_HOUR": 1000, "DATABASE_CONNECT_TIMEOUT": 2})
    with app.app_context():
        account_id, key = accounts.create_account("Acme", scopes=["marketer", "compliance"])
        list_id = lists.create_list(account_id, name="News", sender_name="Acme", sender_email="n@acme.example",
                                    consent_text="News from Acme.").id
    return Outage(app, pg, list_id, {"Authorization": f"Bearer {key}"}, tmp_path / "spool")


def _up(pg) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", pg.port), timeout=0.5).close()
        return True
    except OSError:
        return False


class Outage:
    def __init__(self, app, pg, list_id, headers, spool_dir: Path):
        self.app, self.pg, self.list_id, self.headers, self.spool_dir = app, pg, list_id, headers, spool_dir
        self.client = app.test_client()

    def subscribe(self, n: int) -> list[tuple[int, str]]:
        """``n`` pending subscriptions: (id, unsubscribe path)."""
        made = []
        for i in range(n):
            response = self.client.post(f"/api/v1/lists/{self.list_id}/subscriptions", headers=self.headers, json={
                "email": f"reader{i}@example.com", "ip": "203.0.113.7", "user_agent": "t", "source": "test"})
            assert response.status_code == 202, response.json
            sub_id = response.json["subscription"]["id"]
            detail = self.client.get(f"/api/v1/subscriptions/{sub_id}", headers=self.headers).json
            made.append((sub_id, "/unsubscribe/" + token_of(detail["unsubscribe_url"])))
        return made

    def detail(self, sub_id: int) -> dict:
        response = self.client.get(f"/api/v1/subscriptions/{sub_id}", headers=self.headers)
        assert response.status_code == 200, response.json
        return response.json

    def unsubscribed_events(self, sub_id: int) -> list[dict]:
        return [e for e in self.detail(sub_id)["events"] if e["type"] == "unsubscribed"]

    def drain(self) -> dict:
        result = self.app.test_cli_runner().invoke(args=["spool", "drain"])
        return json.loads(result.output)

    def status(self) -> dict:
        return json.loads(self.app.test_cli_runner().invoke(args=["spool", "status"]).output)

    def spool_lines(self) -> list[bytes]:
        path = self.spool_dir / "optouts.jsonl"
        return [raw for raw in path.read_bytes().split(b"\n") if raw] if path.exists() else []


@pytest.fixture
def http(outage):
    server = make_server("127.0.0.1", 0, outage.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"

    def request(method: str, path: str, body: bytes | None = None, content_type: str | None = None,
                headers: dict | None = None):
        req = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    yield request
    server.shutdown()
    thread.join(5)


def test_twenty_one_click_posts_with_the_database_down_are_spooled_and_applied_once(outage, http, log_text):
    """With PostgreSQL stopped, 20 one-click POSTs answer 202 and leave 20 checksummed spool
    lines; after the restart one drain applies all 20 with their original times, a second
    drain applies nothing, and no token reaches a log line."""
    subs = outage.subscribe(20)
    outage.pg.stop()
    for i, (_, path) in enumerate(subs):
        clock.freeze(T0 + dt.timedelta(minutes=i))
        status, _, body = http("POST", path, ONE_CLICK, "application/x-www-form-urlencoded")
        assert status == 202, body[:300]
        assert b"Your unsubscribe is recorded" in body
    lines = outage.spool_lines()
    assert len(lines) == 20
    records = [spool_lines.decode(raw) for raw in lines]  # every checksum verifies
    assert [r["at"] for r in records] == [clock.iso(T0 + dt.timedelta(minutes=i)) for i in range(20)]
    assert {r["method"] for r in records} == {"one-click"}
    assert outage.status()["pending"] == 20

    outage.pg.start()
    clock.freeze(T0 + dt.timedelta(hours=5))
    assert outage.drain() == {"applied": 20, "already_applied": 0, "rejected": 0, "left": 0, "busy": False}
    for i, (sub_id, _) in enumerate(subs):
        assert outage.detail(sub_id)["status"] == "unsubscribed"
        (event,) = outage.unsubscribed_events(sub_id)
        assert event["at"] == clock.iso(T0 + dt.timedelta(minutes=i))
        assert event["source"] == "one-click" and event["details"]["actor"] == "mailbox_provider"
    assert outage.drain() == {"applied": 0, "already_applied": 0, "rejected": 0, "left": 0, "busy": False}
    assert outage.status() == {"directory": str(outage.spool_dir), "pending": 0, "rejected": 0}
    text = log_text()
    assert "opt-out spooled" in text and "20 applied" in text
    assert not any(path.rsplit("/", 1)[1] in text for _, path in subs)


def test_the_unsubscribe_page_works_while_the_database_is_down(outage, http):
    """GET shows the form (without details), its "stop all mail" POST answers 202, and after
    the restart the account-wide suppression and the other list's unsubscribe are recorded
    with the time of the click and the reason given."""
    from flexmail.services.marketer import lists

    (sub_id, path), = outage.subscribe(1)
    account_id = _account_of(outage, sub_id)
    with outage.app.app_context():
        other_list = lists.create_list(account_id, name="Deals", sender_name="Acme",
                                       sender_email="d@acme.example", consent_text="Deals.").id
    other = outage.client.post(f"/api/v1/lists/{other_list}/subscriptions", headers=outage.headers, json={
        "email": "reader0@example.com", "ip": "203.0.113.7", "user_agent": "t", "source": "test"}).json
    other_id = other["subscription"]["id"]
    outage.pg.stop()
    status, _, page = http("GET", path)
    assert status == 200 and b'name="via" value="page"' in page and b"all_lists" in page
    clock.freeze(T0)
    status, _, body = http("POST", path, b"via=page&all_lists=1&reason=too_many", "application/x-www-form-urlencoded")
    assert status == 202 and b"Your unsubscribe is recorded" in body and b"stop all mail" in body
    status, headers, _ = http("POST", path + "x", ONE_CLICK, "application/x-www-form-urlencoded")
    assert status == 404  # a link that is not ours is refused, database or not
    assert len(outage.spool_lines()) == 1

    outage.pg.start()
    clock.freeze(T0 + dt.timedelta(hours=1))
    assert outage.drain()["applied"] == 1
    (event,) = outage.unsubscribed_events(sub_id)
    assert event["at"] == clock.iso(T0) and event["source"] == "page"
    assert event["details"]["scope"] == "account" and event["details"]["reason"] == "too_many"
    assert outage.detail(other_id)["status"] == "unsubscribed"
    suppressed = [e for e in outage.detail(sub_id)["events"] if e["type"] == "suppressed"]
    assert len(suppressed) == 1 and suppressed[0]["at"] == clock.iso(T0)


def _account_of(outage, sub_id) -> int:
    from flexmail.models import Subscription

    with outage.app.app_context():
        return db.session.get(Subscription, sub_id).account_id


def test_mailto_unsubscribes_are_accepted_and_spooled_while_the_database_is_down(outage):
    """``inbound serve`` answers 250 and ``inbound deliver`` exits 0 with PostgreSQL stopped;
    both opt-outs are applied after the restart, with the time the mail arrived."""
    from flexmail.inbound import smtp
    from flexmail.services.optout import unsubscribe

    (first, _), (second, _) = outage.subscribe(2)
    with outage.app.app_context():
        addresses = [unsubscribe.mailto_address(first), unsubscribe.mailto_address(second)]
    port = free_port()
    controller = smtp.make_controller(outage.app, port=port)
    controller.start()
    try:
        outage.pg.stop()
        clock.freeze(T0)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            refused = client.sendmail("reader@example.com", [addresses[0]],
                                      b"Subject: unsubscribe\r\n\r\nplease\r\n")
        assert refused == {}  # 250 to DATA
    finally:
        controller.stop()
    clock.freeze(T0 + dt.timedelta(minutes=1))
    result = outage.app.test_cli_runner().invoke(args=["inbound", "deliver", "-r", addresses[1]],
                                                 input=b"Subject: unsubscribe\r\n\r\nplease\r\n")
    assert result.exit_code == 0, result.output
    assert len(outage.spool_lines()) == 2

    outage.pg.start()
    clock.freeze(T0 + dt.timedelta(hours=2))
    assert outage.drain()["applied"] == 2
    for sub_id, at in ((first, T0), (second, T0 + dt.timedelta(minutes=1))):
        (event,) = outage.unsubscribed_events(sub_id)
        assert event["at"] == clock.iso(at) and event["source"] == "mailto"
        assert len(event["details"]["message_sha256"]) == 64


def test_other_requests_answer_503_with_retry_after_while_the_database_is_down(outage, http):
    """The API answers 503 with the JSON envelope and Retry-After, pages an HTML 503: never 500."""
    (_, unsubscribe_path), = outage.subscribe(1)
    outage.pg.stop()
    status, headers, body = http("POST", unsubscribe_path + "/undo")
    # (Flask-Limiter raises Retry-After to its own window on a rate-limited route.)
    assert status == 503 and int(headers["Retry-After"]) >= 30 and b"briefly unavailable" in body
    status, headers, body = http("GET", "/api/v1/lists", headers=outage.headers)
    assert status == 503 and headers["Retry-After"] == "30"
    assert json.loads(body)["error"]["code"] == "unavailable"
    status, headers, body = http("POST", f"/api/v1/lists/{outage.list_id}/subscriptions",
                                 json.dumps({"email": "x@example.com"}).encode(), "application/json",
                                 headers=outage.headers)
    assert status == 503 and json.loads(body)["error"]["code"] == "unavailable"
    for path in (f"/subscribe/{outage.list_id}", "/confirm/abc", "/forward/abc"):
        status, headers, body = http("GET", path)
        assert status in (503, 404), (path, status)
        if status == 503:
            assert headers["Retry-After"] == "30" and b"briefly unavailable" in body
    status, headers, body = http("GET", f"/subscribe/{outage.list_id}")
    assert status == 503 and headers["Content-Type"].startswith("text/html")
    outage.pg.start()
    status, _, _ = http("GET", "/api/v1/lists", headers=outage.headers)
    assert status == 200  # the database answers again


def test_a_drain_that_dies_after_applying_applies_nothing_twice(outage, http, monkeypatch):
    """A drain killed between applying a line and noting it locally leaves the line in the
    spool; the next drain finds its marker in the database and skips it."""
    from flexmail.services.optout import spool

    subs = outage.subscribe(3)
    outage.pg.stop()
    for _, path in subs:
        assert http("POST", path, ONE_CLICK, "application/x-www-form-urlencoded")[0] == 202
    outage.pg.start()

    def crash(path, number):
        raise KeyboardInterrupt("killed after the first apply")

    monkeypatch.setattr(spool, "_mark_done", crash)
    with outage.app.app_context(), pytest.raises(KeyboardInterrupt):
        spool.drain()
    monkeypatch.undo()
    assert outage.status()["pending"] == 3
    assert outage.drain() == {"applied": 2, "already_applied": 1, "rejected": 0, "left": 0, "busy": False}
    for sub_id, _ in subs:
        assert len(outage.unsubscribed_events(sub_id)) == 1
    from flexmail.models import SpoolApplied

    with outage.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SpoolApplied)) == 3


def test_a_drain_while_the_database_is_still_down_keeps_every_line(outage, http):
    """Draining while PostgreSQL is down applies nothing, reports the lines as left and loses none."""
    subs = outage.subscribe(2)
    outage.pg.stop()
    for _, path in subs:
        assert http("POST", path, ONE_CLICK, "application/x-www-form-urlencoded")[0] == 202
    result = outage.app.test_cli_runner().invoke(args=["spool", "drain"])
    assert result.exit_code == 75 and json.loads(result.output)["left"] == 2
    assert outage.status()["pending"] == 2
    outage.pg.start()
    assert outage.drain()["applied"] == 2
