"""Redis (broker and rate-limit store) down: pages and API keep answering, nothing is lost.

The test starts its own redis-server, kills it (SIGKILL) mid-test and starts it again on
the same port; the app uses it both as the dramatiq broker and as Flask-Limiter's storage.
"""

from __future__ import annotations

import re
import uuid

import dramatiq
import pytest
from sqlalchemy import select

from flexmail.extensions import db
from tests.conftest import read_maildir
from tests.faults import RedisServer
from tests.helpers import link_from, token_of

CLIENT = {"REMOTE_ADDR": "198.18.12.34"}


@pytest.fixture(scope="module")
def redis_process():
    # Module scope: the app's teardown still talks to this Redis (the test leaves it running).
    server = RedisServer()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def redis_server(redis_process):
    if redis_process.process.poll() is not None:
        redis_process.start()
    yield redis_process
    from flexmail.guards import limiter

    # The Limiter object outlives this test's app: do not hand its "storage is dead" state on.
    limiter._storage_dead = False


@pytest.fixture
def app_config(app_config, redis_server):
    return {**app_config, "BROKER_URL": redis_server.url, "BROKER_NAMESPACE": f"fm-outage-{uuid.uuid4().hex[:8]}",
            "RATELIMIT_STORAGE_URL": redis_server.url, "OUTBOX_SWEEP_GRACE": 0}


def _run_worker(app) -> None:
    """Start a worker on the app's Redis broker, let it send everything queued, stop it."""
    broker = app.extensions["dramatiq"]
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        broker.join("mail", timeout=30_000)
        worker.join()
    finally:
        worker.stop()


def _csrf(client, list_id) -> str:
    page = client.get(f"/subscribe/{list_id}", environ_base=CLIENT)
    assert page.status_code == 200
    return re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()


def _outbox(app) -> list[tuple[int, str]]:
    from flexmail.models import OutboxMessage

    with app.app_context():
        rows = [(o.id, o.status) for o in db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
        db.session.remove()
    return rows


def test_pages_and_api_answer_normally_with_redis_down_and_the_outbox_sends_after(
        app, client, account, create_list, subscribe, redis_server, log_text):
    """With Redis killed the hosted form, the forward page, the undo and an API subscribe
    answer as usual (the limiter falls back to memory and says so); once Redis is back the
    sweeper enqueues the three confirmation mails they committed and each is sent once."""
    lst = create_list()
    response = subscribe(lst["id"], email="first@example.com")
    assert response.status_code == 202
    sub_id = response.json["subscription"]["id"]
    _run_worker(app)
    (mail,) = read_maildir(app)
    assert client.post("/confirm/" + token_of(link_from(mail, "confirm")), data={"method": "button"}).status_code == 200
    campaign = client.post("/api/v1/campaigns", headers=account.headers, json={
        "list_id": lst["id"], "subject": "News", "web_url": "https://acme.example/news"}).json
    detail = client.get(f"/api/v1/subscriptions/{sub_id}", headers=account.headers,
                        query_string={"campaign_id": campaign["id"]}).json
    forward_path = "/forward/" + token_of(detail["forward_url"])
    unsubscribe_path = "/unsubscribe/" + token_of(detail["unsubscribe_url"])
    sent_before = len(_outbox(app))

    redis_server.kill()
    form = client.post(f"/subscribe/{lst['id']}", environ_base=CLIENT, data={
        "csrf_token": _csrf(client, lst["id"]), "email": "form@example.com", "website": ""})
    assert form.status_code == 200 and b"Check your inbox" in form.data
    page = client.get(forward_path, environ_base=CLIENT)
    assert page.status_code == 200 and b"<form" in page.data
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()
    sent = client.post(forward_path, environ_base=CLIENT, data={
        "csrf_token": token, "friend": ["friend@example.org"], "sender_name": "Ann", "note": "", "website": ""})
    assert sent.status_code == 200  # answered; the friend's mail itself is not kept (see guarantees)
    assert client.post(unsubscribe_path, data=b"List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded").status_code == 200
    undo = client.post(unsubscribe_path + "/undo", environ_base=CLIENT)
    assert undo.status_code == 200 and b"Check your inbox" in undo.data, undo.data[:300]
    api = subscribe(lst["id"], email="api@example.com")
    assert api.status_code == 202, api.json
    assert client.get(f"/api/v1/lists/{lst['id']}", headers=account.headers).status_code == 200
    waiting = [row for row in _outbox(app)[sent_before:]]
    assert [status for _, status in waiting] == ["pending"] * 3
    text = log_text()
    assert "falling back to in-memory storage" in text
    assert "will retry" in text or "sweeper will retry" in text  # the failed enqueue is logged

    redis_server.start()
    result = app.test_cli_runner().invoke(args=["outbox", "sweep"])
    assert result.exit_code == 0 and result.output.strip() == "enqueued 3"
    _run_worker(app)
    assert [status for _, status in _outbox(app)] == ["sent"] * (sent_before + 3)
    recipients = sorted(str(m["To"]) for m in read_maildir(app)[1:])
    assert recipients == ["api@example.com", "first@example.com", "form@example.com"]
