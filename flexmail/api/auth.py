"""Bearer keys: who is calling, and may they do this?"""

from __future__ import annotations

from functools import wraps

from flask import g, request

from flexmail.services.accounts import Principal, authenticate
from flexmail.services.errors import FlexmailError, Forbidden


class Unauthorized(FlexmailError):
    code = "unauthorized"
    status = 401
    headers = [("WWW-Authenticate", 'Bearer realm="flexmail"')]


def current_principal() -> Principal:
    return g.principal


def require_scope(scope: str):
    """Decorator for views: a valid key with ``scope`` (admin implies every scope)."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            kind, _, key = header.partition(" ")
            principal = authenticate(key.strip()) if kind.lower() == "bearer" else None
            if principal is None:
                raise Unauthorized("A valid API key is required: Authorization: Bearer <key>.")
            if scope not in principal.scopes and "admin" not in principal.scopes:
                raise Forbidden(f"This key lacks the '{scope}' scope.")
            g.principal = principal
            return view(*args, **kwargs)

        return wrapper

    return decorator
