"""Bounces and complaints received by mail: suppress the recipient for the account that sent.

Entry point for the inbound listener: ``process_report(raw_bytes)`` for every message that
arrives at a bounce or abuse address (see ``domain.reports`` for what is read). The sending
account is found from the original Message-ID (our outbox) and, failing that, from the
subscriptions holding the recipient's address hash: a hard bounce is then suppressed in
every account that has the address (the mailbox does not exist for anyone), a complaint
only when exactly one account has it (a complaint is about one sender).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select

from flexmail.domain.addresses import InvalidAddress
from flexmail.domain.reports import parse_report
from flexmail.extensions import db
from flexmail.models import OutboxMessage, Subscription
from flexmail.services.suppression_store import Actor, add_entries, hasher, normalizer
from flexmail.services.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

MAIL_SYSTEM = Actor("mail-system")


@dataclass(frozen=True)
class ReportResult:
    #: ``dsn``, ``arf``, or ``none`` (not a report: nothing done).
    kind: str
    #: ``hard_bounce``, ``complaint`` or None (the report asked for nothing).
    reason: str | None = None
    #: Entries made now (an existing entry is not counted again).
    suppressed: int = 0
    #: Recipients for which an entry existed already.
    existing: int = 0
    #: Recipients that could not be tied to an account (or were not valid addresses).
    unmatched: int = 0
    #: Recipients the report itself says need nothing (transient failures...).
    ignored: int = 0


def process_report(raw: bytes) -> ReportResult:
    """Suppress the recipients a DSN (hard bounce) or ARF report (complaint) names.

    Returns what was done; a message that is not a report does nothing (``kind="none"``).
    Safe to repeat: the same report again makes no second entry.
    """
    report = parse_report(raw)
    if report is None:
        return ReportResult("none")
    if report.reason is None:
        log.info("inbound %s report: nothing to suppress (%d ignored)", report.kind, len(report.ignored))
        return ReportResult(report.kind, None, ignored=len(report.ignored))
    targets, unmatched = _targets(report)
    source = f"inbound:{report.kind}"
    made = existing = 0
    with unit_of_work() as uow:
        for account_id, items in targets.items():
            added = add_entries(uow.session, account_id=account_id, kind="address", items=items,
                                reason=report.reason, source=source, actor=MAIL_SYSTEM, event_source="mail")
            made += len(added.new)
            existing += len(added.existing)
    log.info("inbound %s report: %s for %d account(s), %d new, %d existing, %d unmatched", report.kind,
             report.reason, len(targets), made, existing, unmatched)
    return ReportResult(report.kind, report.reason, made, existing, unmatched, len(report.ignored))


def _targets(report) -> tuple[dict[int, dict[str, str | None]], int]:
    """account id -> {address hash: normalised address or None} to suppress, and the
    number of recipients tied to no account."""
    targets: dict[int, dict[str, str | None]] = defaultdict(dict)
    if report.original_message_id:
        row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.message_id == report.original_message_id))
        sub = db.session.get(Subscription, row.subscription_id) if row is not None else None
        if sub is not None:
            # The message is ours: its recipient is the subscription's, whatever the
            # report shows (providers redact it; forwarding rewrites it).
            targets[sub.account_id][sub.address_hash] = sub.email
            return targets, 0
    norm, h = normalizer(), hasher()
    unmatched = 0
    for recipient in report.recipients:
        try:
            normalized = norm(recipient).normalized
        except InvalidAddress:
            unmatched += 1
            continue
        key = h.address(normalized)
        accounts = sorted(set(db.session.scalars(
            select(Subscription.account_id).where(Subscription.address_hash == key)
        )))
        if not accounts or (report.reason == "complaint" and len(accounts) > 1):
            unmatched += 1
            continue
        for account_id in accounts:
            targets[account_id][key] = normalized
    return targets, unmatched
