"""Address validation, normalisation and the keyed hash every match is made on."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

MAX_ADDRESS_OCTETS = 254  # RFC 5321 path limit (256) less the angle brackets
MAX_LOCAL_OCTETS = 64  # RFC 5321 4.5.3.1.1


class InvalidAddress(ValueError):
    """The address cannot be mailed; ``reason`` says why without repeating the address."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Address:
    """A validated address: ``normalized`` is stored and mailed, ``key`` only matches."""

    normalized: str
    ascii_email: str | None
    smtputf8: bool

    @property
    def key(self) -> str:
        """The matching form: case-folded whole address. Never used to send (RFC 5321 2.4)."""
        return match_key(self.normalized)


def normalize(raw: str, *, test_environment: bool = False) -> Address:
    """Validate ``raw`` with email-validator (no DNS) and return its normalised form.

    Local-part case is kept, the domain is lower-cased and IDNA-decoded, Unicode is NFC.
    Addresses longer than 254 octets, quoted local parts, domain literals, special-use
    domains and anything with whitespace or control characters are refused.
    """
    if not isinstance(raw, str):
        raise InvalidAddress("The address must be a string.")
    # Control characters are refused before any trimming: a CR/LF is header injection,
    # not whitespace to tidy away (standards I7).
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise InvalidAddress("The address contains a line break or control character.")
    candidate = raw.strip(" ")
    if len(candidate.encode("utf-8", "surrogatepass")) > MAX_ADDRESS_OCTETS:
        raise InvalidAddress("The address is longer than 254 octets.")
    try:
        result = validate_email(
            candidate,
            check_deliverability=False,  # no DNS in request paths (standards I2)
            test_environment=test_environment,
            strict=True,  # enforce the 64-octet local part (standards I1, K5)
        )
    except EmailNotValidError as exc:
        raise InvalidAddress(_scrub(str(exc), candidate)) from None
    except UnicodeError:
        raise InvalidAddress("The address is not valid Unicode.") from None
    if len(result.normalized.encode("utf-8")) > MAX_ADDRESS_OCTETS:
        raise InvalidAddress("The address is longer than 254 octets.")
    if len(result.local_part.encode("utf-8")) > MAX_LOCAL_OCTETS:
        raise InvalidAddress("The part before the @-sign is longer than 64 octets.")
    return Address(result.normalized, result.ascii_email, bool(result.smtputf8))


def _scrub(message: str, address: str) -> str:
    """email-validator sometimes quotes parts of the input; errors must not echo it."""
    local, _, domain = address.rpartition("@")
    for part in (address, local, domain):
        if part and len(part) > 2:
            message = message.replace(part, "…")
    return message


def match_key(normalized: str) -> str:
    """Case-insensitive matching key for dedupe and suppression (no dot or +tag folding)."""
    return normalized.casefold()


def address_hash(normalized: str, pepper: str) -> str:
    """Keyed HMAC-SHA256 of the matching key: lets us match without keeping the address."""
    return hmac.new(pepper.encode(), match_key(normalized).encode(), hashlib.sha256).hexdigest()
