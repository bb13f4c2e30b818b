"""Ed25519 signatures on ledger heads and export manifests.

Public-key signatures let an auditor check a head or an export with the public key
alone (GET /api/v1/proof/key), without any secret of ours.
"""

from __future__ import annotations

import base64

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from flexmail.domain.ledger import canonical
from flexmail.services.platform.context import setting


def _private() -> Ed25519PrivateKey:
    seed = base64.urlsafe_b64decode(setting("SIGNING_KEY") + "==")
    return Ed25519PrivateKey.from_private_bytes(seed[:32])


def public_key() -> str:
    """The raw public key, base64url; its first 16 characters name it (``key_id``)."""
    raw = _private().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sign(document: dict) -> dict:
    """Return ``document`` with ``key_id`` and ``signature`` over its canonical JSON."""
    body = {**document, "key_id": public_key()[:16]}
    signature = _private().sign(canonical(body))
    return {**body, "signature": base64.urlsafe_b64encode(signature).decode().rstrip("=")}


def verify(document: dict, public: str | None = None) -> bool:
    """Check a signed document against our public key (or the one given)."""
    body = {k: v for k, v in document.items() if k != "signature"}
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode((public or public_key()) + "=="))
        key.verify(base64.urlsafe_b64decode(document.get("signature", "") + "=="), canonical(body))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
