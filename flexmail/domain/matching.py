"""The keys suppression entries are matched on, and normalisation fast enough for bulk checks.

Every key is the keyed HMAC-SHA256 of a case-folded form (``addresses.address_hash``): of the
normalised address for an address entry, of ``@`` plus the normalised domain for a domain
entry. An address always has a local part, so the two kinds never collide and one index
serves both.

``Normalizer`` returns exactly what ``addresses.normalize`` returns, only faster for lists:
an ASCII dot-atom local part needs no Unicode work, so only the domain goes through
email-validator, once per distinct domain. Anything else (non-ASCII, quoted, odd lengths,
every error) takes the full path, so reasons and results cannot differ.
"""

from __future__ import annotations

import hashlib
import re

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from flexmail.domain.addresses import MAX_ADDRESS_OCTETS, MAX_LOCAL_OCTETS, Address, InvalidAddress, normalize

#: RFC 5322 dot-atom with ASCII atext only: the same character set email-validator uses.
_ATEXT = r"A-Za-z0-9_!#$%&'*+\-/=?^`{|}~"
_DOT_ATOM_ASCII = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*\Z")
#: One LDH label (RFC 952/1123): letters, digits, inner hyphens, at most 63 octets.
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
#: email-validator lower-cases these local parts (RFC 2142 role names).
_ROLE_NAMES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
_DOMAIN_CACHE_LIMIT = 50_000
_SHA256_BLOCK = 64
_UNKNOWN = object()


class Normalizer:
    """``normalizer(raw) -> Address`` (or ``InvalidAddress``), memoising domain validation.

    Use one per bulk operation; it is not shared between threads.
    """

    def __init__(self, *, test_environment: bool = False):
        self.test_environment = test_environment
        #: raw domain -> (normalised domain, ASCII domain), or None when invalid.
        self._domains: dict[str, tuple[str, str] | None] = {}

    def __call__(self, raw) -> Address:
        fast = self._fast(raw)
        if fast is not None:
            return Address(*fast)
        return normalize(raw, test_environment=self.test_environment)

    def normalized(self, raw) -> str:
        """Only the normalised form (what bulk matching needs), or ``InvalidAddress``."""
        fast = self._fast(raw)
        if fast is not None:
            return fast[0]
        return normalize(raw, test_environment=self.test_environment).normalized

    def _fast(self, raw) -> tuple[str, str, bool] | None:
        """(normalised, ASCII form, needs SMTPUTF8) for the common case, or None."""
        if type(raw) is not str or not raw.isascii():
            return None
        candidate = raw.strip(" ")
        local, at, domain = candidate.rpartition("@")
        if (not at or len(local) > MAX_LOCAL_OCTETS or len(candidate) > MAX_ADDRESS_OCTETS
                or not _DOT_ATOM_ASCII.match(local) or local.lower() in _ROLE_NAMES):
            return None
        known = self._domains.get(domain, _UNKNOWN)
        if known is _UNKNOWN:
            known = self._domain(domain)
        if known is None:
            return None
        normalized_domain, ascii_domain = known
        normalized = local + "@" + normalized_domain
        if normalized_domain is ascii_domain:  # an ASCII domain: one form, octets = characters
            return (normalized, normalized, False) if len(normalized) <= MAX_ADDRESS_OCTETS else None
        ascii_email = local + "@" + ascii_domain
        if len(ascii_email) > MAX_ADDRESS_OCTETS or len(normalized.encode()) > MAX_ADDRESS_OCTETS:
            return None
        return normalized, ascii_email, False

    def _domain(self, domain: str) -> tuple[str, str] | None:
        try:
            return self._domains[domain]
        except KeyError:
            pass
        if len(self._domains) >= _DOMAIN_CACHE_LIMIT:
            self._domains.clear()
        plain = self._plain_domain(domain)
        if plain is not None:
            self._domains[domain] = (plain, plain)
            return self._domains[domain]
        try:
            probe = normalize(f"a@{domain}", test_environment=self.test_environment)
        except InvalidAddress:
            known = None
        else:
            known = (probe.normalized[2:], (probe.ascii_email or probe.normalized)[2:])
        self._domains[domain] = known
        return known

    def _plain_domain(self, domain: str) -> str | None:
        """The common case without email-validator: an ASCII LDH domain that is not special-use
        is valid and normalises to its lower case (what UTS-46 mapping does to ASCII). Any
        other domain returns None and takes the full path."""
        folded = domain.lower()
        labels = folded.split(".")
        # Two or more labels, the last ending in a letter (every TLD does); "--" means
        # Punycode or a reserved R-LDH label, which email-validator decides.
        if (len(folded) > 253 or len(labels) < 2 or "--" in folded or not "a" <= folded[-1] <= "z"
                or not all(_LDH_LABEL.match(label) for label in labels)):
            return None
        for special in SPECIAL_USE_DOMAIN_NAMES:
            if (folded == special or folded.endswith("." + special)) and not (
                    special == "test" and self.test_environment):
                return None
        return folded


def normalize_domain(raw: str, *, test_environment: bool = False) -> str:
    """``Example.COM``, ``@example.com`` or ``xn--bcher-kva.de`` -> the normalised domain.

    A domain is valid when an address at it would be (same rules as ``normalize``).
    """
    if not isinstance(raw, str):
        raise InvalidAddress("The domain must be a string.")
    candidate = raw.strip(" ")
    candidate = candidate[1:] if candidate.startswith("@") else candidate
    if not candidate or "@" in candidate:
        raise InvalidAddress("Give a domain such as example.com, without a local part.")
    try:
        return normalize(f"a@{candidate}", test_environment=test_environment).normalized[2:]
    except InvalidAddress as exc:
        raise InvalidAddress(exc.reason.replace("after the @-sign", "in the domain")) from None


def domain_of(normalized: str) -> str:
    return normalized.rpartition("@")[2]


class Hasher:
    """Keyed hashes of addresses and domains; the same values as ``addresses.address_hash``.

    HMAC-SHA256 (RFC 2104) with the inner and outer key pads hashed once: a bulk check hashes
    100,000 addresses, and ``hmac.digest`` would redo the key schedule for each.
    """

    def __init__(self, pepper: str):
        key = pepper.encode()
        if len(key) > _SHA256_BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        self._domains: dict[str, str] = {}

    def address(self, normalized: str) -> str:
        inner = self._inner.copy()
        inner.update(normalized.casefold().encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def domain(self, domain: str) -> str:
        try:
            return self._domains[domain]
        except KeyError:
            pass
        if len(self._domains) >= _DOMAIN_CACHE_LIMIT:
            self._domains.clear()
        value = self._domains[domain] = self.address("@" + domain)
        return value

    def keys(self, normalized: str) -> tuple[str, str]:
        """(address key, domain key) of a normalised address."""
        return self.address(normalized), self.domain(domain_of(normalized))
