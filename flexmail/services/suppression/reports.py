"""Reports about our mail, from every channel, through one classifier and one policy.

- ``process_report(raw)``: a message received at a bounce or abuse address (the inbound
  listener, ``inbound deliver``): DSN, non-standard bounce, ARF, JMRP...
- ``record_smtp_refusal(...)``: our relay refused a send synchronously (5yz at RCPT or
  DATA), called by the outbox in its own transaction.
- ``services.suppression.hooks``: ESP events (SES, SendGrid, Mailgun, Postmark).

What a result means is ``domain.bounces``; what it does is ``services.suppression.bounces``. The sending
account is found from the original Message-ID (our outbox) and, failing that, from the
subscriptions holding the recipient's address hash: a hard bounce is then true for every
account that has the address, a complaint or a soft bounce only for the one account
that has it (when several do, nobody is touched).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from flexmail.clock import now
from flexmail.domain.bounces import classify_message, classify_smtp_reply
from flexmail.services.platform.unit_of_work import unit_of_work
from flexmail.services.suppression.bounces import apply_report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportResult:
    #: dsn, arf, jmrp, bounce, unsubscribe, smtp, or ``none`` (not a report: nothing done).
    kind: str
    #: Per-recipient results the report holds.
    results: int = 0
    #: Recipients suppressed now (hard, complaint, opt-out, or soft over the limit).
    suppressed: int = 0
    #: Soft bounces counted, sender problems reported, results ignored, entries lifted.
    counted: int = 0
    reported: int = 0
    ignored: int = 0
    lifted: int = 0
    #: Recipients tied to no account (or not valid addresses).
    unmatched: int = 0
    #: Results already applied (the same report again).
    duplicate: int = 0


def _result(kind: str, count: int, outcome) -> ReportResult:
    d = outcome.decisions
    return ReportResult(kind, count, d.get("suppressed", 0), d.get("counted", 0), d.get("reported", 0),
                        d.get("ignored", 0), d.get("lifted", 0), outcome.unmatched, outcome.duplicate)


def process_report(raw: bytes, *, at: dt.datetime | None = None) -> ReportResult:
    """Classify a received report and apply the bounce policy to each recipient.

    A message that is not a report does nothing (``kind="none"``). Safe to repeat: the
    same report again is recognised (same Message-ID, recipient and reason) and changes
    nothing.
    """
    report = classify_message(raw)
    if report is None or not report.results:
        return ReportResult("none")
    with unit_of_work() as uow:
        outcome = apply_report(uow.session, report, at=at or now())
    result = _result(report.kind, len(report.results), outcome)
    log.info("inbound %s report: %d result(s), %d suppressed, %d counted, %d reported, %d unmatched",
             report.kind, result.results, result.suppressed, result.counted, result.reported, result.unmatched)
    return result


def record_smtp_refusal(session, *, subscription_id: int, outbox_id: int, message_id: str, code: int, text: str,
                        at: dt.datetime) -> ReportResult:
    """Our relay refused the mail of outbox row ``outbox_id`` with a permanent ``code``
    (5yz, at RCPT or DATA): classify the reply like a bounce and apply the policy to the
    subscription, in the caller's transaction. A 550 5.1.1 suppresses; a 554 5.7.1 policy
    block is the sender's problem and suppresses nobody. Either way the proof gets a
    ``bounced`` event with the code and the text."""
    report = classify_smtp_reply(None, code, text, message_id=message_id)
    outcome = apply_report(session, report, at=at, subscription_id=subscription_id)
    log.info("smtp refusal of outbox %s: %s/%s", outbox_id, report.results[0].bounce_class.value,
             report.results[0].reason)
    return _result("smtp", 1, outcome)
