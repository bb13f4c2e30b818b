"""Bearer keys: who is calling, and may they do this?"""

from __future__ import annotations

from functools import wraps

from flask import g, request

from flexmail.api.idempotency import run_idempotent
from flexmail.api.limits import check_key_limit
from flexmail.services.marketer.accounts import Principal, authenticate
from flexmail.services.marketer.api_keys import note_key_use
from flexmail.services.platform.errors import FlexmailError, Forbidden


class Unauthorized(FlexmailError):
    code = "unauthorized"
    status = 401
    headers = [("WWW-Authenticate", 'Bearer realm="flexmail"')]


def current_principal() -> Principal:
    return g.principal


def require_scope(scope: str):
    """Decorator for views: a valid key with ``scope`` (admin implies every scope).

    It also counts the request against the key's rate limit, records the key's use and
    runs POST and DELETE under their ``Idempotency-Key``. ``decorator.scope`` tells the
    OpenAPI description which scope an operation needs.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            kind, _, key = header.partition(" ")
            principal = authenticate(key.strip()) if kind.lower() == "bearer" else None
            if principal is None:
                raise Unauthorized("A valid API key is required: Authorization: Bearer <key>.")
            g.principal = principal
            check_key_limit(principal.key_id)
            note_key_use(principal.key_id, principal.key_prefix)
            if scope not in principal.scopes and "admin" not in principal.scopes:
                raise Forbidden(f"This key lacks the '{scope}' scope.")
            return run_idempotent(principal.account_id, view, *args, **kwargs)

        return wrapper

    decorator.scope = scope
    return decorator
