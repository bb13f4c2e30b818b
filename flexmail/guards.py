"""Request guards of the web layer: CSRF for our own forms and per-IP rate limits.

Kept apart from ``extensions`` so that views can use them without reaching the database
session (an import-linter contract forbids ``api`` and ``public`` to import ``extensions``).
"""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
# ProxyFix (FLEXMAIL_TRUSTED_PROXIES hops) sets remote_addr, so this is the client IP.
limiter = Limiter(key_func=get_remote_address, default_limits=[])
