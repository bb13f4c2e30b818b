"""A worker reuses its SMTP connection across mails and batches, and replaces a dead one."""

from __future__ import annotations

import smtplib

from flexmail.mail import transports
from tests.delivery_support import ScriptedRelay, relay, rows
from tests.helpers import free_port


class CountingRelay(ScriptedRelay):
    def __init__(self):
        super().__init__()
        self.sessions = set()

    async def handle_DATA(self, server, session, envelope):
        self.sessions.add(id(session))
        return await super().handle_DATA(server, session, envelope)


def _signup(client, list_id, headers, email):
    response = client.post(f"/api/v1/lists/{list_id}/subscriptions", headers=headers,
                           json={"email": email, "ip": "203.0.113.7", "user_agent": "UA", "source": "t"})
    assert response.status_code == 202, response.json


def test_mails_of_a_batch_share_one_connection(app_with_list, worker_for, monkeypatch):
    """Twelve due mails claimed together go out over a single SMTP session."""
    from flexmail.services.delivery import outbox

    sink = CountingRelay()
    with relay(sink):
        app, client, list_id, headers = app_with_list(MAIL_URL=sink.url)
        monkeypatch.setattr(outbox, "_enqueue", lambda message_id: None)  # queue only the last one
        for i in range(12):
            _signup(client, list_id, headers, f"b{i}@example.com")
        monkeypatch.undo()
        worker = worker_for(app)
        with app.app_context():
            outbox._enqueue(12)
        worker.drain()
    assert len(sink.delivered) == 12 and len(sink.sessions) == 1
    assert [r.status for r in rows(app)] == ["sent"] * 12


def test_a_connection_the_relay_closed_is_replaced_without_losing_the_mail(monkeypatch):
    """The pooled connection is checked with NOOP after it sat idle; a dead one is replaced and the mail sent."""
    port = free_port()
    first, second = CountingRelay(), CountingRelay()
    monkeypatch.setattr(transports, "NOOP_AFTER", 0.0)
    transport = transports.SMTPTransport(f"smtp://127.0.0.1:{port}")
    try:
        with relay(first, port):
            transport.send_bytes(b"Subject: 1\r\n\r\none\r\n", sender="a@us.example", recipients=["r@x.example"])
            transport.send_bytes(b"Subject: 2\r\n\r\ntwo\r\n", sender="a@us.example", recipients=["r@x.example"])
        assert len(first.delivered) == 2 and len(first.sessions) == 1  # reused
        with relay(second, port):  # the relay restarted: the old connection is dead
            transport.send_bytes(b"Subject: 3\r\n\r\nthree\r\n", sender="a@us.example", recipients=["r@x.example"])
        assert len(second.delivered) == 1
    finally:
        transport.close()


def test_a_refused_recipient_leaves_the_connection_usable():
    """After a 550 at RCPT (smtplib sends RSET), the next mail goes over the same session."""
    sink = CountingRelay()
    sink.rcpt_script = ["550 5.1.1 User unknown"]
    transport = None
    with relay(sink):
        transport = transports.SMTPTransport(sink.url)
        try:
            try:
                transport.send_bytes(b"Subject: 1\r\n\r\none\r\n", sender="a@us.example", recipients=["r@x.example"])
            except smtplib.SMTPRecipientsRefused:
                pass
            else:
                raise AssertionError("the recipient should have been refused")
            transport.send_bytes(b"Subject: 2\r\n\r\ntwo\r\n", sender="a@us.example", recipients=["s@x.example"])
        finally:
            transport.close()
    assert len(sink.delivered) == 1 and len(sink.sessions) == 1
