"""Signed, purpose-bound tokens for public links.

itsdangerous signs, it does not encrypt: payloads are readable base64, so they hold only
opaque integer ids, never an address. Each purpose has its own salt, so a token made for
one page is refused by every other.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from itsdangerous import BadData, BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer


class Purpose(enum.StrEnum):
    CONFIRM = "confirm"
    CANCEL = "cancel"  # "this was not me"
    UNSUBSCRIBE = "unsubscribe"
    FORWARD = "forward"


class TokenError(Exception):
    """The token is unusable. ``kind`` is ``invalid`` or ``expired``."""

    def __init__(self, kind: str, payload=None):
        super().__init__(kind)
        self.kind = kind
        self.payload = payload


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Signer:
    """Signs with the newest key and verifies against every listed key (rotation).

    ``now`` is the clock for timestamps and expiry, so tests can move time.
    """

    secret_keys: tuple[str, ...]  # newest first, as in FLEXMAIL_SECRET_KEYS
    now: Callable[[], dt.datetime] = field(default=_utcnow, compare=False)

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        now = self.now

        class ClockSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(now().timestamp())

        # itsdangerous signs with the *last* key of the list and tries all of them.
        return URLSafeTimedSerializer(
            list(reversed(self.secret_keys)), salt=f"flexmail.{purpose.value}", signer=ClockSigner
        )

    def dumps(self, purpose: Purpose, ids: list[int]) -> str:
        if not all(isinstance(i, int) for i in ids):
            raise TypeError("tokens carry integer ids only")
        return self._serializer(purpose).dumps(ids)

    def loads(self, purpose: Purpose, token: str, *, max_age: int | None = None) -> list[int]:
        """Return the ids, or raise ``TokenError`` (expired tokens still say whose they were)."""
        serializer = self._serializer(purpose)
        try:
            ids = serializer.loads(token, max_age=max_age)
        except SignatureExpired as exc:
            raise TokenError("expired", _ids(exc.payload, serializer)) from None
        except (BadSignature, BadData, UnicodeError, ValueError):
            raise TokenError("invalid") from None
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise TokenError("invalid")
        return ids


def _ids(payload, serializer):
    """Decode the (correctly signed) payload of an expired token."""
    try:
        ids = serializer.load_payload(payload)
    except BadData:
        return None
    return ids if isinstance(ids, list) else None
