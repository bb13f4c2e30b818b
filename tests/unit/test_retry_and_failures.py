"""The retry schedule's arithmetic and how SMTP errors are classified (permanent or retried)."""

from __future__ import annotations

import smtplib

import pytest

from flexmail.domain.retry import backoff_seconds, covered_seconds
from flexmail.mail.transports import failure_of


def test_backoff_doubles_from_the_base_to_the_cap_within_the_jitter():
    """Attempt n waits base * 2^(n-1), at most the cap, times a factor in [0.9, 1.1]."""
    for attempt, nominal in [(1, 30), (2, 60), (5, 480), (8, 3600), (40, 3600), (10_000, 3600)]:
        low = backoff_seconds(attempt, base=30, cap=3600, rand=0.0)
        high = backoff_seconds(attempt, base=30, cap=3600, rand=0.999999)
        assert low == pytest.approx(nominal * 0.9) and high == pytest.approx(nominal * 1.1, rel=1e-5)


def test_default_attempts_outlast_a_48_hour_outage_whatever_the_jitter():
    """64 attempts at 30 s doubling to 1 h span more than 48 h even with the shortest jitter; 50 would not."""
    assert covered_seconds(64, base=30, cap=3600) > 48 * 3600
    assert covered_seconds(50, base=30, cap=3600) < 48 * 3600


@pytest.mark.parametrize("exc,permanent,code,status", [
    (smtplib.SMTPRecipientsRefused({"a@x.example": (550, b"5.1.1 <a@x.example>: User unknown")}), True, 550, "5.1.1"),
    (smtplib.SMTPRecipientsRefused({"a@x.example": (451, b"4.7.1 Greylisted")}), False, 451, "4.7.1"),
    (smtplib.SMTPDataError(554, b"5.7.1 Message rejected as spam"), True, 554, "5.7.1"),
    (smtplib.SMTPDataError(452, b"4.3.1 Insufficient system storage"), False, 452, "4.3.1"),
    (smtplib.SMTPSenderRefused(553, b"5.7.1 Sender address rejected", "b@us.example"), False, 553, "5.7.1"),
    (smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid"), False, 535, "5.7.8"),
    (ConnectionRefusedError(111, "Connection refused"), False, None, None),
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), False, None, None),
    (TimeoutError("timed out"), False, None, None),
])
def test_only_a_5xx_at_rcpt_or_data_is_permanent(exc, permanent, code, status):
    """5xx to RCPT or DATA: permanent; 4xx, a refused MAIL FROM or login (our side), no reply: retried."""
    failure = failure_of(exc)
    assert (failure.permanent, failure.code, failure.status) == (permanent, code, status)
    assert failure.text
