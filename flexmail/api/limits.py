"""Per-key request limits of the API, announced in ``RateLimit-*`` headers.

The headers follow the IETF draft (draft-ietf-httpapi-ratelimit-headers): ``RateLimit-Limit``
(requests in the window), ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds until the
window starts afresh), for the tightest of the configured limits. A request over a limit is
429 ``rate_limited`` with ``Retry-After``. Counters live in Flask-Limiter's storage (Redis in
production, memory on the embedded default) under the key's id, never the key itself. When
that storage is unreachable the request goes through: a broken counter must not stop an
opt-out.
"""

from __future__ import annotations

import logging
import math
import time

from flask import current_app, g
from limits import parse_many

from flexmail.guards import limiter
from flexmail.services.platform.errors import RateLimited

log = logging.getLogger(__name__)


def check_key_limit(key_id: int) -> None:
    """Count this request against the key's limits; raise 429 when one is used up."""
    spec = current_app.config["API_RATE_LIMIT"]
    if not spec:
        return
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX", "")
    identity = f"{prefix}api-key:{key_id}"
    try:
        items = parse_many(spec)
        strategy = limiter.limiter
        allowed = True
        tightest = None
        for item in items:
            if not strategy.hit(item, identity):
                allowed = False
            stats = strategy.get_window_stats(item, identity)
            if tightest is None or stats.remaining < tightest[1].remaining:
                tightest = (item, stats)
    except Exception as exc:
        log.warning("rate-limit storage unavailable (%s); request let through", type(exc).__name__)
        return
    item, stats = tightest
    reset = max(0, math.ceil(stats.reset_time - time.time()))
    g.rate_limit_headers = {"RateLimit-Limit": str(item.amount), "RateLimit-Remaining": str(stats.remaining),
                            "RateLimit-Reset": str(reset)}
    if not allowed:
        raise RateLimited(f"Rate limit of {item} for this key exceeded.", retry_after=max(1, reset))


def add_headers(response):
    """after_request: put the key's limit state on every API answer (errors included)."""
    for name, value in (getattr(g, "rate_limit_headers", None) or {}).items():
        response.headers[name] = value
    return response
