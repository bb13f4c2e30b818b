"""The bounce classifier (domain.bounces) on reports built with the email package, no I/O."""

from __future__ import annotations

import pytest

from flexmail.domain.bounces import BounceClass, classify_message, classify_smtp_reply
from tests.suppression_support import arf, dsn, original_message


def _one(raw):
    report = classify_message(raw)
    assert report is not None and len(report.results) == 1
    return report.results[0]


def test_permanent_no_such_user_is_hard_with_status_and_message_id():
    """Action failed with 5.1.1 is a hard userunknown, with the status, diagnostic and original Message-ID."""
    result = _one(dsn([("reader@example.com", "failed", "5.1.1")]))
    assert (result.recipient, result.reason, result.bounce_class) == ("reader@example.com", "userunknown",
                                                                       BounceClass.HARD)
    assert result.status == "5.1.1" and "mailbox says no" in result.diagnostic
    assert result.message_id == "<abc123@flexmail.test>"


@pytest.mark.parametrize("action,status,klass,reason", [
    ("failed", "5.2.2", BounceClass.SOFT, "mailboxfull"), ("failed", "4.2.2", BounceClass.SOFT, "mailboxfull"),
    ("failed", "5.7.1", BounceClass.SENDER, "policyviolation"), ("failed", "5.7.26", BounceClass.SENDER, "authfailure"),
    ("delayed", "4.4.1", BounceClass.IGNORE, "expired"), ("delivered", "2.0.0", BounceClass.IGNORE, "delivered"),
    ("relayed", "2.0.0", BounceClass.IGNORE, "delivered"), ("failed", "5.1.2", BounceClass.HARD, "hostunknown"),
    ("failed", "5.1.10", BounceClass.HARD, "notaccept"), ("failed", "4.1.1", BounceClass.SOFT, "userunknown"),
])
def test_status_codes_map_to_reason_and_class(action, status, klass, reason):
    """Only a permanent failure about the address is hard; full mailboxes are soft, 5.7.x is the sender's."""
    result = _one(dsn([("reader@example.com", action, status)]))
    assert (result.reason, result.bounce_class) == (reason, klass)


def test_sender_words_beat_an_address_status():
    """A 5.1.1 whose words name a blocklist is about the sending IP: class sender, not hard."""
    verdict = classify_smtp_reply("r@example.com", 550, "5.1.1 Client host 192.0.2.1 blocked using Spamhaus")
    assert verdict.results[0].bounce_class == BounceClass.SENDER


@pytest.mark.parametrize("code,text,klass", [
    (550, "5.1.1 <r@example.com>: Recipient address rejected: User unknown in virtual mailbox table", "hard"),
    (554, "5.7.1 Service unavailable; client host [192.0.2.1] blocked", "sender"),
    (552, "5.2.2 Mailbox full", "soft"), (451, "4.7.1 Greylisted, try again later", "soft"),
    (550, "Requested action not taken: no such user here", "hard"),
])
def test_synchronous_smtp_replies_are_reports(code, text, klass):
    """A relay's reply to RCPT or DATA is classified like a DSN."""
    assert classify_smtp_reply(None, code, text).results[0].bounce_class.value == klass


def test_each_recipient_of_a_dsn_is_judged_alone():
    """In one report the 5.1.1 recipient is hard, the full mailbox soft, the delay ignored."""
    report = classify_message(dsn([("gone@example.com", "failed", "5.1.1"), ("later@example.com", "delayed", "4.2.2"),
                                   ("full@example.com", "failed", "5.2.2")], headers_only=False))
    classes = {r.recipient: r.bounce_class.value for r in report.results}
    assert classes == {"gone@example.com": "hard", "later@example.com": "ignore", "full@example.com": "soft"}


def test_original_recipient_is_preferred_to_the_final_one():
    """After forwarding, Original-Recipient is the address we sent to."""
    result = _one(dsn([("forwarded@elsewhere.example", "failed", "5.1.1")], original_recipient="reader@example.com"))
    assert result.recipient == "reader@example.com"


