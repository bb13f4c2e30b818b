"""API keys of an account: list, create, rotate, revoke, and when each was last used.

Keys are shown once, at creation or rotation, and stored as their SHA-256 only. An ``admin``
key manages the keys of its own account; the platform operator's CLI manages any account's.
A revoked key fails its very next request: authentication reads ``revoked_at`` from the
database (see ``services.marketer.accounts.authenticate``), and revocation also drops the key from an
in-process cache of key lookups, where there is one (``accounts.forget_cached_keys``); such
a cache must bound how long other processes trust a key.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import or_, select, update

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models import Account, ApiKey
from flexmail.services.marketer.accounts import SCOPES, _digest, _new_key
from flexmail.services.platform.errors import FlexmailError, NotFound, ValidationFailed
from flexmail.services.platform.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

#: last_used_at is written at most this often per key and process (a cheap, rough time).
TOUCH_INTERVAL = dt.timedelta(seconds=60)
#: Longest grace period of a rotation: the old key keeps working this long at most.
MAX_GRACE = dt.timedelta(days=7)

_touched: dict[tuple[int, str], float] = {}
_touched_lock = threading.Lock()


class LastKey(FlexmailError):
    """Revoking this key would leave the account without a working admin key."""

    code = "last_admin_key"
    status = 409


@dataclass(frozen=True)
class KeyInfo:
    """A key as shown to its owner: never the secret, except ``secret`` right after creation."""

    id: int
    account_id: int
    name: str | None
    prefix: str
    scopes: list[str]
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    rotated_from_id: int | None
    secret: str | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.revoked_at is None or self.revoked_at > now()


def _info(row: ApiKey, secret: str | None = None) -> KeyInfo:
    return KeyInfo(row.id, row.account_id, row.name, row.prefix, sorted(row.scope_set), row.created_at,
                   row.last_used_at, row.revoked_at, row.rotated_from_id, secret)


def _checked_scopes(scopes: list[str]) -> list[str]:
    wanted = sorted({s.strip() for s in scopes if s and s.strip()})
    if not wanted or set(wanted) - SCOPES:
        raise ValidationFailed(f"Scopes must be among {', '.join(sorted(SCOPES))}.",
                               fields={"scopes": ["Unknown or missing scope."]})
    return wanted


def _checked_name(name: str | None) -> str | None:
    name = (name or "").strip() or None
    if name is not None and (len(name) > 200 or any(c in name for c in "\r\n\0")):
        raise ValidationFailed("A key name has at most 200 characters on one line.",
                               fields={"name": ["At most 200 characters, one line."]})
    return name


def _key_row(session, account_id: int, key_id: int, *, lock: bool = False) -> ApiKey:
    query = select(ApiKey).where(ApiKey.id == key_id, ApiKey.account_id == account_id)
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound("No such API key in this account.")
    return row


def list_keys(account_id: int, *, include_revoked: bool = False) -> list[KeyInfo]:
    """The account's keys, oldest first; revoked ones only when asked."""
    if db.session.get(Account, account_id) is None:
        raise NotFound("No such account.")
    rows = db.session.scalars(select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.id))
    keys = [_info(r) for r in rows]
    return keys if include_revoked else [k for k in keys if k.active]


def get_key(account_id: int, key_id: int) -> KeyInfo:
    return _info(_key_row(db.session, account_id, key_id))


def create_key(account_id: int, *, scopes: list[str], name: str | None = None) -> KeyInfo:
    """A new key for the account; its secret is in the result and nowhere else."""
    scopes, name = _checked_scopes(scopes), _checked_name(name)
    with unit_of_work() as uow:
        if uow.session.get(Account, account_id) is None:
            raise NotFound("No such account.")
        secret = _new_key(uow.session, account_id, scopes)
        uow.session.flush()
        row = uow.session.scalar(select(ApiKey).where(ApiKey.key_hash == _digest(secret)))
        row.name = name
        info = _info(row, secret)
    log.info("api key %s created in account %s", info.prefix, account_id)
    return info


