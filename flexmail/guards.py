"""Request guards of the web layer: CSRF for our own forms and per-IP rate limits.

Kept apart from ``extensions`` so that views can use them without reaching the database
session (an import-linter contract forbids ``api`` and ``public`` to import ``extensions``).
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app
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
