"""Bounce and complaint reports: RFC 3464 delivery status notifications and RFC 5965 (ARF)
feedback reports, read into what a suppression needs. Pure functions, no I/O.

- DSN (``multipart/report; report-type=delivery-status``): a recipient whose ``Action`` is
  ``failed`` with a ``5.x.x`` ``Status`` is a hard bounce. ``4.x.x`` (and ``delayed``,
  ``delivered``, ``relayed``, ``expanded``) is transient or good news: ignored.
  The recipient is ``Original-Recipient`` when given (the address we sent to), else
  ``Final-Recipient``.
- ARF (``multipart/report; report-type=feedback-report``): ``Feedback-Type`` ``abuse``,
  ``fraud`` or ``other`` is a complaint about the recipient: ``Original-Rcpt-To`` when
  given, else the ``To`` of the returned message. ``not-spam``, ``virus`` and
  ``auth-failure`` are not complaints by a recipient: ignored.

Both also give the original ``Message-ID`` (from the returned message or its headers),
which names our outbox row. Providers often redact the recipient; the Message-ID then is
the only way back to the subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email import message_from_bytes, message_from_string, policy
from email.message import Message
from email.utils import getaddresses

COMPLAINT_TYPES = frozenset({"abuse", "fraud", "other"})


@dataclass(frozen=True)
class Report:
    #: ``dsn`` or ``arf``.
    kind: str
    #: ``hard_bounce``, ``complaint``, or None when the report asks for nothing.
    reason: str | None
    #: Addresses to suppress, as written in the report (not validated here).
    recipients: tuple[str, ...] = ()
    #: ``<...>`` of the message the report is about, when it says.
    original_message_id: str | None = None
    #: Per recipient that was not taken: why (``"4.2.2 transient"``, ``"feedback-type not-spam"``).
    ignored: tuple[str, ...] = field(default_factory=tuple)


def parse_report(raw: bytes) -> Report | None:
    """Read a DSN or ARF report; ``None`` for any other message (or garbage)."""
    try:
        message = message_from_bytes(raw, policy=policy.compat32)
    except Exception:  # the email package is lenient; anything it raises is not a report
        return None
    if message.get_content_type() != "multipart/report" or not message.is_multipart():
        return None
    report_type = (message.get_param("report-type") or "").lower()
    if report_type == "delivery-status":
        return _dsn(message)
    if report_type == "feedback-report":
        return _arf(message)
    return None


def _parts(message: Message) -> list[Message]:
    payload = message.get_payload()
    return payload if isinstance(payload, list) else []


def _typed_address(value: str | None) -> str | None:
    """``rfc822; someone@example.com`` -> ``someone@example.com`` (other address types: None)."""
    if not value:
        return None
    kind, sep, address = str(value).partition(";")
    if not sep:
        kind, address = "rfc822", kind
    address = " ".join(address.split()).strip().strip("<>")
    return address if kind.strip().lower() == "rfc822" and address else None


def _message_id(value) -> str | None:
    if not value:
        return None
    text = " ".join(str(value).split())
    if not text:
        return None
    return text if text.startswith("<") else f"<{text.strip('<>')}>"


def _returned_headers(message: Message) -> Message | None:
    """The returned message (``message/rfc822``) or its headers (``text/rfc822-headers``)."""
    for part in _parts(message):
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                return inner[0]
        if ctype in ("text/rfc822-headers", "message/global-headers"):
            text = part.get_payload(decode=True) or b""
            return message_from_string(text.decode("utf-8", "replace"), policy=policy.compat32)
    return None


def _dsn(message: Message) -> Report:
    recipients, ignored = [], []
    for part in _parts(message):
        if part.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            blocks = [message_from_string(str(blocks), policy=policy.compat32)]
        for block in blocks[1:]:  # the first block is about the whole message
            address = _typed_address(block.get("Original-Recipient")) or _typed_address(block.get("Final-Recipient"))
            action = str(block.get("Action", "")).strip().lower()
            status = str(block.get("Status", "")).strip().split(" ")[0]
            if address is None:
                continue
            if action == "failed" and status.startswith("5."):
                recipients.append(address)
            else:
                ignored.append(f"{status or '?'} {action or '?'}")
    returned = _returned_headers(message)
    message_id = _message_id(returned.get("Message-ID")) if returned is not None else None
    return Report("dsn", "hard_bounce" if recipients else None, tuple(dict.fromkeys(recipients)), message_id,
                  tuple(ignored))


def _arf(message: Message) -> Report:
    fields = None
    for part in _parts(message):
        if part.get_content_type() == "message/feedback-report":
            inner = part.get_payload()
            fields = inner[0] if isinstance(inner, list) and inner else message_from_string(
                str(inner), policy=policy.compat32)
            break
    returned = _returned_headers(message)
    message_id = _message_id(returned.get("Message-ID")) if returned is not None else None
    feedback_type = str(fields.get("Feedback-Type", "")).strip().lower() if fields is not None else ""
    if feedback_type not in COMPLAINT_TYPES:
        return Report("arf", None, (), message_id, (f"feedback-type {feedback_type or 'missing'}",))
    recipients = [a for a in (_typed_address(v) for v in fields.get_all("Original-Rcpt-To", [])) if a]
    if not recipients and returned is not None:
        recipients = [a for _, a in getaddresses([str(v) for v in returned.get_all("To", [])]) if a]
    return Report("arf", "complaint", tuple(dict.fromkeys(recipients)), message_id)
