"""Accounts and API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models import Account, ApiKey
from flexmail.services.errors import NotFound, ValidationFailed
from flexmail.services.unit_of_work import unit_of_work

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
    """Return the principal for a presented key, or ``None`` for unknown or revoked keys."""
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    row = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == _digest(key)))
    if row is None or (row.revoked_at is not None and row.revoked_at <= now()):
        return None
    return Principal(row.account_id, row.id, row.prefix, row.scope_set)