SMTPUTF8_DSN = """From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: bounces@flexmail.test
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mx.example.net.

<用户@例子.广告>: host mx.例子.广告[192.0.2.9] said: 550 5.1.1 <用户@例子.广告>: Recipient
    address rejected: User unknown in local recipient table (in reply to RCPT TO command)

--B
Content-Type: message/global-delivery-status
Content-Transfer-Encoding: 8bit

Reporting-MTA: dns; mx.example.net
X-Postfix-Queue-ID: 4Q1
Arrival-Date: Mon, 23 Nov 2026 10:00:00 +0000

Final-Recipient: utf-8; 用户@例子.广告
Original-Recipient: utf-8; 用户@例子.广告
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.例子.广告
Diagnostic-Code: smtp; 550 5.1.1 <用户@例子.广告>: Recipient address rejected: User
    unknown in local recipient table

--B
Content-Type: message/global-headers
Content-Transfer-Encoding: 8bit

From: Acme <news@acme.example>
To: 用户@例子.广告
Subject: Weekly
Message-ID: <utf8-1@flexmail.test>

--B--
""".replace("\n", "\r\n").encode("utf-8")


def test_smtputf8_dsn_of_a_non_ascii_address_is_read_like_rfc3464():
    """Postfix's RFC 6533 message/global-delivery-status with a utf-8 address type is a hard bounce."""
    result = _one(SMTPUTF8_DSN)
    assert (result.recipient, result.bounce_class, result.status) == ("用户@例子.广告", BounceClass.HARD, "5.1.1")
    assert result.message_id == "<utf8-1@flexmail.test>"


def test_one_block_dsn_with_several_recipients_is_split():
    """AOL writes the per-message fields and every recipient in one block: each recipient is judged."""
    raw = dsn([("x@example.com", "failed", "5.1.1")]).replace(
        b"Arrival-Date: Mon, 23 Nov 2026 10:00:00 +0000\n\n", b"Arrival-Date: Mon, 23 Nov 2026 10:00:00 +0000\n")
    raw = raw.replace(b"Diagnostic-Code: smtp; 5.1.1 mailbox says no\n",
                      b"Diagnostic-Code: smtp; 550 5.1.1 no such user\nFinal-Recipient: rfc822; full@example.com\n"
                      b"Action: failed\nStatus: 5.2.2\nDiagnostic-Code: smtp; 552 5.2.2 Mailbox full\n")
    report = classify_message(raw)
    assert {r.recipient: r.bounce_class.value for r in report.results} == {"x@example.com": "hard",
                                                                           "full@example.com": "soft"}


@pytest.mark.parametrize("feedback_type,klass", [("abuse", "complaint"), ("fraud", "complaint"),
                                                 ("other", "complaint"), ("opt-out", "opt-out"),
                                                 ("auth-failure", "sender"), ("dmarc", "sender"),
                                                 ("not-spam", "ignore")])
def test_feedback_types(feedback_type, klass):
    """ARF abuse/fraud/other are complaints, opt-out an unsubscribe, auth-failure and dmarc the sender's."""
    result = _one(arf(feedback_type=feedback_type, original_rcpt_to="reader@example.com"))
    assert (result.recipient, result.bounce_class.value) == ("reader@example.com", klass)


def test_feedback_report_without_original_rcpt_to_uses_the_returned_to():
    """Without Original-Rcpt-To, the To of the returned message is the recipient."""
    assert _one(arf(to="Reader <Reader@example.com>")).recipient == "Reader@example.com"


def test_jmrp_complaint_names_the_recipient_in_its_header():
    """Microsoft JMRP: multipart/mixed with the original attached and X-HmXmrOriginalRecipient."""
    from email.mime.message import MIMEMessage
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    original = original_message(to="someone@outlook.example")
    original["X-HmXmrOriginalRecipient"] = "<reader@outlook.example>"
    mail = MIMEMultipart("mixed")
    mail["From"] = "staff@hotmail.com"
    mail["Subject"] = "complaint about message from 192.0.2.1"
    mail.attach(MIMEText("This is an email abuse report"))
    mail.attach(MIMEMessage(original))
    result = _one(mail.as_bytes())
    assert (result.recipient, result.bounce_class, result.message_id) == (
        "reader@outlook.example", BounceClass.COMPLAINT, "<abc123@flexmail.test>")


@pytest.mark.parametrize("raw", [
    original_message().as_bytes(), b"", b"\x00\xff garbage", b"Content-Type: multipart/report\n\nno parts",
    b"Content-Type: multipart/mixed; report-type=delivery-status; boundary=x\n\n--x\n\nhi\n--x--\n",
])
def test_anything_else_is_not_a_report(raw):
    """Ordinary mail and garbage are not reports (and never raise)."""
    report = classify_message(raw)
    assert report is None or not report.results
