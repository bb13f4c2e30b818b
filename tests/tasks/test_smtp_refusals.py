"""Synchronous relay replies: a 5xx at RCPT or DATA is a report (no retries), a 4xx is retried."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from flexmail import clock
from flexmail.extensions import db
from flexmail.models import Suppression
from tests.delivery_support import ScriptedRelay, relay, rows, step

START = dt.datetime(2026, 4, 1, 8, 0, tzinfo=dt.UTC)
ADDRESS = "gone@example.com"


@pytest.fixture(autouse=True)
def frozen():
    clock.freeze(START)


def _signup(client, list_id, headers, email=ADDRESS):
    return client.post(f"/api/v1/lists/{list_id}/subscriptions", headers=headers,
                       json={"email": email, "ip": "203.0.113.7", "user_agent": "UA", "source": "t"})


def _proof(client, headers, email=ADDRESS):
    return client.get("/api/v1/proof", query_string={"email": email}, headers=headers).json


def _keep_stepping(app, worker, hours=6):
    for _ in range(12):
        clock.freeze(clock.now() + dt.timedelta(hours=hours / 12))
        step(app, worker)


def test_550_5_1_1_at_rcpt_suppresses_once_is_in_the_proof_and_is_never_retried(app_with_list, worker_for):
    """A relay answering 550 5.1.1 at RCPT: one attempt, the row bounced with code, status and text
    (without the address), one hard_bounce suppression, and the proof says why."""
    sink = ScriptedRelay(rcpt=[f"550 5.1.1 <{ADDRESS}>: Recipient address rejected: User unknown"] * 20)
    with relay(sink):
        app, client, list_id, headers = app_with_list(MAIL_URL=sink.url)
        worker = worker_for(app)
        sub_id = _signup(client, list_id, headers).json["subscription"]["id"]
        worker.drain()
        _keep_stepping(app, worker)
    assert sink.rcpt_count == 1 and sink.delivered == []  # no retry in six hours of sweeps
    [row] = rows(app)
    assert (row.status, row.attempts, row.error_code, row.error_status) == ("bounced", 1, 550, "5.1.1")
    assert ADDRESS not in row.last_error and "User unknown" in row.last_error
    with app.app_context():
        entries = list(db.session.scalars(select(Suppression).where(Suppression.reason == "hard_bounce")))
        assert len(entries) == 1
    state = client.get(f"/api/v1/subscriptions/{sub_id}", headers=headers).json["confirmation"]
    assert (state["status"], state["error_code"], state["error_status"]) == ("bounced", 550, "5.1.1")
    from flexmail.services.marketer import accounts

    with app.app_context():
        compliance = {"Authorization": f"Bearer {accounts.create_key(1, scopes=['compliance'])}"}
    events = [e for s in _proof(client, compliance)["subscriptions"] for e in s["events"]]
    # The refusal is classified like a bounce: the proof's ``bounced`` event says why.
    [refused] = [e for e in events if e["type"] == "bounced"]
    assert (refused["details"]["report"], refused["details"]["class"]) == ("smtp", "hard")
    assert [e["type"] for e in events].count("suppressed") == 1
    detail = client.get(f"/api/v1/subscriptions/{sub_id}", headers=headers).json
    [event] = [e for e in detail["events"] if e["type"] == "bounced"]
    assert (event["details"]["reason"], event["details"]["decision"]) == ("userunknown", "suppressed")
    assert event["details"]["status"] == "5.1.1" and event["details"]["class"] == "hard"
    assert ADDRESS not in event["details"]["diagnostic"]
    assert any(e["type"] == "suppressed" for e in detail["events"])
    assert _signup(client, list_id, headers).status_code == 409  # suppressed for the account


def test_451_then_accept_is_delivered_once(app_with_list, worker_for):
    """A relay answering 451 at RCPT first, then accepting: the mail is retried on schedule and delivered once."""
    sink = ScriptedRelay(rcpt=["451 4.7.1 greylisted, try again later"])
    with relay(sink):
        app, client, list_id, headers = app_with_list(MAIL_URL=sink.url)
        worker = worker_for(app)
        sub_id = _signup(client, list_id, headers).json["subscription"]["id"]
        worker.drain()
        [row] = rows(app)
        assert (row.status, row.error_code, row.error_status) == ("pending", 451, "4.7.1")
        _keep_stepping(app, worker)
    assert sink.rcpt_count == 2 and len(sink.delivered) == 1
    [row] = rows(app)
    assert (row.status, row.attempts) == ("sent", 2)
    detail = client.get(f"/api/v1/subscriptions/{sub_id}", headers=headers).json
    assert [e["type"] for e in detail["events"]].count("confirmation_sent") == 1
    with app.app_context():
        assert db.session.scalar(select(Suppression)) is None


def test_554_policy_refusal_at_data_bounces_without_suppressing_and_can_be_resent(app_with_list, worker_for):
    """554 5.7.1 at DATA (a block of the sender, not the address): bounced at once, nobody
    suppressed, the proof says why (class other); a re-send after the block is lifted delivers once."""
    sink = ScriptedRelay(data=["554 5.7.1 Service unavailable; client host blocked"])
    with relay(sink):
        app, client, list_id, headers = app_with_list(MAIL_URL=sink.url)
        worker = worker_for(app)
        sub_id = _signup(client, list_id, headers).json["subscription"]["id"]
        worker.drain()
        _keep_stepping(app, worker)
        assert len(sink.data_seen) == 1 and sink.delivered == []
        [row] = rows(app)
        assert (row.status, row.error_code, row.error_status) == ("bounced", 554, "5.7.1")
        detail = client.get(f"/api/v1/subscriptions/{sub_id}", headers=headers).json
        [event] = [e for e in detail["events"] if e["type"] == "bounced"]
        assert (event["details"]["class"], event["details"]["decision"]) == ("sender", "reported")
        assert not any(e["type"] == "suppressed" for e in detail["events"])
        with app.app_context():
            assert db.session.scalar(select(Suppression)) is None
        assert client.post(f"/api/v1/subscriptions/{sub_id}/confirmation", headers=headers).status_code == 202
        worker.drain()
        step(app, worker)
    assert len(sink.delivered) == 1
    assert sink.delivered[0].content == sink.data_seen[0]  # the same bytes as the refused attempt


def test_erasure_clears_the_stored_message_of_a_refused_mail(app_with_list, worker_for):
    """A bounced row keeps its rendered bytes for a re-send; erasing the person removes them."""
    sink = ScriptedRelay(data=["554 5.7.1 blocked"])
    with relay(sink):
        app, client, list_id, headers = app_with_list(MAIL_URL=sink.url)
        worker = worker_for(app)
        _signup(client, list_id, headers)
        worker.drain()
    [row] = rows(app)
    assert row.status == "bounced" and ADDRESS.encode() in row.body
    from flexmail.services.marketer import accounts

    with app.app_context():
        compliance = {"Authorization": f"Bearer {accounts.create_key(1, scopes=['compliance', 'marketer'])}"}
    assert client.post("/api/v1/erasures", json={"email": ADDRESS}, headers=compliance).status_code in (200, 202)
    [row] = rows(app)
    assert row.body is None