def rotate_key(account_id: int, key_id: int, *, grace_seconds: int = 0) -> KeyInfo:
    """Replace a key by a new one with the same name and scopes; the old key stops working
    after ``grace_seconds`` (0: at once), so deployments can switch without an outage.
    Rotating a revoked key is refused (404 is kinder than a silent resurrection)."""
    if not 0 <= grace_seconds <= MAX_GRACE.total_seconds():
        raise ValidationFailed(f"grace_seconds must be between 0 and {int(MAX_GRACE.total_seconds())}.",
                               fields={"grace_seconds": ["Out of range."]})
    at = now()
    with unit_of_work() as uow:
        old = _key_row(uow.session, account_id, key_id, lock=True)
        if old.revoked_at is not None and old.revoked_at <= at:
            raise NotFound("This key is revoked; create a new one instead.")
        secret = _new_key(uow.session, account_id, sorted(old.scope_set))
        uow.session.flush()
        new = uow.session.scalar(select(ApiKey).where(ApiKey.key_hash == _digest(secret)))
        new.name, new.rotated_from_id = old.name, old.id
        until = at + dt.timedelta(seconds=grace_seconds)
        old.revoked_at = min(old.revoked_at, until) if old.revoked_at else until
        old_id = old.id
        info = _info(new, secret)
        uow.after_commit(lambda: _forget(old_id))
    log.info("api key %s rotated to %s in account %s (grace %ss)", old.prefix, info.prefix, account_id,
             grace_seconds)
    return info


def revoke_key(account_id: int, key_id: int, *, by_key_id: int | None = None) -> KeyInfo:
    """Revoke a key at once. Revoking a revoked key changes nothing. An account's last
    working admin key cannot be revoked through the API (``by_key_id`` set): the account
    would lock itself out; the operator's CLI can."""
    at = now()
    with unit_of_work() as uow:
        row = _key_row(uow.session, account_id, key_id, lock=True)
        if row.revoked_at is not None and row.revoked_at <= at:
            return _info(row)
        if by_key_id is not None and "admin" in row.scope_set:
            others = [k for k in uow.session.scalars(select(ApiKey).where(
                ApiKey.account_id == account_id, ApiKey.id != row.id,
                or_(ApiKey.revoked_at.is_(None), ApiKey.revoked_at > at))) if "admin" in k.scope_set]
            if not others:
                raise LastKey("This is the account's last admin key; create another admin key first.")
        row.revoked_at = at
        info = _info(row)
        uow.after_commit(lambda: _forget(key_id))
    log.info("api key %s revoked in account %s", info.prefix, account_id)
    return info


def _forget(key_id: int) -> None:
    """Drop the key from this process's cache of key lookups, if the service keeps one."""
    from flexmail.services.marketer import accounts

    forget = getattr(accounts, "forget_cached_keys", None)
    if forget is not None:
        forget(key_id=key_id)


def note_key_use(key_id: int, key_prefix: str) -> None:
    """Record that a key was just used: at most one guarded UPDATE a minute per key and
    process, in its own short transaction. A failure here never fails the request."""
    mono = time.monotonic()
    with _touched_lock:
        if mono - _touched.get((key_id, key_prefix), -1e9) < TOUCH_INTERVAL.total_seconds():
            return
        _touched[(key_id, key_prefix)] = mono
    at = now()
    try:
        with unit_of_work() as uow:
            uow.session.execute(
                update(ApiKey).where(ApiKey.id == key_id, or_(ApiKey.last_used_at.is_(None),
                                                              ApiKey.last_used_at < at - TOUCH_INTERVAL))
                .values(last_used_at=at).execution_options(synchronize_session=False))
    except Exception as exc:  # a busy database must not turn a read into an error
        log.warning("could not record the use of api key %s: %s", key_id, type(exc).__name__)
