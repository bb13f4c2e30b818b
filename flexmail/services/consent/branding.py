"""Per-list branding and identity: who sends, how to reach them, what their pages look like.

The logo is fetched once, when the marketer sets its URL, and stored: pages and mails show
it from our own ``/brand/<list_id>/logo``, so opening a token page never contacts a third
party (the token stays with us, and nobody learns who opened it). Only https, only the four
raster types, at most ``LOGO_MAX_BYTES``, and never from a private or loopback address
unless ``LOGO_FETCH_ALLOW_PRIVATE`` (tests) says so.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select

from flexmail.clock import now
from flexmail.domain.branding import LOGO_MAX_BYTES, BrandingError, check_accent, check_logo
from flexmail.domain.languages import choose
from flexmail.extensions import db
from flexmail.models import ListLogo, MailingList, Subscription
from flexmail.models.lists import logo_path
from flexmail.services.platform.context import parse_address, setting
from flexmail.services.platform.errors import ValidationFailed

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 10
MAX_POSTAL = 500
#: The fields of a list that make up its branding (the logo comes in as ``logo_url``).
FIELDS = ("accent_color", "postal_address", "contact_email", "privacy_url")


@dataclass(frozen=True)
class Brand:
    """What a page or mail shows about its sender. URLs are absolute only for mails."""

    list_id: int
    language: str
    list_name: str
    sender_name: str
    accent_color: str | None = None
    postal_address: str | None = None
    contact_email: str | None = None
    privacy_url: str | None = None
    #: Our URL of the stored logo (``/brand/<id>/logo?v=<hash>``), or ``None``.
    logo_path: str | None = None

    def logo_url(self, base: str = "") -> str | None:
        return f"{base}{self.logo_path}" if self.logo_path else None

    @property
    def css_path(self) -> str | None:
        return f"/brand/{self.list_id}.css?v={self.accent_color[1:]}" if self.accent_color else None


def _invalid(field: str, reason: str) -> ValidationFailed:
    return ValidationFailed("Invalid input.", fields={field: [reason]})


def clean_branding(values: dict) -> dict:
    """Validate branding fields given to the lists API; ``None`` clears a field."""
    out = {}
    for key in FIELDS:
        if key not in values:
            continue
        value = values[key]
        if value is None or (isinstance(value, str) and not value.strip()):
            out[key] = None
            continue
        value = value.strip()
        if key == "accent_color":
            try:
                value = check_accent(value)
            except BrandingError as exc:
                raise _invalid(key, exc.reason) from None
        elif key == "postal_address":
            if len(value) > MAX_POSTAL or "\0" in value:
                raise _invalid(key, f"At most {MAX_POSTAL} characters.")
            value = "\n".join(line.strip() for line in value.replace("\r\n", "\n").split("\n") if line.strip())
        elif key == "contact_email":
            value = parse_address(value, field_name=key).normalized
        elif key == "privacy_url":
            parts = urlsplit(value)
            if parts.scheme != "https" or not parts.hostname or len(value) > 2000 or any(c in value for c in "\r\n\0 "):
                raise _invalid(key, "An https URL.")
        out[key] = value
    return out


def _check_host(host: str, port: int) -> None:
    """Refuse a logo host that resolves to a private, loopback or link-local address (SSRF)."""
    if setting("LOGO_FETCH_ALLOW_PRIVATE"):
        return
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError:
        raise _invalid("logo_url", "The host name does not resolve.") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if not ip.is_global:
            raise _invalid("logo_url", "The host is not on the public internet.")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect could lead anywhere, past the host check


def fetch_logo(url: str) -> tuple[bytes, str]:
    """Download a logo once: https, no redirect, a raster image no larger than the limit."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or len(url) > 2000:
        raise _invalid("logo_url", "An https URL.")
    _check_host(parts.hostname, parts.port or 443)
    context = ssl.create_default_context(cafile=setting("LOGO_CA_FILE") or None)
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect())
    # The scheme was checked above: https only.
    request = urllib.request.Request(url, headers={"User-Agent": "Flexmail logo fetcher",  # noqa: S310
                                                   "Accept": "image/png,image/jpeg,image/gif,image/webp"})
    try:
        with opener.open(request, timeout=FETCH_TIMEOUT) as response:
            if response.status != 200:
                raise _invalid("logo_url", f"The server answered {response.status}.")
            data = response.read(LOGO_MAX_BYTES + 1)
            declared = response.headers.get("Content-Type")
    except urllib.error.HTTPError as exc:
        raise _invalid("logo_url", f"The server answered {exc.code}.") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.info("logo fetch failed (%s)", type(exc).__name__)
        raise _invalid("logo_url", "The logo could not be fetched.") from None
    try:
        return data, check_logo(data, declared)
    except BrandingError as exc:
        raise _invalid("logo_url", exc.reason) from None


