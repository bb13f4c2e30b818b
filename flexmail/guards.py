"""Request guards of the web layer: CSRF for our own forms and per-IP rate limits.

Kept apart from ``extensions`` so that views can use them without reaching the database
session (an import-linter contract forbids ``api`` and ``public`` to import ``extensions``).
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect


def hashed_remote_address() -> str:
    """The rate-limit key of the client: a keyed hash of its IP, never the IP itself, so
    the limiter's storage (Redis) holds no client address in clear.

    ProxyFix (FLEXMAIL_TRUSTED_PROXIES hops) sets remote_addr, so this is the client IP.
    The key is derived from HASH_KEY under its own label, so these values cannot be
    compared with the address hashes in the database.
    """
    key = hmac.new(str(current_app.config["HASH_KEY"]).encode(), b"flexmail rate-limit key", hashlib.sha256).digest()
    ip = get_remote_address() or ""
    return "ip-" + hmac.new(key, ip.encode(), hashlib.sha256).hexdigest()[:32]


csrf = CSRFProtect()
limiter = Limiter(key_func=hashed_remote_address, default_limits=[])


#: Endpoints with no per-IP limit of their own, on the hot paths: the one-click and page
#: unsubscribe POST (never limited: providers post from a few shared addresses), the confirm
#: POST and the API signup (per key, ``api.limits``). Flask-Limiter would otherwise resolve
#: its (empty) limits for them on every request.
UNLIMITED_ENDPOINTS = frozenset({"public.unsubscribe_submit", "public.confirm_submit",
                                 "subscriptions.ListSubscriptions"})


@limiter.request_filter
def _unlimited() -> bool:
    return request.endpoint in UNLIMITED_ENDPOINTS
