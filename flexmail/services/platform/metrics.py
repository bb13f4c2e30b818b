"""Operational figures: the unsubscribe counter and the gauges computed at scrape time.

The counter lives here so the unsubscribe service increments it in ONE place. The gauges
(outbox depth and the age of its oldest due row, ledger sealing lag)
are read from the database when ``/metrics`` is scraped, never kept in
memory, so every process and every scrape agrees with the database.

Under gunicorn ``PROMETHEUS_MULTIPROC_DIR`` is set (``deploy/gunicorn.conf.py``) before this
module is imported, and prometheus-client then keeps the counter in per-process files.
"""

from __future__ import annotations

from prometheus_client import Counter
from sqlalchemy import func, select

from flexmail import clock
from flexmail.extensions import db
from flexmail.models import ConsentEvent
from flexmail.models import OutboxMessage as Outbox

#: Opt-outs applied, by method (one-click, page, mailto, api). Incremented by
#: ``services.optout.unsubscribe`` when an unsubscribe changed a subscription.
UNSUBSCRIBES = Counter("flexmail_unsubscribes_total", "Unsubscribes applied, by method.", ["method"])
for _method in ("one-click", "page", "mailto", "api"):
    UNSUBSCRIBES.labels(_method)  # every method's series exists from the start, at 0


def _age(oldest) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=clock.now().tzinfo)
    return max(0.0, (clock.now() - oldest).total_seconds())


def outbox_figures() -> dict:
    """Rows waiting to be sent and the age in seconds of the oldest one that is due now.

    With a ``next_attempt_at`` column (the delivery retry schedule) a row is due when that
    time has come; without it every pending row is due since its creation.
    """
    next_at = getattr(Outbox, "next_attempt_at", None)
    pending = Outbox.status == "pending"
    depth = db.session.scalar(select(func.count()).select_from(Outbox).where(pending))
    if next_at is not None:
        oldest = db.session.scalar(select(func.min(next_at)).where(pending, next_at <= clock.now()))
    else:
        oldest = db.session.scalar(select(func.min(Outbox.created_at)).where(pending))
    return {"depth": int(depth or 0), "oldest_due_age_seconds": _age(oldest)}


def ledger_figures() -> dict | None:
    """Consent events not yet given a place in their account's tree (``seq IS NULL``) and
    the age of the oldest; ``None`` while events get their ``seq`` at insert (no sealer)."""
    if not ConsentEvent.__table__.c.seq.nullable:
        return None
    unsealed = ConsentEvent.seq.is_(None)
    count, oldest = db.session.execute(
        select(func.count(), func.min(ConsentEvent.at)).where(unsealed)).one()
    return {"unsealed": int(count or 0), "oldest_unsealed_age_seconds": _age(oldest)}


def snapshot() -> dict:
    """Everything the scrape reports from the database, in one call (the spool's lines come
    from ``spool.status()``, read by the scrape itself: this module imports no other service,
    since the unsubscribe service imports it)."""
    try:
        return {"outbox": outbox_figures(), "ledger": ledger_figures()}
    finally:
        db.session.remove()
