"""Flood control for confirmation mails: nobody may bomb a mailbox through us.

Each limit is a fixed-window counter row (``models.flood``) incremented by one upsert per
signup, inside the signup's transaction: ``INSERT ... ON CONFLICT DO UPDATE SET hits =
hits + 1 WHERE hits < cap RETURNING``. A counter at its cap returns no row and is not
incremented. The row lock the upsert takes is held until the signup commits or rolls
back, so parallel signups are counted exactly (50 parallel signups of one address pass
3, not 6 or 9), and a refused signup rolls its other increments back. The cost is one
statement on a few primary-key rows, whatever the account's volume.

The limits, all keyed by hashes (no address or IP in clear):

- per account and address, per UTC day (``CONFIRM_PER_ADDRESS_PER_DAY``): ``RateLimited``;
  another account's signups never count here, so they cannot make this one a 429;
- per account and signup IP, per hour (``CONFIRM_PER_IP_PER_HOUR``): ``RateLimited``;
- per account, per hour (``CONFIRM_PER_ACCOUNT_PER_HOUR``): ``RateLimited``;
- per address over the whole platform, per UTC day (``CONFIRM_PLATFORM_PER_ADDRESS_PER_DAY``):
  never an error. The signup goes on as if the mail were sent and the mail is *held*
  (outbox status ``held``), so no account learns that others mailed the address; the
  platform admin lists held mails (``flask --app app outbox held``).

Windows are fixed (UTC day, full hour), so up to twice a limit can pass around a window's
edge; that is the price of one row per key instead of one row per mail.

The account's hourly limit is the one counter that two *different* people share, so it is
split into ``ACCOUNT_SHARDS`` rows (``ac:<account>:<n>``), each with its share of the cap
(shares add up to the cap exactly). A signup counts on the shard of its address hash, so
parallel signups of different addresses rarely wait for each other's commit. Only when that
shard is full does the signup look for room in the others (``_borrow``): a plain guarded
UPDATE per shard, which never waits on a full shard and never holds one shard while waiting
for another that its holder would wait for (the shard rows are counted last, after the
personal keys). The limit stays exact: a shard never passes its share, and a signup is
refused only when every shard is full.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from flexmail.clock import iso, now
from flexmail.extensions import db
from flexmail.models import FloodCounter, OutboxMessage
from flexmail.services.platform.context import setting
from flexmail.services.platform.errors import RateLimited

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Limit:
    key: str
    window: dt.timedelta
    cap: int
    #: ``None``: the platform cap (hold the mail silently); else the 429 message.
    message: str | None

    def window_start(self, at: dt.datetime) -> dt.datetime:
        if self.window == DAY:
            return at.replace(hour=0, minute=0, second=0, microsecond=0)
        return at.replace(minute=0, second=0, microsecond=0)


#: Rows the account's hourly counter is split into (fewer when the cap is smaller).
ACCOUNT_SHARDS = 16
ACCOUNT_MESSAGE = "This account sent too many confirmation mails in the last hour."


def account_shards(account_id: int) -> list[Limit]:
    """The account counter's shards: ``min(cap, ACCOUNT_SHARDS)`` rows whose caps add up to the cap."""
    cap = setting("CONFIRM_PER_ACCOUNT_PER_HOUR")
    count = max(1, min(ACCOUNT_SHARDS, cap))
    return [Limit(f"ac:{account_id}:{n}", HOUR, cap // count + (n < cap % count), ACCOUNT_MESSAGE)
            for n in range(count)]


def limits_for(*, account_id: int, address_hash: str, ip_hash: str | None) -> list[Limit]:
    """The counters one confirmation mail of ``account_id`` to ``address_hash`` counts on:
    the personal ones (sorted) and then the account shard of the address."""
    limits = [
        Limit(f"aa:{account_id}:{address_hash}", DAY, setting("CONFIRM_PER_ADDRESS_PER_DAY"),
              "Too many confirmation mails to this address; try again later."),
        Limit(f"pa:{address_hash}", DAY, setting("CONFIRM_PLATFORM_PER_ADDRESS_PER_DAY"), None),
    ]
    if ip_hash:
        limits.append(Limit(f"ip:{account_id}:{ip_hash}", HOUR, setting("CONFIRM_PER_IP_PER_HOUR"),
                            "Too many signups from this IP address; try again later."))
    # One lock order for every transaction (personal keys sorted, the account shard last):
    # no deadlock between signups, also when one of them borrows from another shard.
    shards = account_shards(account_id)
    return [*sorted(limits, key=lambda limit: limit.key), shards[int(address_hash[:8], 16) % len(shards)]]


def count_confirmation(session, *, account_id: int, address_hash: str, ip_hash: str | None) -> bool:
    """Count one confirmation mail on every limit, inside the caller's transaction.

    Raises ``RateLimited`` when an account limit is reached (the caller's transaction must
    then roll back, which undoes the other increments). Returns ``True`` when the mail must
    be held because the platform-wide cap for the address is reached.
    """
    at = now()
    limits = limits_for(account_id=account_id, address_hash=address_hash, ip_hash=ip_hash)
    rows = [{"key": limit.key, "window_start": limit.window_start(at), "hits": 1, "cap": limit.cap}
            for limit in limits]
    table = FloodCounter.__table__
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.key, table.c.window_start],
        set_={"hits": table.c.hits + 1, "cap": stmt.excluded.cap},
        where=table.c.hits < stmt.excluded.cap,
    ).returning(table.c.key)
    counted = set(session.connection().execute(stmt).scalars())
    shard = limits[-1]
    if shard.key not in counted and _borrow(session, account_id, shard, at):
        counted.add(shard.key)
    refused = [limit for limit in limits if limit.key not in counted]
    for limit in refused:
        if limit.message is not None:
            end = limit.window_start(at) + limit.window
            raise RateLimited(limit.message, retry_after=max(1, int((end - at).total_seconds()) + 1))
    return bool(refused)


