"""Webhook signatures in the Standard Webhooks style (https://www.standardwebhooks.com).

Each delivery carries ``webhook-id`` (unique per message, the same on every retry),
``webhook-timestamp`` (Unix seconds) and ``webhook-signature``: space-separated
``v1,<base64 HMAC-SHA256>`` values over ``"{id}.{timestamp}.{body}"``. The key is the
endpoint's secret ``whsec_<base64>``, base64-decoded (Standard Webhooks' convention).
Several values appear during a secret rotation; one matching is enough.

``verify`` is the receiver's side, the same few lines the README shows; ``sign`` is ours.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)
#: Receivers should refuse deliveries whose timestamp is further than this from their clock.
TOLERANCE_SECONDS = 5 * 60


class InvalidSignature(ValueError):
    pass


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one delivery."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), content, hashlib.sha256).digest()).decode()


def verify(secret: str, headers, body: bytes, *, now: float | None = None,
           tolerance: int = TOLERANCE_SECONDS) -> None:
    """Raise ``InvalidSignature`` unless ``body`` was signed with ``secret`` recently."""
    msg_id, timestamp = headers["webhook-id"], int(headers["webhook-timestamp"])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise InvalidSignature("timestamp too far from now")
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1]
    for candidate in headers["webhook-signature"].split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return
    raise InvalidSignature("no matching v1 signature")
