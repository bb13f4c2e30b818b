"""Which webhook endpoint URLs we may call (SSRF): the rule, without any network access.

A URL must be ``http`` or ``https`` with a host and no user info; every address its host
resolves to must be globally routable (not loopback, private, link-local, shared, reserved,
multicast or unspecified; an IPv4 address inside IPv6 is judged as IPv4). The operator may
allow non-global addresses (``FLEXMAIL_WEBHOOKS_ALLOW_PRIVATE``) for a receiver on their
own network, and the tests do.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


class RefusedUrl(ValueError):
    """``reason`` is for people and never contains more than the URL's host."""


def parse_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an endpoint URL, or ``RefusedUrl``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RefusedUrl("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedUrl("must be an http or https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise RefusedUrl("must not contain a user name or password")
    if parts.fragment:
        raise RefusedUrl("must not contain a fragment")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def is_global(address: str) -> bool:
    """True when ``address`` (an IP literal) is globally routable."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            return is_global(str(inner))
    return ip.is_global and not ip.is_multicast and not ip.is_reserved and not ip.is_unspecified


def check_addresses(addresses: list[str], *, allow_private: bool) -> None:
    """Refuse unless there is at least one address and (without ``allow_private``) all are global."""
    if not addresses:
        raise RefusedUrl("the host does not resolve")
    if not allow_private and not all(is_global(a) for a in addresses):
        raise RefusedUrl("the host resolves to a loopback, private, link-local or otherwise non-global address")
