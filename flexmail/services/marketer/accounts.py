"""Accounts and API keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from dataclasses import dataclass

from sqlalchemy import select

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models import Account, ApiKey
from flexmail.services.platform.context import setting
from flexmail.services.platform.errors import NotFound, ValidationFailed
from flexmail.services.platform.unit_of_work import unit_of_work

SCOPES = frozenset({"marketer", "compliance", "admin"})
KEY_PREFIX = "fm_"


@dataclass(frozen=True)
class Principal:
    """Who is calling the API: the account and the scopes of the key used."""

    account_id: int
    key_id: int
    key_prefix: str
    scopes: frozenset[str]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_account(name: str, *, scopes: list[str]) -> tuple[int, str]:
    """Create an account with one key; return ``(account_id, api_key)``. The key is shown once."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationFailed("An account needs a name of 1 to 200 characters.")
    unknown = set(scopes) - SCOPES
    if unknown or not scopes:
        raise ValidationFailed(f"Scopes must be among {', '.join(sorted(SCOPES))}.")
    with unit_of_work() as uow:
        account = Account(name=name)
        uow.session.add(account)
        uow.session.flush()
        key = _new_key(uow.session, account.id, scopes)
    return account.id, key


def set_controller(account_id: int, *, legal_name: str | None, postal_address: str | None) -> dict:
    """Name the controller of the account's personal data (shown on consent certificates)."""
    errors = {}
    legal_name = (legal_name or "").strip() or None
    postal_address = (postal_address or "").strip() or None
    if legal_name is not None and len(legal_name) > 200:
        errors["legal_name"] = ["1 to 200 characters"]
    if postal_address is not None and len(postal_address) > 500:
        errors["postal_address"] = ["1 to 500 characters"]
    for field, value in (("legal_name", legal_name), ("postal_address", postal_address)):
        if value and any(ord(c) < 32 and c != "\n" for c in value):
            errors.setdefault(field, []).append("no control characters")
    if errors:
        raise ValidationFailed("Invalid input.", fields=errors)
    with unit_of_work() as uow:
        account = uow.session.get(Account, account_id)
        if account is None:
            raise NotFound("No such account.")
        account.legal_name, account.postal_address = legal_name, postal_address
    return controller(account_id)


def controller(account_id: int) -> dict:
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    return {"account_id": account.id, "name": account.name, "legal_name": account.legal_name,
            "postal_address": account.postal_address}


def create_key(account_id: int, *, scopes: list[str]) -> str:
    with unit_of_work() as uow:
        return _new_key(uow.session, account_id, scopes)


def _new_key(session, account_id: int, scopes: list[str]) -> str:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiKey(account_id=account_id, prefix=key[:10], key_hash=_digest(key),
               scopes=",".join(sorted(set(scopes))))
    )
    return key


def authenticate(key: str) -> Principal | None:
    """Return the principal for a presented key, or ``None`` for unknown or revoked keys.

    A key found valid is trusted for ``API_KEY_CACHE_SECONDS`` by this process without a
    lookup (``_key_cache``). Revoking a key in this process takes effect at once
    (``forget_cached_keys``); other processes notice within those seconds. Unknown keys
    are never cached, so guessing fills no memory.
    """
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    digest = _digest(key)
    at = now()
    hit = _key_cache.get(digest, at)
    if hit is not None:
        principal, revoked_at = hit
        return None if revoked_at is not None and revoked_at <= at else principal
    row = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if row is None:
        return None
    principal = Principal(row.account_id, row.id, row.prefix, row.scope_set)
    _key_cache.put(digest, (principal, row.revoked_at), at, setting("API_KEY_CACHE_SECONDS"))
    if row.revoked_at is not None and row.revoked_at <= at:
        return None
    return principal


class _KeyCache:
    """Verified keys per process for a few seconds: key digest -> (principal, revoked_at)."""

    MAX_ENTRIES = 10_000

    def __init__(self):
        self._entries: dict[str, tuple[object, dt.datetime]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, at: dt.datetime):
        entry = self._entries.get(digest)
        if entry is None or entry[1] <= at:
            return None
        return entry[0]

    def put(self, digest: str, value, at: dt.datetime, seconds: int) -> None:
        if seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = (value, at + dt.timedelta(seconds=seconds))

    def forget(self, *, key_id: int | None = None, account_id: int | None = None) -> None:
        with self._lock:
            if key_id is None and account_id is None:
                self._entries.clear()
                return
            for digest, ((principal, _), _) in list(self._entries.items()):
                if principal.key_id == key_id or principal.account_id == account_id:
                    self._entries.pop(digest, None)


_key_cache = _KeyCache()


def forget_cached_keys(*, key_id: int | None = None, account_id: int | None = None) -> None:
    """Drop cached keys of this process: one key, an account's keys, or (no argument) all.

    Call it when a key is revoked or its scopes change, so this process stops trusting
    the old state at once.
    """
    _key_cache.forget(key_id=key_id, account_id=account_id)
