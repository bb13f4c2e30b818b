"""RFC 3464 delivery status notifications and RFC 5965 feedback reports, read without I/O."""

from __future__ import annotations

import pytest

from flexmail.domain.reports import parse_report
from tests.suppression_support import arf, dsn, original_message


def test_permanent_failure_is_a_hard_bounce_of_the_final_recipient():
    """Action failed with a 5.x.x status names a hard bounce, with the original Message-ID."""
    report = parse_report(dsn([("reader@example.com", "failed", "5.1.1")]))
    assert report.kind == "dsn" and report.reason == "hard_bounce"
    assert report.recipients == ("reader@example.com",)
    assert report.original_message_id == "<abc123@flexmail.test>"


@pytest.mark.parametrize("action,status", [("failed", "4.2.2"), ("delayed", "4.4.1"), ("delivered", "2.0.0"),
                                           ("relayed", "2.0.0"), ("expanded", "2.0.0")])
def test_transient_and_good_news_are_ignored(action, status):
    """A 4.x.x failure, a delay or a delivery asks for nothing; the recipient is only noted as ignored."""
    report = parse_report(dsn([("reader@example.com", action, status)]))
    assert report.kind == "dsn" and report.reason is None and report.recipients == ()
    assert report.ignored == (f"{status} {action}",)


def test_each_recipient_of_a_dsn_is_judged_alone():
    """In one report, the permanently failed recipients are taken and the delayed one is not."""
    report = parse_report(dsn([("gone@example.com", "failed", "5.1.1"), ("later@example.com", "delayed", "4.2.2"),
                               ("full@example.com", "failed", "5.2.2")], headers_only=False))
    assert report.recipients == ("gone@example.com", "full@example.com")
    assert report.ignored == ("4.2.2 delayed",)
    assert report.original_message_id == "<abc123@flexmail.test>"  # from a returned message/rfc822


def test_original_recipient_is_preferred_to_the_final_one():
    """After forwarding, Original-Recipient is the address we sent to."""
    report = parse_report(dsn([("forwarded@elsewhere.example", "failed", "5.1.1")],
                              original_recipient="reader@example.com"))
    assert report.recipients == ("reader@example.com",)


@pytest.mark.parametrize("feedback_type", ["abuse", "fraud", "other"])
def test_feedback_report_is_a_complaint_about_original_rcpt_to(feedback_type):
    """ARF abuse (fraud, other) names the recipient in Original-Rcpt-To, before the returned To."""
    report = parse_report(arf(feedback_type=feedback_type, original_rcpt_to="reader@example.com",
                              to="redacted@example.net"))
    assert report.kind == "arf" and report.reason == "complaint"
    assert report.recipients == ("reader@example.com",)
    assert report.original_message_id == "<abc123@flexmail.test>"


def test_feedback_report_without_original_rcpt_to_uses_the_returned_to():
    """Without Original-Rcpt-To, the To of the returned message is the recipient."""
    report = parse_report(arf(to="Reader <Reader@example.com>"))
    assert report.recipients == ("Reader@example.com",)


@pytest.mark.parametrize("feedback_type", ["not-spam", "virus", "auth-failure"])
def test_feedback_that_is_no_complaint_is_ignored(feedback_type):
    """not-spam, virus and auth-failure reports say nothing against the recipient."""
    report = parse_report(arf(feedback_type=feedback_type, original_rcpt_to="reader@example.com"))
    assert report.reason is None and report.recipients == ()


@pytest.mark.parametrize("raw", [
    original_message().as_bytes(), b"", b"\x00\xff garbage", b"Content-Type: multipart/report\n\nno parts",
    b"Content-Type: multipart/mixed; report-type=delivery-status; boundary=x\n\n--x\n\nhi\n--x--\n",
])
def test_anything_else_is_not_a_report(raw):
    """Ordinary mail and garbage are not reports (and never raise)."""
    assert parse_report(raw) is None
