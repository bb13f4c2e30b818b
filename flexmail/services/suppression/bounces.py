"""The bounce policy: what each per-recipient result of a report does (``domain.bounces``).

======================= ======================================================================
class                   decision
======================= ======================================================================
hard                    suppress the address in the account now (reason ``hard_bounce``)
complaint               suppress now (``complaint``)
opt-out                 suppress now (``opt_out``)
soft                    count; suppress (``soft_bounce``) after N soft bounces spread over at
                        least D days with no delivery in between (account policy, platform
                        defaults 3 and 7: Mailman's bounce score in spirit)
sender                  never suppresses the recipient: counted per list for the marketer
ignore                  nothing; a *delivery* report lifts a ``soft_bounce`` entry
======================= ======================================================================

Every decision about a known subscription is a ``bounced`` consent event carrying the
reason, class, status, diagnostic and the decision, so the proof says why. Results are
stored as ``BounceRecord`` rows (no address) for counting and the deliverability report.
Everything runs in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select

from flexmail.domain.addresses import InvalidAddress
from flexmail.domain.bounces import BounceClass, Report, Result
from flexmail.domain.consent import EventType
from flexmail.extensions import db
from flexmail.models import BouncePolicy, BounceRecord, OutboxMessage, Subscription, Suppression
from flexmail.services.evidence.proof import record_event
from flexmail.services.platform.context import RequestMeta, setting
from flexmail.services.suppression.suppression_store import Actor, add_entries, hasher, lift, normalizer

log = logging.getLogger(__name__)

MAIL_SYSTEM = Actor("mail-system")
#: Addresses inside a remote server's words ("550 5.1.1 <x@y>: User unknown"): masked before
#: the diagnostic is stored anywhere, so the record outlives an erasure without the address.
ADDRESS_IN_TEXT = re.compile(r"[^\s<>\"'(),;:\[\]]+@[^\s<>\"'(),;:\[\]]+")
SUPPRESSION_REASONS = {BounceClass.HARD: "hard_bounce", BounceClass.COMPLAINT: "complaint",
                       BounceClass.OPT_OUT: "opt_out"}


@dataclass
class Outcome:
    """What applying a report did, by decision (suppressed, counted, reported, ignored, lifted)."""

    decisions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: Recipients tied to no account (or not valid addresses).
    unmatched: int = 0
    #: Results already applied (the same report again).
    duplicate: int = 0

    @property
    def suppressed(self) -> int:
        return self.decisions.get("suppressed", 0)


def policy_for(account_id: int) -> tuple[int, int]:
    """(soft_count, soft_days) for the account: its own row or the platform defaults."""
    row = db.session.get(BouncePolicy, account_id)
    if row is not None:
        return row.soft_count, row.soft_days
    return int(setting("BOUNCE_SOFT_COUNT")), int(setting("BOUNCE_SOFT_DAYS"))


def get_policy(account_id: int) -> dict:
    """The account's soft-bounce rule and whether it is its own or the platform default."""
    count, days = policy_for(account_id)
    return {"soft_count": count, "soft_days": days, "default": db.session.get(BouncePolicy, account_id) is None}


def set_policy(account_id: int, *, soft_count: int | None, soft_days: int | None) -> dict:
    """Set the account's own rule; both None returns to the platform defaults."""
    from flexmail.services.platform.unit_of_work import unit_of_work

    with unit_of_work() as uow:
        row = uow.session.get(BouncePolicy, account_id)
        if soft_count is None and soft_days is None:
            if row is not None:
                uow.session.delete(row)
        else:
            defaults = policy_for(account_id)
            if row is None:
                row = BouncePolicy(account_id=account_id, soft_count=defaults[0], soft_days=defaults[1])
                uow.session.add(row)
            row.soft_count = soft_count if soft_count is not None else row.soft_count
            row.soft_days = soft_days if soft_days is not None else row.soft_days
    return get_policy(account_id)


def _targets(session, report: Report, result: Result, *, subscription_id, account_id):
    """account id -> (address hash, address or None, [subscriptions]) for one result."""
    if subscription_id is not None:
        sub = session.get(Subscription, subscription_id)
        return {sub.account_id: (sub.address_hash, sub.email, [sub])} if sub is not None else {}
    message_id = result.message_id or report.message_id
    if message_id:
        row = session.scalar(select(OutboxMessage).where(OutboxMessage.message_id == message_id))
        sub = session.get(Subscription, row.subscription_id) if row is not None else None
        if sub is not None and (account_id is None or sub.account_id == account_id):
            # Our message: its recipient is the subscription's, whatever the report shows
            # (providers redact it; forwarding rewrites it).
            return {sub.account_id: (sub.address_hash, sub.email, [sub])}
    if not result.recipient:
        return {}
    try:
        normalized = normalizer()(result.recipient).normalized
    except InvalidAddress:
        return {}
    key = hasher().address(normalized)
    query = select(Subscription).where(Subscription.address_hash == key).order_by(Subscription.id)
    if account_id is not None:
        query = query.where(Subscription.account_id == account_id)
    by_account: dict[int, list] = defaultdict(list)
    for sub in session.scalars(query):
        by_account[sub.account_id].append(sub)
    if account_id is not None:
        return {account_id: (key, normalized, by_account.get(account_id, []))}
    if result.bounce_class != BounceClass.HARD and len(by_account) > 1:
        return {}  # a complaint or a soft bounce is about one sender: ambiguous, nobody
    return {acct: (key, normalized, subs) for acct, subs in by_account.items()}


