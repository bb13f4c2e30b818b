"""Sealed (encrypted and authenticated) blobs for data that must not be readable in transit.

itsdangerous tokens are signed, not encrypted (standards K6): fine for ids, wrong for an
address. A forward to a friend has to carry the friend's address through the broker, and
the friend's "never send me forwards" link has to name the friend without naming the
address; both use a sealed blob instead: AES-256-GCM under a key derived per purpose
(HKDF-SHA256) from each of FLEXMAIL_SECRET_KEYS. The newest key seals, every listed key
opens (rotation), a random 96-bit nonce makes two seals of the same data unrelated, and the
purpose is bound as associated data, so a blob made for one use is refused by every other.

Layout (then base64url without padding): version byte, 12-byte nonce, ciphertext with the
16-byte GCM tag.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x01"
NONCE_BYTES = 12
TAG_BYTES = 16
#: Longest text ``open`` looks at: a broker message holds one address, a 64-character name
#: and a 512-character note, far below this.
MAX_SEALED_LENGTH = 16_384


class SealPurpose(enum.StrEnum):
    #: A forward-to-a-friend mail in the broker: friend address, forwarder's name and note.
    FORWARD_MESSAGE = "forward-message"
    #: The friend's "never receive forwards" link: the keyed hash of the friend's address.
    FORWARD_OPT_OUT = "forward-opt-out"


class SealError(Exception):
    """The blob is not one of ours for this purpose (tampered, truncated, unknown key).

    The message is fixed: it never repeats any part of the blob.
    """

    def __init__(self):
        super().__init__("sealed data could not be opened")


def _derive(secret: str, purpose: SealPurpose) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"flexmail.sealed",
               info=f"flexmail.sealed.{purpose.value}".encode()).derive(secret.encode())
    return AESGCM(key)


@dataclass(frozen=True)
class Sealer:
    """Seals with the newest secret, opens with any listed one (newest first, as configured)."""

    secret_keys: tuple[str, ...]
    _ciphers: dict = field(default_factory=dict, compare=False, repr=False)

    def _cipher(self, secret: str, purpose: SealPurpose) -> AESGCM:
        cached = self._ciphers.get((secret, purpose))
        if cached is None:
            cached = self._ciphers[(secret, purpose)] = _derive(secret, purpose)
        return cached

    def seal(self, purpose: SealPurpose, data: bytes) -> str:
        """A URL-safe text that only ``open`` with the same purpose and a listed key can read."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._cipher(self.secret_keys[0], purpose).encrypt(nonce, data, purpose.value.encode())
        return base64.urlsafe_b64encode(VERSION + nonce + sealed).decode().rstrip("=")

    def open(self, purpose: SealPurpose, text: str) -> bytes:
        """The sealed bytes, or ``SealError`` for anything that is not a genuine blob."""
        if not isinstance(text, str) or not 0 < len(text) <= MAX_SEALED_LENGTH or not text.isascii():
            raise SealError()
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise SealError() from None
        if len(raw) < 1 + NONCE_BYTES + TAG_BYTES or raw[:1] != VERSION:
            raise SealError()
        nonce, sealed = raw[1:1 + NONCE_BYTES], raw[1 + NONCE_BYTES:]
        for secret in self.secret_keys:
            try:
                return self._cipher(secret, purpose).decrypt(nonce, sealed, purpose.value.encode())
            except InvalidTag:
                continue
        raise SealError()
