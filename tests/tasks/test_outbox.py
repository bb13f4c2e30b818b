"""The transactional outbox: a committed mail is never lost and never sent twice."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap

from sqlalchemy import select

from flexmail import clock
from flexmail.extensions import db
from flexmail.models import OutboxMessage
from flexmail.services.delivery import outbox

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _outbox_rows(app):
    with app.app_context():
        return [(r.status, r.attempts) for r in db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]


def test_process_dying_between_commit_and_enqueue_still_sends_exactly_one_mail(app, app_config, account,
                                                                               create_list, worker, maildir):
    """A real process commits a signup and dies before enqueueing; the sweep on the next start sends it once."""
    lst = create_list()
    script = textwrap.dedent(f"""
        import json, os, sys
        sys.path.insert(0, {ROOT!r})
        from flexmail import create_app
        from flexmail.services.consent import subscriptions
        from flexmail.services.delivery import outbox
        from flexmail.services.platform.context import RequestMeta
        config = json.loads(os.environ["CONFIG"])
        app = create_app(config)
        outbox._enqueue = lambda message_id: os._exit(17)   # the crash: after commit, before enqueue
        with app.app_context():
            subscriptions.request_subscription({account.id}, {lst['id']}, email="crash@example.com",
                                               meta=RequestMeta("203.0.113.9", "UA"))
        sys.exit(0)
    """)
    env = {**os.environ, "CONFIG": json.dumps(app_config), "FLEXMAIL_INSTANCE_PATH": str(app.instance_path)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=60)
    assert result.returncode == 17, result.stderr.decode()[-2000:]
    assert _outbox_rows(app) == [("pending", 0)]
    worker.drain()
    assert maildir() == []  # nothing was enqueued
    with app.app_context():
        assert outbox.sweep(grace_seconds=0) == 1
    worker.drain()
    assert len(maildir()) == 1
    assert _outbox_rows(app) == [("sent", 1)]


def test_sweep_respects_the_grace_period(app, create_list, subscribe, monkeypatch):
    """Rows younger than OUTBOX_SWEEP_GRACE are left to their own enqueue."""
    monkeypatch.setattr(outbox, "_enqueue", lambda message_id: None)
    subscribe(create_list()["id"])
    with app.app_context():
        assert outbox.sweep() == 0
        clock.freeze(clock.now() + dt.timedelta(seconds=app.config["OUTBOX_SWEEP_GRACE"] + 1))
        monkeypatch.undo()
        assert outbox.sweep() == 1


def test_message_enqueued_twice_is_sent_once(app, create_list, subscribe, worker, maildir, monkeypatch):
    """The same outbox id in the queue twice (a sweep racing the first enqueue) sends one mail."""
    enqueue = outbox._enqueue
    monkeypatch.setattr(outbox, "_enqueue", lambda message_id: None)  # hold the first enqueue back
    subscribe(create_list()["id"])
    with app.app_context():
        enqueue(1)
        enqueue(1)
    worker.drain()
    assert len(maildir()) == 1
    assert _outbox_rows(app) == [("sent", 1)]


def test_send_interrupted_after_claim_is_retried_after_the_lease(app, create_list, subscribe, worker, maildir,
                                                                 monkeypatch):
    """A worker that died holding a claim blocks others only until the lease lapses."""
    monkeypatch.setattr(outbox, "_enqueue", lambda message_id: None)
    subscribe(create_list()["id"])
    with app.app_context():
        assert [job.id for job in outbox._claim(1, 10).jobs] == [1]  # the claim of a worker that then died
        assert outbox._claim(1, 10).jobs == []  # nobody else may send meanwhile
        assert outbox.sweep(grace_seconds=0) == 0
        clock.freeze(clock.now() + dt.timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"] + 1))
        monkeypatch.undo()
        assert outbox.sweep(grace_seconds=0) == 1
    worker.drain()
    assert len(maildir()) == 1
    assert _outbox_rows(app) == [("sent", 2)]


def test_failing_transport_schedules_the_row_and_sends_it_when_due(app_config, make_app, tmp_path):
    """A relay that is down fails the attempt without raising; the row waits for its next
    attempt time, is not sent before it, and is sent once when due and the relay is back."""
    from tests.helpers import free_port

    app = make_app({**app_config, "MAIL_URL": f"smtp://127.0.0.1:{free_port()}"})
    from flexmail.services.consent import subscriptions
    from flexmail.services.marketer import accounts, lists
    from flexmail.services.platform.context import RequestMeta

    clock.freeze(dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC))
    with app.app_context():
        account_id, _ = accounts.create_account("A", scopes=["marketer"])
        list_id = lists.create_list(account_id, name="L", sender_name="S", sender_email="s@example.com",
                                    consent_text="C").id
        outbox_enqueue = outbox._enqueue
        outbox._enqueue = lambda message_id: None
        try:
            subscriptions.request_subscription(account_id, list_id, email="r@example.com", meta=RequestMeta())
        finally:
            outbox._enqueue = outbox_enqueue
        assert outbox.send_outbox(1) == "retry"
        row = db.session.get(OutboxMessage, 1)
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "ConnectionRefusedError")
        wait = (row.next_attempt_at - clock.now()).total_seconds()
        assert 27 <= wait <= 33  # 30 s, with jitter
        app.config["MAIL_URL"] = f"maildir:{tmp_path / 'later'}"
        assert outbox.send_outbox(1) == "not-claimed"  # not due yet
        clock.freeze(row.next_attempt_at)
        assert outbox.send_outbox(1) == "sent"
        assert outbox.send_outbox(1) == "not-claimed"


def test_a_mail_that_cannot_be_rendered_fails_alone(app, create_list, subscribe, worker, maildir, monkeypatch):
    """A row whose rendering raises is marked failed with the reason; the other rows of its batch go out."""
    from flexmail.services.consent import confirmation_mail

    monkeypatch.setattr(outbox, "_enqueue", lambda message_id: None)
    lst = create_list()
    for i in range(3):
        subscribe(lst["id"], email=f"r{i}@example.com")
    render = confirmation_mail.render_confirmation

    def broken_for_the_second(message, sub, lst, **kw):
        if message.id == 2:
            raise RuntimeError("template bug")
        return render(message, sub, lst, **kw)

    monkeypatch.setattr(outbox, "render_confirmation", broken_for_the_second)
    with app.app_context():
        assert outbox.send_outbox(1) == "sent"
        row = db.session.get(OutboxMessage, 2)
        assert (row.status, row.last_error) == ("failed", "rendering failed: RuntimeError")
    assert len(maildir()) == 2
    assert [status for status, _ in _outbox_rows(app)] == ["sent", "failed", "sent"]
