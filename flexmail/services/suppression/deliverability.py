"""The marketer's deliverability report: bounce and complaint results of a list, counted by
class and reason per day (UTC), from ``bounce_records`` (no address is read)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from flexmail.clock import iso, now
from flexmail.extensions import db
from flexmail.models import BounceRecord
from flexmail.services.marketer.lists import get_list

#: Longest window one request may ask for.
MAX_DAYS = 366


def _day(column):
    if db.session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def list_deliverability(account_id: int, list_id: int, *, days: int = 30) -> dict:
    """Counts for the last ``days`` days (another account's list is not found):
    ``totals`` by class, ``reasons`` by class and reason, and ``days``: one entry per day
    that had results, oldest first. ``sender`` counts are problems of the sending side
    (blocklists, authentication, policy) that never suppress a recipient."""
    get_list(account_id, list_id)
    until = now()
    since = until - dt.timedelta(days=days)
    day = _day(BounceRecord.at).label("day")
    rows = db.session.execute(
        select(day, BounceRecord.bounce_class, BounceRecord.reason, func.count())
        .where(BounceRecord.account_id == account_id, BounceRecord.list_id == list_id, BounceRecord.at >= since)
        .group_by(day, BounceRecord.bounce_class, BounceRecord.reason)
        .order_by(day)
    ).all()
    totals: dict[str, int] = {}
    reasons: dict[str, dict[str, int]] = {}
    per_day: dict[str, dict] = {}
    for when, klass, reason, count in rows:
        key = str(when)
        totals[klass] = totals.get(klass, 0) + count
        reasons.setdefault(klass, {})[reason] = reasons.get(klass, {}).get(reason, 0) + count
        entry = per_day.setdefault(key, {"date": key, "classes": {}, "reasons": {}})
        entry["classes"][klass] = entry["classes"].get(klass, 0) + count
        entry["reasons"][reason] = entry["reasons"].get(reason, 0) + count
    return {"list_id": list_id, "since": iso(since), "until": iso(until), "totals": totals, "reasons": reasons,
            "days": list(per_day.values())}
