"""The consent funnel of one list, as the dashboard shows it: counted in SQL from the events.

Every figure is a ``GROUP BY`` over ``consent_events`` (forwards: over the per-day counters
of ``campaign_forward_days``, since no event names a forward), bucketed by whole days (or
weeks) from the start of the range with integer epoch arithmetic, which SQLite and
PostgreSQL both do exactly (``epoch_seconds``). Python only pivots the few grouped rows
(and names a suppression's class from its grouped reason).

What each figure means:

- *signups*: ``subscribe_requested`` events; *confirmations*: ``confirmed`` events (by the
  person's ``button`` or the page's own ``auto`` submit after the click gate);
  *confirmation rate*: confirmations / signups in the range (events, not cohorts);
- *median time to confirm*: from the subscription's latest ``subscribe_requested`` before
  the ``confirmed`` event to that event, median over the confirmations in the range;
- *scanner hits*: ``link_fetched`` events recorded before the click gate (security gateways
  fetch links seconds after delivery, standards G4/G5). They are shown, never counted as
  confirmations: the funnel counts only ``confirmed`` events;
- *unsubscribes* by method (the event's ``source``: one-click, page, mailto, api, erasure)
  and by the reason the person gave (``none`` when they gave none);
- *suppressions* by class (who or what caused them, ``SUPPRESSION_CLASSES``) and reason;
- *forwards* per campaign of the list: forward submissions and friends mailed per bucket.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Integer, and_, case, func, or_, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from flexmail.clock import now
from flexmail.domain.consent import EventType
from flexmail.extensions import db
from flexmail.models import Campaign, CampaignForwardDay, ConsentEvent
from flexmail.services.marketer.lists import get_list
from flexmail.services.platform.errors import ValidationFailed

#: The ranges offered (days back from today, UTC) and the width of one bucket in days.
RANGES = {30: 1, 90: 1, 365: 7}
DEFAULT_DAYS = 30
#: Who or what a suppression came from, by its reason; platform-wide entries are ``platform``.
SUPPRESSION_CLASSES = {
    "hard_bounce": "bounce", "soft_bounce": "bounce", "complaint": "complaint",
    "unsubscribed": "recipient", "opt_out": "recipient", "not_me": "recipient", "erasure": "recipient",
    "manual": "marketer",
}
CLASS_ORDER = ("recipient", "bounce", "complaint", "marketer", "platform", "other")
METHOD_ORDER = ("one-click", "page", "mailto", "api", "erasure")
NO_REASON = "none"
_DAY = 86400


class epoch_seconds(FunctionElement):
    """Whole seconds since 1970-01-01 UTC of a timestamp or date expression."""

    type = Integer()
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element, compiler, **kw):
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_pg(element, compiler, **kw):
    return f"CAST(floor(extract(epoch FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"


@dataclass(frozen=True)
class Range:
    """``days`` whole UTC days ending today, in buckets of ``width`` days."""

    days: int
    width: int
    since: dt.datetime
    until: dt.datetime

    @property
    def buckets(self) -> list[dt.date]:
        """The first day of each bucket (the last bucket may be shorter)."""
        count = -(-self.days // self.width)
        return [(self.since + dt.timedelta(days=i * self.width)).date() for i in range(count)]


def date_range(days, *, today: dt.date | None = None) -> Range:
    """The range for ``days`` (30, 90 or 365; anything else is a ``ValidationFailed``)."""
    try:
        days = int(days)
    except (TypeError, ValueError):
        days = None
    if days not in RANGES:
        raise ValidationFailed("Unknown date range.", fields={"days": [f"One of {', '.join(map(str, RANGES))}."]})
    today = today or now().date()
    until = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return Range(days, RANGES[days], until - dt.timedelta(days=days), until)


@dataclass
class CampaignForwards:
    campaign_id: int
    subject: str
    forwards: int = 0
    recipients: int = 0
    series: list[int] = field(default_factory=list)


@dataclass
class Funnel:
    """The figures of one list over one range; each ``*_series`` has one value per bucket."""

    list_id: int
    list_name: str
    range: Range
    signups: int = 0
    confirmations: int = 0
    confirmations_by_method: dict[str, int] = field(default_factory=dict)
    median_seconds_to_confirm: float | None = None
    scanner_hits: int = 0
    link_fetches: int = 0
    unsubscribes: int = 0
    unsubscribes_by_method: dict[str, int] = field(default_factory=dict)
    unsubscribes_by_reason: dict[str, int] = field(default_factory=dict)
    suppressions: int = 0
    #: (class, reason) -> count
    suppressions_by_class_reason: dict[tuple[str, str], int] = field(default_factory=dict)
    funnel_series: dict[str, list[int]] = field(default_factory=dict)
    unsubscribe_series: dict[str, list[int]] = field(default_factory=dict)
    suppression_series: dict[str, list[int]] = field(default_factory=dict)
    forwards: list[CampaignForwards] = field(default_factory=list)

    @property
    def confirmation_rate(self) -> float | None:
        return self.confirmations / self.signups if self.signups else None

    @property
    def suppressions_by_class(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for (klass, _), n in self.suppressions_by_class_reason.items():
            totals[klass] = totals.get(klass, 0) + n
        return totals


def _bucket(expr, rng: Range) -> ColumnElement:
    return (epoch_seconds(expr) - int(rng.since.timestamp())) // (rng.width * _DAY)


def _in_range(rng: Range):
    e = ConsentEvent
    return and_(e.at >= rng.since, e.at < rng.until)


def _no_jit() -> None:
    """PostgreSQL's JIT compiles these few-hundred-millisecond statements for longer than they
    run (300 ms of 480 measured, docs/benchmarks.md): off for this transaction only."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL jit = off"))


