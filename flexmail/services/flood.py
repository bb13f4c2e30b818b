"""Flood control for confirmation mails: nobody may bomb a mailbox through us.

Limits are counted on the outbox in the database, so they hold across processes and
restarts and need no address in clear: per recipient (keyed hash, platform-wide), per
signup IP (keyed hash) and per account.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models import OutboxMessage
from flexmail.services.context import setting
from flexmail.services.errors import RateLimited

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def check_confirmation_allowed(*, account_id: int, address_hash: str, ip_hash: str | None) -> None:
    """Raise ``RateLimited`` when one more confirmation mail would pass a limit."""
    at = now()
    _check(OutboxMessage.address_hash == address_hash, at - DAY,
           setting("CONFIRM_PER_ADDRESS_PER_DAY"), DAY,
           "Too many confirmation mails to this address; try again later.")
    if ip_hash:
        _check(OutboxMessage.signup_ip_hash == ip_hash, at - HOUR,
               setting("CONFIRM_PER_IP_PER_HOUR"), HOUR,
               "Too many signups from this IP address; try again later.")
    _check(OutboxMessage.account_id == account_id, at - HOUR,
           setting("CONFIRM_PER_ACCOUNT_PER_HOUR"), HOUR,
           "This account sent too many confirmation mails in the last hour.")


def _check(condition, since: dt.datetime, limit: int, window: dt.timedelta, message: str) -> None:
    count, oldest = db.session.execute(
        select(func.count(OutboxMessage.id), func.min(OutboxMessage.created_at))
        .where(condition, OutboxMessage.kind == "confirmation", OutboxMessage.created_at > since)
    ).one()
    if count >= limit:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=dt.UTC)
        retry_after = max(1, int((oldest + window - now()).total_seconds()) + 1)
        raise RateLimited(message, retry_after=retry_after)