def store_logo(session, list_id: int, url: str | None, fetched: tuple[bytes, str] | None) -> None:
    """Replace (or with ``url=None`` remove) a list's logo inside the caller's transaction."""
    row = session.get(ListLogo, list_id)
    if url is None:
        if row is not None:
            session.delete(row)
        return
    data, content_type = fetched
    if row is None:
        row = ListLogo(list_id=list_id)
        session.add(row)
    row.source_url, row.content_type, row.data = url, content_type, data
    row.sha256, row.fetched_at = hashlib.sha256(data).hexdigest(), now()


def logo_source(list_id: int) -> str | None:
    row = db.session.get(ListLogo, list_id)
    return row.source_url if row else None


def get_logo(list_id: int) -> tuple[bytes, str, str] | None:
    """``(bytes, content type, sha256)`` of a list's stored logo, for its served URL."""
    row = db.session.get(ListLogo, list_id)
    return (row.data, row.content_type, row.sha256) if row is not None else None


def brand_of(lst: MailingList) -> Brand:
    """The branding of a list, for pages and mails."""
    return Brand(
        lst.id, choose(lst.language), lst.name, lst.sender_name, lst.accent_color, lst.postal_address,
        lst.contact_email, lst.privacy_url, lst.logo_path,
    )


def brand_of_row(row) -> Brand | None:
    """The branding read with a subscription by ``rows.brand_columns()``; ``None`` without it."""
    if getattr(row, "brand_id", None) is None:
        return None
    return Brand(
        row.brand_id, choose(row.brand_language), row.brand_name, row.brand_sender_name, row.brand_accent_color,
        row.brand_postal_address, row.brand_contact_email, row.brand_privacy_url,
        logo_path(row.brand_id, row.brand_logo_sha) if row.brand_logo_sha else None,
    )


def brand_for_subscription(subscription_id: int | None) -> Brand | None:
    """The branding of a subscription's list; ``None`` once the subscription is gone.

    One query (list and logo hash joined): every token page, the providers' one-click
    unsubscribe answer included, pays only this for its branding.
    """
    if subscription_id is None:
        return None
    row = db.session.execute(
        select(MailingList, ListLogo.sha256)
        .join(Subscription, Subscription.list_id == MailingList.id)
        .outerjoin(ListLogo, ListLogo.list_id == MailingList.id)
        .where(Subscription.id == subscription_id)
    ).first()
    if row is None:
        return None
    lst, sha = row
    return Brand(
        lst.id, choose(lst.language), lst.name, lst.sender_name, lst.accent_color, lst.postal_address,
        lst.contact_email, lst.privacy_url, logo_path(lst.id, sha) if sha else None,
    )


def accent_css(list_id: int) -> str | None:
    """The list's stylesheet: only the accent colour, already validated as ``#rrggbb``."""
    lst = db.session.get(MailingList, list_id)
    if lst is None or not lst.accent_color:
        return None
    return f":root {{ --accent: {lst.accent_color}; }}\n"
