"""Bounce and complaint intake: real RFC 3464 and RFC 5965 messages fed to ``process_report``,
the entry point the inbound listener calls for mail to a bounce or abuse address."""

from __future__ import annotations

import pytest

from flexmail.services.reports import process_report
from tests.suppression_support import arf, check, dsn, events, original_message


@pytest.fixture
def sent(client, account, create_list, subscribe, worker, maildir):
    """A signup whose confirmation mail went out: ``(subscription id, Message-ID)``."""
    response = subscribe(create_list()["id"], email="Reader@Example.com")
    assert response.status_code == 202
    worker.drain()
    return response.json["subscription"]["id"], maildir()[-1]["Message-ID"]


def _process(app, raw):
    with app.app_context():
        return process_report(raw)


def test_hard_bounce_of_our_message_suppresses_its_recipient_for_that_account(app, client, account, sent,
                                                                                  create_account, create_list,
                                                                                  subscribe):
    """A 5.x.x DSN naming our Message-ID suppresses that subscription's address in its account only."""
    other = create_account("Globex")
    subscribe(create_list(acct=other)["id"], email="reader@example.com", acct=other)
    sub_id, message_id = sent
    result = _process(app, dsn([("reader@example.com", "failed", "5.1.1")], message_id=message_id))
    assert (result.kind, result.reason, result.suppressed, result.unmatched) == ("dsn", "hard_bounce", 1, 0)
    assert check(client, account, ["READER@example.com"])[0]["reason"] == "hard_bounce"
    assert not check(client, other, ["reader@example.com"])[0]["suppressed"]
    (event,) = events(client, account, sub_id, "suppressed")
    assert event["details"]["reason"] == "hard_bounce" and event["source"] == "mail"
    assert subscribe(create_list()["id"], email="reader@example.com").status_code == 409
    again = _process(app, dsn([("reader@example.com", "failed", "5.1.1")], message_id=message_id))
    assert (again.suppressed, again.existing) == (0, 1)


def test_transient_failure_suppresses_nobody(app, client, account, sent):
    """A 4.x.x DSN is noted as ignored and changes nothing."""
    _, message_id = sent
    result = _process(app, dsn([("reader@example.com", "failed", "4.2.2")], message_id=message_id))
    assert (result.reason, result.suppressed, result.ignored) == (None, 0, 1)
    assert not check(client, account, ["reader@example.com"])[0]["suppressed"]


def test_complaint_with_redacted_recipient_is_found_by_message_id(app, client, account, sent):
    """Providers redact the recipient in ARF reports; our Message-ID still names the subscriber."""
    _, message_id = sent
    result = _process(app, arf(to="redacted@example.net", message_id=message_id))
    assert (result.kind, result.reason, result.suppressed) == ("arf", "complaint", 1)
    assert check(client, account, ["reader@example.com"])[0]["reason"] == "complaint"
    assert not check(client, account, ["redacted@example.net"])[0]["suppressed"]


def test_without_our_message_id_the_account_is_found_by_the_address(app, client, account, sent, create_account,
                                                                       create_list, subscribe):
    """An unknown Message-ID: the one account holding the address gets the complaint; when two hold
    it, a complaint is ambiguous (nobody) but a hard bounce is true for both."""
    result = _process(app, arf(original_rcpt_to="reader@example.com", message_id="<unknown@elsewhere>"))
    assert (result.suppressed, result.unmatched) == (1, 0)
    other = create_account("Globex")
    subscribe(create_list(acct=other)["id"], email="shared@example.com", acct=other)
    subscribe(create_list()["id"], email="shared@example.com")
    ambiguous = _process(app, arf(original_rcpt_to="shared@example.com", message_id="<unknown@elsewhere>"))
    assert (ambiguous.suppressed, ambiguous.unmatched) == (0, 1)
    bounced = _process(app, dsn([("shared@example.com", "failed", "5.1.1")], message_id="<unknown@elsewhere>"))
    assert bounced.suppressed == 2
    assert check(client, other, ["shared@example.com"])[0]["reason"] == "hard_bounce"
    stranger = _process(app, dsn([("nobody@example.com", "failed", "5.1.1")], message_id="<unknown@elsewhere>"))
    assert (stranger.suppressed, stranger.unmatched) == (0, 1)


def test_not_a_report_does_nothing(app):
    """Ordinary mail to the bounce address is not a report."""
    assert _process(app, original_message().as_bytes()).kind == "none"


def test_bounce_arriving_over_smtp_at_the_bounces_address_suppresses(app, client, account, sent):
    """A DSN sent over a real SMTP session to bounces@<inbound domain> goes through the listener
    to process_report; any other local part is refused at RCPT."""
    import smtplib

    from flexmail.inbound.smtp import make_controller
    from tests.helpers import free_port

    port = free_port()
    controller = make_controller(app, host="127.0.0.1", port=port)
    controller.start()
    try:
        _, message_id = sent
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            assert smtp.ehlo()[0] == 250
            smtp.mail("<>")
            assert smtp.rcpt("someone@flexmail.test")[0] == 550
            assert smtp.rcpt("bounces@flexmail.test")[0] == 250
            raw = dsn([("reader@example.com", "failed", "5.1.1")], message_id=message_id)
            reply = smtp.data(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))  # SMTP lines end in CRLF
            assert reply[0] == 250, reply
    finally:
        controller.stop()
    assert check(client, account, ["reader@example.com"])[0]["reason"] == "hard_bounce"