def _counts_by_type(account_id: int, list_id: int, rng: Range):
    """One scan of the list's events in the range: per bucket and type, the count, the scanner
    hits among link fetches and the automatic confirmations. Grouped by plain values only, so
    the planner's estimate of the groups stays small and it aggregates in memory."""
    e = ConsentEvent
    bucket = _bucket(e.at, rng).label("bucket")
    scanner = case((and_(e.type == EventType.LINK_FETCHED, e.details["before_click_gate"].as_boolean()), 1),
                   else_=0).label("scanner")
    auto = case((and_(e.type == EventType.CONFIRMED, e.details["method"].as_string() == "auto"), 1),
                else_=0).label("auto")
    types = [EventType.SUBSCRIBE_REQUESTED, EventType.CONFIRMED, EventType.LINK_FETCHED,
             EventType.UNSUBSCRIBED, EventType.SUPPRESSED]
    # Grouped outside the subquery: PostgreSQL sees the bound values of the bucket expression as
    # different parameters in SELECT and GROUP BY, and refuses the query.
    rows = (select(bucket, e.type.label("type"), scanner, auto)
            .where(e.list_id == list_id, e.account_id == account_id, _in_range(rng), e.type.in_(types))
            .subquery())
    return db.session.execute(
        select(rows.c.bucket, rows.c.type, func.count().label("n"), func.sum(rows.c.scanner), func.sum(rows.c.auto))
        .group_by(rows.c.bucket, rows.c.type)
    ).all()


def _opt_outs(account_id: int, list_id: int, rng: Range):
    """Unsubscribes and suppressions per bucket, type, method (the event's ``source``), scope
    and reason; each JSON field is read once per row (the fence keeps PostgreSQL from copying
    the extraction into every place the outer query uses it)."""
    e = ConsentEvent
    rows = (select(_bucket(e.at, rng).label("bucket"), e.type.label("type"), e.source.label("source"),
                   case((e.type == EventType.SUPPRESSED, e.details["scope"].as_string()), else_=None).label("scope"),
                   e.details["reason"].as_string().label("reason"))
            .where(e.list_id == list_id, e.account_id == account_id, _in_range(rng),
                   e.type.in_([EventType.UNSUBSCRIBED, EventType.SUPPRESSED]))
            .offset(0)
            .subquery())
    return db.session.execute(
        select(rows.c.bucket, rows.c.type, rows.c.source, rows.c.scope, rows.c.reason, func.count().label("n"))
        .group_by(rows.c.bucket, rows.c.type, rows.c.source, rows.c.scope, rows.c.reason)
    ).all()


def suppression_class(scope: str | None, reason: str | None) -> str:
    """Who or what a suppression came from (``SUPPRESSION_CLASSES``; platform-wide: ``platform``)."""
    return "platform" if scope == "global" else SUPPRESSION_CLASSES.get(reason or "", "other")


