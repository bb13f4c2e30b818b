"""Signed, purpose-bound tokens for public links.

itsdangerous signs, it does not encrypt: payloads are readable base64, so they hold only
opaque integer ids, never an address. Each purpose has its own salt, so a token made for
one page is refused by every other.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from itsdangerous import (
    BadData,
    BadSignature,
    SignatureExpired,
    TimestampSigner,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)


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

    # Untimed tokens: links that must work for ever (unsubscribe, standards A9). They
    # carry no timestamp, which also keeps them short enough for a header line (K1/B3).

    def _untimed_serializer(self, purpose: Purpose) -> URLSafeSerializer:
        # A salt of its own: a timed token of the same purpose never verifies here.
        return URLSafeSerializer(
            list(reversed(self.secret_keys)), salt=f"flexmail.{purpose.value}.untimed"
        )

    def dumps_untimed(self, purpose: Purpose, ids: list[int]) -> str:
        """A URL-safe token of ``ids`` that never expires (about 40 characters for one id)."""
        _check_ids(ids)
        return self._untimed_serializer(purpose).dumps(ids)

    def loads_untimed(self, purpose: Purpose, token: str) -> list[int]:
        """Return the ids of an untimed token signed with any listed key, or raise ``TokenError``."""
        try:
            ids = self._untimed_serializer(purpose).loads(token)
        except (BadSignature, BadData, UnicodeError, ValueError, TypeError):
            raise TokenError("invalid") from None
        if not isinstance(ids, list) or not ids or not all(type(i) is int and i >= 0 for i in ids):
            raise TokenError("invalid")
        return ids

    def dumps_compact(self, purpose: Purpose, ids: list[int]) -> str:
        """A short, case-insensitive, untimed token for places that are not URLs.

        Made for the local part of a mailto address (``unsub-<token>@host``), where the
        base64url of an itsdangerous token does not survive: local parts are limited to 64
        octets (RFC 5321 4.5.3.1.1) and relays and people may change their case (RFC 5321
        2.4 only asks them not to). So the token is lower-case base32 (``a-z2-7``) of the
        ids as unsigned LEB128 varints followed by an 80-bit truncated HMAC-SHA256 under a
        per-purpose key derived from the newest secret; every listed key verifies
        (rotation). One id below a billion gives at most 23 characters, two such ids 32,
        the largest possible (two 63-bit ids) 45. 80 bits are far beyond online guessing,
        and the payload, like every token's, holds only ids.
        """
        _check_ids(ids)
        if not 1 <= len(ids) <= MAX_COMPACT_IDS or any(i >= 2**63 for i in ids):
            raise ValueError("compact tokens carry 1 to 2 ids below 2**63")
        payload = b"".join(_varint(i) for i in ids)
        mac = _compact_mac(self.secret_keys[0], purpose, payload)
        return base64.b32encode(payload + mac).decode().rstrip("=").lower()

    def loads_compact(self, purpose: Purpose, token: str) -> list[int]:
        """Return the ids of a compact token (any letter case) or raise ``TokenError``."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_COMPACT_LENGTH or not token.isascii():
            raise TokenError("invalid")
        text = token.upper()
        try:
            raw = base64.b32decode(text + "=" * (-len(text) % 8))
        except (binascii.Error, ValueError):
            raise TokenError("invalid") from None
        # One spelling per token (apart from case): unused low bits of the last character
        # must be zero, so no two texts stand for the same token.
        if len(raw) <= COMPACT_MAC_BYTES or base64.b32encode(raw).decode().rstrip("=") != text:
            raise TokenError("invalid")
        payload, mac = raw[:-COMPACT_MAC_BYTES], raw[-COMPACT_MAC_BYTES:]
        if not any(hmac.compare_digest(mac, _compact_mac(key, purpose, payload)) for key in self.secret_keys):
            raise TokenError("invalid")
        ids = _read_varints(payload)
        if ids is None or not 1 <= len(ids) <= MAX_COMPACT_IDS:
            raise TokenError("invalid")
        return ids


def _ids(payload, serializer):
    """Decode the (correctly signed) payload of an expired token."""
    try:
        ids = serializer.load_payload(payload)
    except BadData:
        return None
    return ids if isinstance(ids, list) else None


#: Compact tokens: truncated MAC length, most ids, longest accepted text.
COMPACT_MAC_BYTES = 10
MAX_COMPACT_IDS = 2
MAX_COMPACT_LENGTH = 48


def _check_ids(ids) -> None:
    if not isinstance(ids, list) or not all(type(i) is int and i >= 0 for i in ids):
        raise TypeError("tokens carry non-negative integer ids only")


def _compact_mac(secret: str, purpose: Purpose, payload: bytes) -> bytes:
    key = hmac.new(secret.encode(), f"flexmail.{purpose.value}.compact".encode(), hashlib.sha256).digest()
    return hmac.new(key, payload, hashlib.sha256).digest()[:COMPACT_MAC_BYTES]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varints(data: bytes) -> list[int] | None:
    """Decode LEB128 varints; ``None`` for a truncated or non-canonical encoding."""
    ids, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte & 0x80:
            if shift > 63:
                return None
            continue
        if byte == 0 and shift > 7:  # a padded zero group: one value, two spellings
            return None
        ids.append(value)
        value, shift = 0, 0
    return ids if shift == 0 else None
