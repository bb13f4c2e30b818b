"""One classifier for every report that tells us about a recipient: RFC 3464/6533 DSNs,
non-standard bounces, ARF and JMRP complaints, synchronous SMTP replies and ESP events.
Pure functions, no I/O: ``classify_message(raw)``, ``classify_smtp_reply(...)`` and
``esp.*`` return a ``Report`` of per-recipient ``Result``s (see ``vocabulary`` for the
reasons and classes)."""

from __future__ import annotations

from flexmail.domain.bounces import arf, dsn, esp, heuristics
from flexmail.domain.bounces.mime import parse
from flexmail.domain.bounces.results import Report, Result, decide
from flexmail.domain.bounces.vocabulary import SUPPRESSING, BounceClass

__all__ = ["SUPPRESSING", "BounceClass", "Report", "Result", "classify_message", "classify_smtp_reply"]


def classify_message(raw: bytes) -> Report | None:
    """Read a received report; None when the message is not one (or is garbage)."""
    message = parse(raw)
    if message is None:
        return None
    try:
        return (arf.read(message) or dsn.read(message) or esp.ses_mail(message) or _forwarded(message)
                or heuristics.read(message))
    except Exception:  # odd MIME that the email package half-parsed: not a report we can read
        return None


def _forwarded(message) -> Report | None:
    """A bounce forwarded as an attachment (``message/rfc822`` holding the report)."""
    for part in message.walk():
        if part is not message and part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else None
            if inner is not None and inner.get_content_type() == "multipart/report":
                return arf.read(inner) or dsn.read(inner)
    return None


def classify_smtp_reply(recipient: str | None, code: int, text: str, *, message_id: str | None = None) -> Report:
    """An SMTP reply to RCPT or DATA, as a report: 5yz is a permanent failure, 4yz a
    transient one (RFC 5321 4.2.1)."""
    diagnostic = f"{code} {text}".strip()
    reason, klass, status = decide(diagnostic=diagnostic, reply_code=code,
                                   action="failed" if code >= 400 else "delivered")
    result = Result(recipient, reason, klass, status, diagnostic[:500], message_id, "failed" if code >= 400 else
                    "delivered", "smtp")
    return Report("smtp", (result,), message_id)
