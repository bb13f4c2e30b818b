"""Outbox delivery through relay outages: one retry schedule on the row, same bytes every
attempt, failed rows visible and re-sendable, never a dramatiq retry."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from flexmail import clock
from flexmail.domain.retry import covered_seconds
from tests.delivery_support import ScriptedRelay, relay, rows, run_until, step
from tests.helpers import free_port

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def frozen():
    clock.freeze(START)


def _app(app_with_list, **config):
    return app_with_list(**config)


def _signup(client, list_id, headers, email):
    response = client.post(f"/api/v1/lists/{list_id}/subscriptions", headers=headers,
                           json={"email": email, "ip": "203.0.113.7", "user_agent": "UA", "source": "t"})
    assert response.status_code == 202, response.json
    return response.json["subscription"]["id"]


def _events(client, headers, sub_id, kind):
    detail = client.get(f"/api/v1/subscriptions/{sub_id}", headers=headers).json
    return [e for e in detail["events"] if e["type"] == kind]


def test_a_48_hour_relay_outage_loses_nothing_and_each_mail_goes_out_once(frozen, app_with_list, worker_for):
    """Relay unreachable for 48 h (connection refused): the rows wait on their own schedule,
    and once the relay is back every mail is delivered exactly once, with no dramatiq retry."""
    port = free_port()
    app, client, list_id, headers = _app(app_with_list, MAIL_URL=f"smtp://127.0.0.1:{port}")
    worker = worker_for(app)
    subs = [_signup(client, list_id, headers, f"p{i}@example.com") for i in range(3)]
    steps = run_until(app, worker, START + dt.timedelta(hours=48))
    assert clock.now() >= START + dt.timedelta(hours=47)
    waiting = [(r.status, r.attempts) for r in rows(app)]
    assert all(status == "pending" and attempts >= 50 for status, attempts in waiting), waiting
    assert steps >= 50
    sink = ScriptedRelay()
    with relay(sink, port):
        step(app, worker)
        for _ in range(3):  # later sweeps and stray queue messages send nothing again
            clock.freeze(clock.now() + dt.timedelta(hours=2))
            step(app, worker)
    assert sorted(e.rcpt_tos[0] for e in sink.delivered) == ["p0@example.com", "p1@example.com", "p2@example.com"]
    assert [r.status for r in rows(app)] == ["sent"] * 3
    for sub_id in subs:
        assert len(_events(client, headers, sub_id, "confirmation_sent")) == 1
    broker = app.extensions["dramatiq"]
    assert broker.get_actor("send_outbox").options.get("max_retries") == 0
    assert not getattr(broker, "dead_letters", [])


def test_schedule_doubles_from_30_seconds_to_an_hour_and_spans_more_than_48_hours(frozen, app_with_list, worker_for):
    """Successive attempts of one row wait about 30 s, 60 s, 120 s ... up to 1 h (jitter 10%),
    and the default number of attempts spans more than 48 h."""
    app, client, list_id, headers = _app(app_with_list, MAIL_URL=f"smtp://127.0.0.1:{free_port()}")
    worker = worker_for(app)
    _signup(client, list_id, headers, "s@example.com")
    worker.drain()  # the first attempt, at START
    waits = []
    for _ in range(9):
        [row] = rows(app)
        waits.append((row.next_attempt_at - clock.now()).total_seconds())
        step(app, worker)
    assert [r.attempts for r in rows(app)] == [10]
    nominal = [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    for wait, expected in zip(waits, nominal, strict=True):
        assert expected * 0.9 <= wait <= expected * 1.1, waits
    assert covered_seconds(app.config["OUTBOX_MAX_ATTEMPTS"], base=30, cap=3600) > 48 * 3600


def test_every_attempt_sends_the_same_bytes_and_the_proof_digest_is_of_what_arrived(frozen, app_with_list,
                                                                                     worker_for):
    """The first attempt is refused with 451 after DATA; the second sends byte-identical
    content (same link), and confirmation_sent's digest is the SHA-256 of the received mail."""
    sink = ScriptedRelay(data=["451 4.3.0 try again later"])
    with relay(sink):
        app, client, list_id, headers = _app(app_with_list, MAIL_URL=sink.url)
        worker = worker_for(app)
        sub_id = _signup(client, list_id, headers, "same@example.com")
        worker.drain()
        assert len(sink.data_seen) == 1 and not sink.delivered
        clock.freeze(START + dt.timedelta(minutes=5))
        step(app, worker)
    assert len(sink.delivered) == 1
    assert sink.data_seen[0] == sink.data_seen[1] == sink.delivered[0].content
    [sent] = _events(client, headers, sub_id, "confirmation_sent")
    assert sent["details"]["message_sha256"] == hashlib.sha256(sink.delivered[0].content).hexdigest()
    assert [r.attempts for r in rows(app)] == [2]


def test_attempts_used_up_leave_a_failed_row_visible_in_api_and_proof_and_resendable(frozen, app_with_list,
                                                                                    worker_for):
    """After the last attempt the row is failed with its reason (API and a confirmation_failed
    event); the sweeper never takes it again; POST .../confirmation makes it due and it goes out once."""
    port = free_port()
    app, client, list_id, headers = _app(app_with_list, MAIL_URL=f"smtp://127.0.0.1:{port}", OUTBOX_MAX_ATTEMPTS=3)
    worker = worker_for(app)
    sub_id = _signup(client, list_id, headers, "late@example.com")
    run_until(app, worker, START + dt.timedelta(days=3))
    detail = client.get(f"/api/v1/subscriptions/{sub_id}", headers=headers).json
    assert detail["confirmation"]["status"] == "failed"
    assert detail["confirmation"]["attempts"] == 3
    assert detail["confirmation"]["last_error"] == "ConnectionRefusedError"
    [failed] = _events(client, headers, sub_id, "confirmation_failed")
    assert failed["details"]["reason"] == "attempts_exhausted" and failed["details"]["attempts"] == 3
    sink = ScriptedRelay()
    with relay(sink, port):
        clock.freeze(clock.now() + dt.timedelta(days=1))
        step(app, worker)
        assert sink.delivered == []  # a failed row is not retried by itself
        response = client.post(f"/api/v1/subscriptions/{sub_id}/confirmation", headers=headers)
        assert response.status_code == 202, response.json
        assert response.json["status"] in {"pending", "sending", "sent"}  # the worker may be quick
        worker.drain()
        step(app, worker)
    assert len(sink.delivered) == 1
    assert client.get(f"/api/v1/subscriptions/{sub_id}", headers=headers).json["confirmation"]["status"] == "sent"
    again = client.post(f"/api/v1/subscriptions/{sub_id}/confirmation", headers=headers)
    assert again.status_code == 409 and again.json["error"]["code"] == "nothing_to_resend"


def test_resend_refuses_unknown_and_foreign_subscriptions(app_with_list, create_account):
    """Re-send answers 404 for a subscription of another account and 409 for a mail that did not fail."""
    app, client, list_id, headers = _app(app_with_list)
    sub_id = _signup(client, list_id, headers, "x@example.com")
    assert client.post("/api/v1/subscriptions/999/confirmation", headers=headers).status_code == 404
    response = client.post(f"/api/v1/subscriptions/{sub_id}/confirmation", headers=headers)
    assert response.status_code == 409 and response.json["error"]["code"] == "nothing_to_resend"
