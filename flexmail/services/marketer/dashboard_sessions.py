"""Dashboard sessions: sign in with an API key, then a random session secret in the cookie.

The key is checked exactly as the API checks it (``accounts.authenticate``: unknown and
revoked keys alike are ``None``, so a refusal says nothing about whether a key exists) and
is never stored: the session row keeps the key's id, and the cookie only a random secret
whose SHA-256 names the row. Every request reads the row with its key, so signing out, the
session's expiry and revoking the key each end the session at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import or_, select, update

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models import ApiKey, DashboardSession
from flexmail.services.marketer.accounts import Principal, authenticate
from flexmail.services.marketer.api_keys import note_key_use
from flexmail.services.platform.context import setting
from flexmail.services.platform.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

#: A session secret is this many random bytes (URL-safe base64 in the cookie).
SECRET_BYTES = 32


@dataclass(frozen=True)
class SignedIn:
    """A new session: ``secret`` goes into the cookie and nowhere else."""

    secret: str
    principal: Principal


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def sign_in(api_key: str) -> SignedIn | None:
    """Open a session for a valid key; ``None`` for a missing, unknown or revoked key."""
    principal = authenticate((api_key or "").strip())
    if principal is None:
        log.info("dashboard sign-in refused")
        return None
    secret = secrets.token_urlsafe(SECRET_BYTES)
    at = now()
    with unit_of_work() as uow:
        uow.session.add(DashboardSession(
            id=_digest(secret), account_id=principal.account_id, api_key_id=principal.key_id, created_at=at,
            expires_at=at + dt.timedelta(seconds=setting("DASHBOARD_SESSION_SECONDS"))))
    note_key_use(principal.key_id, principal.key_prefix)
    log.info("dashboard session opened for account %s (key id %s)", principal.account_id, principal.key_id)
    return SignedIn(secret, principal)


def session_principal(secret: str | None) -> Principal | None:
    """Who a session secret from a cookie belongs to, or ``None`` when the session is
    unknown, signed out, expired, or its key was revoked."""
    if not secret or not isinstance(secret, str) or len(secret) > 100:
        return None
    at = now()
    row = db.session.execute(
        select(ApiKey.account_id, ApiKey.id, ApiKey.prefix, ApiKey.scopes)
        .join(DashboardSession, DashboardSession.api_key_id == ApiKey.id)
        .where(DashboardSession.id == _digest(secret), DashboardSession.ended_at.is_(None),
               DashboardSession.expires_at > at, DashboardSession.account_id == ApiKey.account_id,
               or_(ApiKey.revoked_at.is_(None), ApiKey.revoked_at > at))
    ).one_or_none()
    if row is None:
        return None
    return Principal(row.account_id, row.id, row.prefix, frozenset(s for s in row.scopes.split(",") if s))


def sign_out(secret: str | None) -> None:
    """End the session for good; an unknown or ended session changes nothing."""
    if not secret or not isinstance(secret, str) or len(secret) > 100:
        return
    with unit_of_work() as uow:
        ended = uow.session.execute(
            update(DashboardSession).where(DashboardSession.id == _digest(secret), DashboardSession.ended_at.is_(None))
            .values(ended_at=now()).execution_options(synchronize_session=False)).rowcount
    if ended:
        log.info("dashboard session ended")
