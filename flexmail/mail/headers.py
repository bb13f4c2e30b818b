"""The RFC 2369 / RFC 8058 unsubscribe headers: built, checked and folded in this one place.

``List-Unsubscribe: <https://...>, <mailto:...>`` (the web URI first: clients take the
leftmost they support, and RFC 8058 one-click needs the HTTPS one) and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``, byte-exact.

Python's email package would RFC 2047-encode a long ``List-Unsubscribe`` value
(``=?utf-8?q?=3Chttps...``) whenever a URI does not fit its line length, and mail clients
then show no unsubscribe button (standards K1/B2). So the value goes into the message as a
``FoldedHeader``: the policy writes it exactly as folded here, only at the space after a
comma, never inside a URI, every line at most 998 octets (B3).
"""

from __future__ import annotations

import re
from urllib.parse import quote

LIST_UNSUBSCRIBE = "List-Unsubscribe"
LIST_UNSUBSCRIBE_POST = "List-Unsubscribe-Post"
#: The only value RFC 8058 defines; receivers compare it byte for byte.
ONE_CLICK = "List-Unsubscribe=One-Click"
#: RFC 5322 2.1.1: lines MUST be at most 998 octets and SHOULD be at most 78.
MAX_LINE = 998
SOFT_LINE = 78

#: Characters a URI may use here (RFC 3986 unreserved, reserved and %), less the comma,
#: which separates the URIs of the field, so a URI is never cut by a list parser (B1, B4).
_URI = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+;=%]+")


class FoldedHeader(str):
    """A header value the email package writes exactly as folded here.

    ``EmailPolicy`` keeps a value that has a ``name`` as it is (``header_store_parse``) and
    serialises it with the value's own ``fold(policy=...)``. As a ``str`` it is the unfolded
    value, which is what reading the header back gives.
    """

    name: str
    lines: tuple[str, ...]

    def __new__(cls, name: str, value: str, lines: list[str]):
        header = super().__new__(cls, value)
        header.name = name
        header.lines = tuple(lines)
        return header

    def fold(self, *, policy) -> str:
        return policy.linesep.join(self.lines) + policy.linesep


def mailto_uri(address: str, *, subject: str = "unsubscribe") -> str:
    """``mailto:ADDRESS?subject=...`` with RFC 6068 percent-encoding of what needs it (B5)."""
    local, _, domain = address.rpartition("@")
    return f"mailto:{quote(local, safe='')}@{quote(domain, safe='')}?subject={quote(subject, safe='')}"


def fold_uri_list(name: str, uris: list[str]) -> list[str]:
    """The physical lines of ``name: <uri>, <uri>``, breaking only after a comma.

    Raises ``ValueError`` for a URI with characters that would need quoting in a header,
    or one so long that its line would pass 998 octets (no legal fold exists then).
    """
    if not uris:
        raise ValueError(f"{name} needs at least one URI")
    for uri in uris:
        if not _URI.fullmatch(uri) or not uri.isascii():
            raise ValueError(f"{name}: a URI contains characters not allowed in the header")
    items = [f"<{uri}>" for uri in uris]
    lines = [f"{name}: {items[0]}"]
    for item in items[1:]:
        lines[-1] += ","
        if len(lines[-1]) + 1 + len(item) <= SOFT_LINE:
            lines[-1] += " " + item
        else:
            lines.append(" " + item)
    if any(len(line.encode()) > MAX_LINE for line in lines):
        raise ValueError(f"{name}: a URI is too long for one header line (998 octets)")
    return lines


def list_unsubscribe_headers(https_url: str, mailto: str | None = None) -> dict[str, str]:
    """The two headers for one recipient of one message, ready for ``compose(extra_headers=)``.

    ``https_url`` is the one-click URL (it must be ``https:`` in production, RFC 8058 3.1;
    ``http:`` is accepted for local runs), ``mailto`` an address such as
    ``unsub-TOKEN@host`` or ``None``.
    """
    if not https_url.startswith(("https://", "http://")):
        raise ValueError("the one-click URI must be an https URL")
    uris = [https_url] + ([mailto_uri(mailto)] if mailto else [])
    lines = fold_uri_list(LIST_UNSUBSCRIBE, uris)
    value = ", ".join(f"<{uri}>" for uri in uris)
    return {
        LIST_UNSUBSCRIBE: FoldedHeader(LIST_UNSUBSCRIBE, value, lines),
        LIST_UNSUBSCRIBE_POST: ONE_CLICK,
    }
