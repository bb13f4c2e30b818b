"""Bounce and complaint intake: real RFC 3464 and RFC 5965 messages fed to ``process_report``,
the entry point the inbound listener calls for mail to a bounce or abuse address."""

from __future__ import annotations

import pytest

from flexmail.services.suppression.reports import process_report
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
    assert (result.kind, result.suppressed, result.unmatched) == ("dsn", 1, 0)
    assert check(client, account, ["READER@example.com"])[0]["reason"] == "hard_bounce"
    assert not check(client, other, ["reader@example.com"])[0]["suppressed"]
    (event,) = events(client, account, sub_id, "suppressed")
    assert event["details"]["reason"] == "hard_bounce" and event["source"] == "mail"
    assert event["details"]["report"]["status"] == "5.1.1" and event["details"]["report"]["class"] == "hard"
    (bounced,) = events(client, account, sub_id, "bounced")
    assert (bounced["details"]["reason"], bounced["details"]["decision"]) == ("userunknown", "suppressed")
    assert subscribe(create_list()["id"], email="reader@example.com").status_code == 409
    again = _process(app, dsn([("reader@example.com", "failed", "5.1.1")], message_id=message_id))
    assert (again.suppressed, again.duplicate) == (0, 1)


def test_transient_failure_suppresses_nobody(app, client, account, sent):
    """A 4.x.x DSN is counted as a soft bounce and suppresses nobody."""
    _, message_id = sent
    result = _process(app, dsn([("reader@example.com", "failed", "4.2.2")], message_id=message_id))
    assert (result.suppressed, result.counted) == (0, 1)
    assert not check(client, account, ["reader@example.com"])[0]["suppressed"]


def test_complaint_with_redacted_recipient_is_found_by_message_id(app, client, account, sent):
    """Providers redact the recipient in ARF reports; our Message-ID still names the subscriber."""
    _, message_id = sent
    result = _process(app, arf(to="redacted@example.net", message_id=message_id))
    assert (result.kind, result.suppressed) == ("arf", 1)
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
    assert bounced.suppressed == 2, bounced
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


def _soft(app, message_id, at):
    with app.app_context():
        return process_report(dsn([("reader@example.com", "failed", "5.2.2")], message_id=message_id), at=at)


def test_soft_bounces_suppress_only_after_the_configured_count_over_the_days(app, client, account, sent):
    """Mailbox-full bounces count: two do nothing, the third within 7 days neither, the third
    spread over 7 days suppresses (reason soft_bounce); a later delivery report lifts it."""
    import datetime as dt

    from flexmail.clock import now

    _, message_id = sent
    start = now()
    day = dt.timedelta(days=1)
    r1 = _soft(app, message_id, start)
    assert (r1.counted, r1.suppressed) == (1, 0)
    with app.app_context():
        r2 = process_report(dsn([("reader@example.com", "failed", "5.3.1")], message_id=message_id), at=start + day)
        r3 = process_report(dsn([("reader@example.com", "failed", "5.3.0")], message_id=message_id),
                            at=start + 2 * day)
    assert r2.suppressed == 0 and r3.suppressed == 0, "three soft bounces within 2 days are not enough"
    assert not check(client, account, ["reader@example.com"])[0]["suppressed"]
    with app.app_context():
        r4 = process_report(dsn([("reader@example.com", "failed", "5.2.3")], message_id=message_id),
                            at=start + 8 * day)
    assert r4.suppressed == 1
    assert check(client, account, ["reader@example.com"])[0]["reason"] == "soft_bounce"
    with app.app_context():
        delivered = process_report(dsn([("reader@example.com", "delivered", "2.0.0")], message_id=message_id),
                                   at=start + 9 * day)
    assert delivered.lifted == 1
    assert not check(client, account, ["reader@example.com"])[0]["suppressed"]


def test_sender_problem_never_suppresses_the_recipient(app, client, account, sent):
    """A 5.7.1 blocklisting of our IP is reported, not held against the subscriber."""
    _, message_id = sent
    result = _process(app, dsn([("reader@example.com", "failed", "5.7.1")], message_id=message_id))
    assert (result.reported, result.suppressed) == (1, 0)
    assert not check(client, account, ["reader@example.com"])[0]["suppressed"]