def _median_seconds_to_confirm(account_id: int, list_id: int, rng: Range) -> float | None:
    """The median, over the confirmations in the range, of the seconds since the latest
    signup request of the same subscription (window functions: no median aggregate on SQLite).
    A confirmation without a request (none is written so) sorts last and is not counted."""
    e, r = ConsentEvent, ConsentEvent.__table__.alias("requested")
    requested_at = (select(func.max(r.c.at))
                    .where(r.c.subscription_id == e.subscription_id, r.c.type == EventType.SUBSCRIBE_REQUESTED,
                           r.c.id < e.id)
                    .correlate(e).scalar_subquery())
    durations = (select((epoch_seconds(e.at) - epoch_seconds(requested_at)).label("s"))
                 .where(e.list_id == list_id, e.account_id == account_id, _in_range(rng),
                        e.type == EventType.CONFIRMED)
                 .offset(0)  # a fence: PostgreSQL would otherwise run the lookup twice per row
                 .subquery())
    ordered = select(durations.c.s, func.row_number().over(order_by=durations.c.s.asc().nulls_last()).label("rn"),
                     func.count(durations.c.s).over().label("n")).subquery()
    value = db.session.scalar(select(func.avg(ordered.c.s)).where(
        or_(ordered.c.rn == (ordered.c.n + 1) // 2, ordered.c.rn == (ordered.c.n + 2) // 2)))
    return float(value) if value is not None else None


def _forwards(account_id: int, list_id: int, rng: Range) -> list[CampaignForwards]:
    day = CampaignForwardDay
    rows = (select(Campaign.id.label("campaign_id"), Campaign.subject, _bucket(day.day, rng).label("bucket"),
                   day.forwards, day.recipients)
            .join(day, day.campaign_id == Campaign.id)
            .where(Campaign.account_id == account_id, Campaign.list_id == list_id,
                   day.day >= rng.since.date(), day.day < rng.until.date())
            .subquery())
    rows = db.session.execute(
        select(rows.c.campaign_id, rows.c.subject, rows.c.bucket, func.sum(rows.c.forwards),
               func.sum(rows.c.recipients))
        .group_by(rows.c.campaign_id, rows.c.subject, rows.c.bucket)
        .order_by(rows.c.campaign_id)
    ).all()
    size = len(rng.buckets)
    campaigns: dict[int, CampaignForwards] = {}
    for campaign_id, subject, b, forwards, recipients in rows:
        item = campaigns.setdefault(campaign_id, CampaignForwards(campaign_id, subject, series=[0] * size))
        item.forwards += int(forwards or 0)
        item.recipients += int(recipients or 0)
        item.series[int(b)] += int(forwards or 0)
    return list(campaigns.values())


def list_funnel(account_id: int, list_id: int, *, days=DEFAULT_DAYS, today: dt.date | None = None) -> Funnel:
    """The funnel of a list of the account over the last ``days`` days (30, 90 or 365).

    Another account's list is ``NotFound``; an unknown range is ``ValidationFailed``.
    Four statements: the counts by type, the opt-outs, the median, the forwards.
    """
    lst = get_list(account_id, list_id)
    rng = date_range(days, today=today)
    size = len(rng.buckets)
    funnel = Funnel(lst.id, lst.name, rng)
    series = {name: [0] * size for name in ("signups", "confirmations", "scanner_hits")}
    _no_jit()
    for b, kind, n, scanner, auto in _counts_by_type(account_id, list_id, rng):
        b, n, scanner, auto = int(b), int(n), int(scanner or 0), int(auto or 0)
        if kind == EventType.SUBSCRIBE_REQUESTED:
            funnel.signups += n
            series["signups"][b] += n
        elif kind == EventType.CONFIRMED:
            funnel.confirmations += n
            series["confirmations"][b] += n
            for method, count in (("button", n - auto), ("auto", auto)):
                if count:
                    funnel.confirmations_by_method[method] = funnel.confirmations_by_method.get(method, 0) + count
        elif kind == EventType.LINK_FETCHED:
            funnel.link_fetches += n
            funnel.scanner_hits += scanner
            series["scanner_hits"][b] += scanner
    for b, kind, source, scope, why, n in _opt_outs(account_id, list_id, rng):
        b, n = int(b), int(n)
        if kind == EventType.UNSUBSCRIBED:
            method, reason = source or "other", why or NO_REASON
            funnel.unsubscribes += n
            funnel.unsubscribes_by_method[method] = funnel.unsubscribes_by_method.get(method, 0) + n
            funnel.unsubscribes_by_reason[reason] = funnel.unsubscribes_by_reason.get(reason, 0) + n
            funnel.unsubscribe_series.setdefault(method, [0] * size)[b] += n
        else:
            klass, reason = suppression_class(scope, why), why or NO_REASON
            funnel.suppressions += n
            pair = (klass, reason)
            funnel.suppressions_by_class_reason[pair] = funnel.suppressions_by_class_reason.get(pair, 0) + n
            funnel.suppression_series.setdefault(klass, [0] * size)[b] += n
    funnel.funnel_series = series
    funnel.unsubscribe_series = _ordered(funnel.unsubscribe_series, METHOD_ORDER)
    funnel.suppression_series = _ordered(funnel.suppression_series, CLASS_ORDER)
    funnel.median_seconds_to_confirm = _median_seconds_to_confirm(account_id, list_id, rng)
    funnel.forwards = _forwards(account_id, list_id, rng)
    return funnel


def _ordered(series: dict[str, list[int]], order: tuple[str, ...]) -> dict[str, list[int]]:
    rank = {name: i for i, name in enumerate(order)}
    return dict(sorted(series.items(), key=lambda item: (rank.get(item[0], len(order)), item[0])))
