"""What services need from the running app, without reaching for flask.request."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from flask import current_app

from flexmail import clock
from flexmail.domain.addresses import Address, InvalidAddress, address_hash, normalize
from flexmail.domain.tokens import Signer
from flexmail.services.platform.errors import ValidationFailed

MAX_USER_AGENT = 1000


@dataclass(frozen=True)
class RequestMeta:
    """Facts about who caused an event. ``ip`` is the person's (or provider's) address."""

    ip: str | None = None
    user_agent: str | None = None
    at: object = field(default_factory=clock.now)

    @classmethod
    def checked(cls, ip: str | None, user_agent: str | None) -> RequestMeta:
        """Validate caller-supplied facts: an IP must parse, a user agent is length-capped."""
        if ip:
            try:
                ip = str(ipaddress.ip_address(ip))
            except ValueError:
                raise ValidationFailed("Invalid input.", fields={"ip": ["Not a valid IP address."]}) from None
        ua = (user_agent or "").replace("\r", " ").replace("\n", " ").strip()[:MAX_USER_AGENT] or None
        return cls(ip or None, ua)


def signer() -> Signer:
    return Signer(tuple(current_app.config["SECRET_KEYS"]), now=clock.now)


def hash_key() -> str:
    return current_app.config["HASH_KEY"]


def setting(name: str):
    return current_app.config[name]


def parse_address(raw, *, field_name: str = "email") -> Address:
    """Normalise an address or raise a 422 whose message never echoes the address."""
    try:
        return normalize(raw, test_environment=current_app.config.get("EMAIL_TEST_ENVIRONMENT", False))
    except InvalidAddress as exc:
        raise ValidationFailed("Invalid input.", fields={field_name: [exc.reason]}) from None


def hash_address(address: Address | str) -> str:
    normalized = address.normalized if isinstance(address, Address) else address
    return address_hash(normalized, hash_key())