def test_real_550_at_rcpt_from_an_smtp_relay_suppresses_once_and_is_in_the_proof(app, client, account, sent):
    """A relay (aiosmtpd) answers 550 5.1.1 at RCPT: record_smtp_refusal suppresses the address
    once and the proof carries the code and text; a second refusal adds nothing."""
    import smtplib

    from aiosmtpd.controller import Controller
    from sqlalchemy import select

    from flexmail.clock import now
    from flexmail.models import OutboxMessage
    from flexmail.services.platform.unit_of_work import unit_of_work
    from flexmail.services.suppression.reports import record_smtp_refusal
    from tests.helpers import free_port

    class Refusing:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            return "550 5.1.1 <reader@example.com>: Recipient address rejected: User unknown in local recipient table"

    port = free_port()
    relay = Controller(Refusing(), hostname="127.0.0.1", port=port)
    relay.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.ehlo()
            smtp.mail("bounces@flexmail.test")
            code, text = smtp.rcpt("reader@example.com")
    finally:
        relay.stop()
    assert code == 550
    sub_id, message_id = sent
    for _ in range(2):
        with app.app_context(), unit_of_work() as uow:
            row = uow.session.scalar(select(OutboxMessage).where(OutboxMessage.message_id == message_id))
            outcome = record_smtp_refusal(uow.session, subscription_id=sub_id, outbox_id=row.id,
                                          message_id=message_id, code=code, text=text.decode(), at=now())
    assert outcome.duplicate == 1
    assert check(client, account, ["reader@example.com"])[0]["reason"] == "hard_bounce"
    (event,) = events(client, account, sub_id, "suppressed")
    assert "550 5.1.1" in event["details"]["report"]["diagnostic"] and event["details"]["report"]["report"] == "smtp"


def test_marketer_sees_deliverability_counts_and_the_report_on_the_suppression(app, client, account, sent,
                                                                                create_account):
    """After a sender-side block and a hard bounce, the list's deliverability report counts
    both by class and reason, the suppression entry carries the report's summary, and
    another account cannot read the list's report."""
    sub_id, message_id = sent
    list_id = client.get(f"/api/v1/subscriptions/{sub_id}", headers=account.headers).json["list_id"]
    _process(app, dsn([("reader@example.com", "failed", "5.7.1")], message_id=message_id))
    _process(app, dsn([("reader@example.com", "failed", "5.1.1")], message_id=message_id))
    report = client.get(f"/api/v1/lists/{list_id}/deliverability?days=7", headers=account.headers)
    assert report.status_code == 200, report.json
    assert report.json["totals"] == {"sender": 1, "hard": 1}
    assert report.json["reasons"] == {"sender": {"policyviolation": 1}, "hard": {"userunknown": 1}}
    assert len(report.json["days"]) == 1 and report.json["days"][0]["classes"] == {"sender": 1, "hard": 1}
    entries = client.get("/api/v1/suppressions", headers=account.headers).json["items"]
    (entry,) = [e for e in entries if e["reason"] == "hard_bounce"]
    assert entry["report"]["status"] == "5.1.1" and entry["report"]["class"] == "hard"
    stranger = create_account("Globex")
    assert client.get(f"/api/v1/lists/{list_id}/deliverability", headers=stranger.headers).status_code == 404
    assert client.get(f"/api/v1/lists/{list_id}/deliverability?days=0",
                      headers=account.headers).json["error"]["code"]


def test_account_policy_changes_the_soft_bounce_count(app, client, account, sent):
    """An account that sets 2 soft bounces over 0 days is suppressed at the second; nulls go
    back to the platform default of 3 over 7 days."""
    assert client.get("/api/v1/hooks/bounce-policy", headers=account.headers).json == {
        "soft_count": 3, "soft_days": 7, "default": True}
    bad = client.put("/api/v1/hooks/bounce-policy", json={"soft_count": 0, "soft_days": 1}, headers=account.headers)
    assert bad.status_code == 422
    changed = client.put("/api/v1/hooks/bounce-policy", json={"soft_count": 2, "soft_days": 0},
                         headers=account.headers)
    assert changed.json == {"soft_count": 2, "soft_days": 0, "default": False}
    _, message_id = sent
    assert _process(app, dsn([("reader@example.com", "failed", "5.2.2")], message_id=message_id)).suppressed == 0
    assert _process(app, dsn([("reader@example.com", "failed", "5.3.1")], message_id=message_id)).suppressed == 1
    assert check(client, account, ["reader@example.com"])[0]["reason"] == "soft_bounce"
    reset = client.put("/api/v1/hooks/bounce-policy", json={"soft_count": None, "soft_days": None},
                       headers=account.headers)
    assert reset.json["default"] is True and reset.json["soft_count"] == 3


def test_stored_diagnostics_keep_no_address(app, client, account, sent):
    """The remote server's words are kept for the proof and the marketer with the address masked."""
    from sqlalchemy import select

    from flexmail.clock import now
    from flexmail.extensions import db
    from flexmail.models import BounceRecord, Suppression
    from flexmail.services.platform.unit_of_work import unit_of_work
    from flexmail.services.suppression.reports import record_smtp_refusal

    sub_id, message_id = sent
    with app.app_context():
        with unit_of_work() as uow:
            record_smtp_refusal(uow.session, subscription_id=sub_id, outbox_id=0, message_id=message_id, code=550,
                                text="5.1.1 <Reader@example.com>: Recipient address rejected: User unknown", at=now())
        (record,) = db.session.scalars(select(BounceRecord)).all()
        entry = db.session.scalar(select(Suppression).where(Suppression.reason == "hard_bounce"))
        assert "example.com" not in record.diagnostic and "<address>" in record.diagnostic
        assert "example.com" not in entry.report["diagnostic"]
    (event,) = events(client, account, sub_id, "bounced")
    assert "Reader@" not in event["details"]["diagnostic"]