def apply_report(session, report: Report, *, at: dt.datetime, subscription_id: int | None = None,
                 account_id: int | None = None) -> Outcome:
    """Apply every result of ``report`` (see the module docstring). ``subscription_id``
    names the recipient outright (a refusal of our own send); ``account_id`` limits the
    results to one account (an ESP hook)."""
    outcome = Outcome()
    for result in report.results:
        targets = _targets(session, report, result, subscription_id=subscription_id, account_id=account_id)
        if not targets:
            outcome.unmatched += 1
            continue
        for acct, (key, address, subs) in targets.items():
            decision = _decide(session, acct, key, address, subs, result, at=at)
            if decision is None:
                outcome.duplicate += 1
            else:
                outcome.decisions[decision] += 1
    return outcome


def _decide(session, account_id: int, key: str, address: str | None, subs: list, result: Result, *,
            at: dt.datetime) -> str | None:
    message_id = result.message_id
    if message_id and session.scalar(select(BounceRecord.id).where(
            BounceRecord.account_id == account_id, BounceRecord.address_hash == key,
            BounceRecord.message_id == message_id, BounceRecord.reason == result.reason,
            BounceRecord.source == result.source[:32]).limit(1)):
        return None
    klass = result.bounce_class
    result = mask(result)
    summary = result.summary()
    decision = "ignored"
    if klass in SUPPRESSION_REASONS:
        decision = "suppressed"
    elif klass == BounceClass.SOFT:
        decision = "counted"
    elif klass == BounceClass.SENDER:
        decision = "reported"
    elif result.delivered:
        decision = "lifted" if _lift_soft(session, account_id, key, at=at) else "ignored"
    records = _record(session, account_id, key, subs, result, decision, at)
    if klass == BounceClass.SOFT and _soft_limit_reached(session, account_id, key):
        decision = "suppressed"
        for row in records:
            row.decision = decision
        _suppress(session, account_id, key, address, "soft_bounce", summary, at)
    elif klass in SUPPRESSION_REASONS:
        _suppress(session, account_id, key, address, SUPPRESSION_REASONS[klass], summary, at)
    meta = RequestMeta(at=at)
    for sub in subs:
        record_event(session, sub, EventType.BOUNCED, meta=meta, source="mail" if not result.source.startswith(
            "esp") else "esp", details={**summary, "decision": decision, "message_id": message_id})
    log.info("bounce result: account %s, address %s, %s/%s -> %s", account_id, key[:12], klass.value,
             result.reason, decision)
    return decision


def mask(result: Result) -> Result:
    """The result with every address in its diagnostic replaced by ``<address>``."""
    if not result.diagnostic or "@" not in result.diagnostic:
        return result
    from dataclasses import replace

    return replace(result, diagnostic=ADDRESS_IN_TEXT.sub("<address>", result.diagnostic))


def _record(session, account_id, key, subs, result: Result, decision: str, at) -> list[BounceRecord]:
    rows = []
    for sub in subs or [None]:
        rows.append(BounceRecord(
            account_id=account_id, list_id=sub.list_id if sub else None, subscription_id=sub.id if sub else None,
            address_hash=key, bounce_class=result.bounce_class.value, reason=result.reason[:32],
            status=(result.status or None) and result.status[:16], diagnostic=result.diagnostic,
            source=result.source[:32], decision=decision, message_id=result.message_id, at=at))
    session.add_all(rows)
    session.flush()
    return rows


def _suppress(session, account_id, key, address, reason, summary, at) -> None:
    add_entries(session, account_id=account_id, kind="address", items={key: address}, reason=reason,
                source=f"report:{summary['report']}", actor=MAIL_SYSTEM, event_source="mail", at=at, report=summary)


def _soft_limit_reached(session, account_id: int, key: str) -> bool:
    """N soft bounces since the last delivery, the first at least D days before the last."""
    count, days = policy_for(account_id)
    last_delivery = session.scalar(select(func.max(BounceRecord.at)).where(
        BounceRecord.account_id == account_id, BounceRecord.address_hash == key, BounceRecord.reason == "delivered"))
    query = select(func.count(), func.min(BounceRecord.at), func.max(BounceRecord.at)).where(
        BounceRecord.account_id == account_id, BounceRecord.address_hash == key,
        BounceRecord.bounce_class == BounceClass.SOFT.value)
    if last_delivery is not None:
        query = query.where(BounceRecord.at > last_delivery)
    seen, first, last = session.execute(query).one()
    return seen >= count and first is not None and (last - first) >= dt.timedelta(days=days)


def _lift_soft(session, account_id: int, key: str, *, at) -> bool:
    """A delivery report: lift the address's ``soft_bounce`` entry in the account, if any."""
    row = session.scalar(select(Suppression).where(
        Suppression.account_id == account_id, Suppression.address_hash == key, Suppression.reason == "soft_bounce"))
    if row is None:
        return False
    lift(session, row, actor=MAIL_SYSTEM, note="a later delivery report", event_source="mail", at=at)
    return True