def _borrow(session, account_id: int, full: Limit, at: dt.datetime) -> bool:
    """Count on another shard of the account when the address's own one is full; ``False``
    when every shard is full (the account's limit is reached: exactly ``cap`` counted).

    Committed counts never go down within a window, so a committed total at the cap refuses
    at once. Otherwise each other shard is tried with statements that wait only for a
    shard with room (a full one fails their condition without a wait): a new row (INSERT
    ... ON CONFLICT DO NOTHING), else a guarded increment.
    """
    start = full.window_start(at)
    shards = [limit for limit in account_shards(account_id) if limit.key != full.key]
    connection = session.connection()
    total = connection.execute(_TOTAL, {"keys": [full.key] + [limit.key for limit in shards],
                                        "window_start": start}).scalar()
    if total >= sum(limit.cap for limit in shards) + full.cap:
        return False
    postgres = connection.dialect.name == "postgresql"
    table = FloodCounter.__table__
    new_row = (postgresql.insert if postgres else sqlite.insert)(table).on_conflict_do_nothing().returning(table.c.key)
    for limit in shards:
        if limit.cap < 1:
            continue
        values = {"key": limit.key, "window_start": start, "hits": 1, "cap": limit.cap}
        if connection.execute(new_row.values(values)).first() is not None:
            return True
        if connection.execute(_INCREMENT, {"k": limit.key, "w": start, "c": limit.cap}).rowcount == 1:
            return True
    return False


_TOTAL = select(func.coalesce(func.sum(FloodCounter.hits), 0)).where(
    FloodCounter.key.in_(bindparam("keys", expanding=True)), FloodCounter.window_start == bindparam("window_start"))
_INCREMENT = (update(FloodCounter.__table__)
              .where(FloodCounter.key == bindparam("k"), FloodCounter.window_start == bindparam("w"),
                     FloodCounter.hits < bindparam("c"))
              .values(hits=FloodCounter.hits + 1, cap=bindparam("c")))


def held_confirmations(*, account_id: int | None = None, limit: int = 100) -> list[dict]:
    """Held confirmation mails for the platform admin, newest first: ids, the account, a hash
    prefix of the address (enough to see one address being targeted), never the address."""
    query = select(OutboxMessage).where(OutboxMessage.status == "held")
    if account_id is not None:
        query = query.where(OutboxMessage.account_id == account_id)
    rows = db.session.scalars(query.order_by(OutboxMessage.id.desc()).limit(limit))
    return [{"outbox_id": r.id, "account_id": r.account_id, "subscription_id": r.subscription_id,
             "address": r.address_hash[:12], "held_at": iso(r.created_at)} for r in rows]


def purge_expired(session, *, before: dt.datetime | None = None) -> int:
    """Delete counters of windows that ended (a day ago or more). Returns how many."""
    cutoff = (before or now()) - 2 * DAY
    return session.execute(delete(FloodCounter).where(FloodCounter.window_start < cutoff)).rowcount
