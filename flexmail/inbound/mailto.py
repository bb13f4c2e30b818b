"""What a received message does: unsubscribe, when it is addressed to an unsubscribe address.

The envelope recipient is the authority (standards B6): ``unsub-<token>@<inbound domain>``
carries a signed token naming the subscription. From, Subject and body are ignored,
because people edit them and forwarding rewrites them. Mail to any other address is
refused before anything is written.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from flexmail.services.delivery import addressing
from flexmail.services.optout import spool, unsubscribe
from flexmail.services.platform.context import RequestMeta, setting
from flexmail.services.suppression import reports

log = logging.getLogger(__name__)

#: Headers in which a delivery agent names the envelope recipient, then the visible ones.
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")


class NotOurs(Exception):
    """No recipient of the message is an unsubscribe address of ours; nothing was done."""


class NoMessage(Exception):
    """The input is empty: there is no message to act on; nothing was done."""


@dataclass(frozen=True)
class Delivered:
    #: How many unsubscribe addresses the message was processed for.
    recipients: int


def is_report_address(address: str) -> bool:
    """``bounces@`` / ``abuse@`` (FLEXMAIL_REPORT_LOCALPARTS) at the inbound domain: where
    delivery status notifications (RFC 3464) and feedback reports (RFC 5965) arrive."""
    local, _, domain = address.strip().rpartition("@")
    return (domain.lower().rstrip(".") == addressing.inbound_domain()
            and local.lower() in {p.strip().lower() for p in setting("REPORT_LOCALPARTS").split(",")})


def is_ours(address: str) -> bool:
    """True for a genuine unsubscribe address (domain and signed token checked, no DB) or
    for one of our report addresses."""
    return unsubscribe.is_unsubscribe_address(address) or is_report_address(address)


def message_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def process(data: bytes, recipients: list[str]) -> Delivered:
    """Unsubscribe for each of ``recipients``, which the caller checked with ``is_ours``."""
    digest = message_digest(data)
    done = 0
    for address in recipients:
        if is_report_address(address):
            # A bounce or complaint: suppress the original recipient (issue 4). Not a report:
            # nothing happens, as for any mail to these addresses.
            reports.process_report(data)
            done += 1
        elif spool.unsubscribe_by_mailto(address, meta=RequestMeta(), message_sha256=digest):
            done += 1
    log.info("inbound unsubscribe message processed for %d recipient(s)", done)
    return Delivered(done)


def header_recipients(data: bytes) -> list[str]:
    """Addresses named in the message's recipient headers, in ``RECIPIENT_HEADERS`` order."""
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(data)
    found = []
    for name in RECIPIENT_HEADERS:
        for _, address in getaddresses([str(v) for v in headers.get_all(name, [])]):
            if address and address not in found:
                found.append(address)
    return found


def deliver(data: bytes, recipients: list[str] | None = None) -> Delivered:
    """Act on one message, as ``flask inbound deliver`` reads it from stdin.

    With ``recipients`` (the envelope recipients the MTA passes), every one of them must be
    an unsubscribe address, or nothing is done (``NotOurs``). Without, the recipient
    headers are searched and the unsubscribe addresses among them are used; other
    addresses there (a Cc to a friend) are ignored.
    """
    if not data.strip():
        raise NoMessage("no message on standard input")
    if recipients:
        if not all(is_ours(r) for r in recipients):
            raise NotOurs("a recipient is not an unsubscribe address of this service")
        chosen = list(dict.fromkeys(recipients))
    else:
        chosen = [r for r in header_recipients(data) if is_ours(r)]
        if not chosen:
            raise NotOurs("the message is not addressed to an unsubscribe address of this service")
    return process(data, chosen)
