"""Complaint reports: RFC 5965 ARF (``multipart/report; report-type=feedback-report``) and
Microsoft JMRP (``multipart/mixed`` with the complained-about message attached and the
recipient in ``X-HmXmrOriginalRecipient``).

``Feedback-Type`` ``abuse``, ``fraud``, ``other`` (and a missing type) is a complaint about
the recipient; ``opt-out`` (draft-ietf-marf-as) is an unsubscribe; ``auth-failure`` and
``dmarc`` are about the sender's authentication (class ``sender``); ``not-spam`` and
``virus`` ask nothing of us. Providers often redact the recipient: the original Message-ID
then names the subscriber.
"""

from __future__ import annotations

from email.message import Message
from email.utils import getaddresses

from flexmail.domain.bounces.dsn import typed_address
from flexmail.domain.bounces.mime import header_blocks, original_message_id, returned_headers, walk_outer
from flexmail.domain.bounces.results import Report, Result
from flexmail.domain.bounces.vocabulary import BounceClass

FEEDBACK_CLASSES = {
    "abuse": ("complaint", BounceClass.COMPLAINT), "fraud": ("complaint", BounceClass.COMPLAINT),
    "other": ("complaint", BounceClass.COMPLAINT), "": ("complaint", BounceClass.COMPLAINT),
    "opt-out": ("opt-out", BounceClass.OPT_OUT), "optout": ("opt-out", BounceClass.OPT_OUT),
    "auth-failure": ("authfailure", BounceClass.SENDER), "dmarc": ("authfailure", BounceClass.SENDER),
    "not-spam": ("feedback", BounceClass.IGNORE), "virus": ("virusdetected", BounceClass.SENDER),
}
JMRP_HEADER = "X-HmXmrOriginalRecipient"


def _recipients_of(fields: Message | None, returned: Message | None) -> list[str]:
    found = []
    if fields is not None:
        found = [a for a in (typed_address(v) for v in fields.get_all("Original-Rcpt-To", [])) if a]
        if not found:
            found = [a for a in (typed_address(v) for v in fields.get_all("Removal-Recipient", [])) if a]
    if not found and returned is not None:
        found = [a for _, a in getaddresses([str(v) for v in returned.get_all("To", [])]) if "@" in a]
    return list(dict.fromkeys(found))


def _result(address, reason, klass, message_id, feedback_type, source) -> Result:
    return Result(address, reason, klass, None, f"Feedback-Type: {feedback_type or 'abuse'}", message_id,
                  feedback_type or "abuse", source)


def read(message: Message) -> Report | None:
    """Results of an ARF or JMRP report; None for anything else."""
    feedback = next((p for p in walk_outer(message) if p.get_content_type() == "message/feedback-report"), None)
    if feedback is not None:
        blocks = header_blocks(feedback)
        fields = blocks[0] if blocks else None
        if fields is not None and len(blocks) > 1:  # fields split by a stray blank line
            for extra in blocks[1:]:
                for name, value in extra.items():
                    fields[name] = value
        feedback_type = str(fields.get("Feedback-Type", "") if fields is not None else "").strip().lower()
        reason, klass = FEEDBACK_CLASSES.get(feedback_type, ("feedback", BounceClass.IGNORE))
        returned = returned_headers(message)
        message_id = original_message_id(message)
        recipients = _recipients_of(fields, returned) or [None]
        return Report("arf", tuple(_result(a, reason, klass, message_id, feedback_type, "arf") for a in recipients),
                      message_id)
    return _jmrp(message) or _unsubscribe_request(message)


def _unsubscribe_request(message: Message) -> Report | None:
    """A mail client's one-press unsubscribe mail (Apple Mail: ``X-Apple-Unsubscribe: true``)
    sent to a report address: an opt-out by its sender."""
    if str(message.get("X-Apple-Unsubscribe", "")).strip().lower() != "true":
        return None
    sender = next((a for _, a in getaddresses([str(v) for v in message.get_all("From", [])]) if "@" in a), None)
    if sender is None:
        return None
    return Report("unsubscribe", (Result(sender, "opt-out", BounceClass.OPT_OUT, None, "X-Apple-Unsubscribe: true",
                                         None, "unsubscribe", "unsubscribe"),), None)


def _jmrp(message: Message) -> Report | None:
    returned = returned_headers(message)
    candidates = [message] + ([returned] if returned is not None else [])
    recipient = next((str(m.get(JMRP_HEADER)).strip().strip("<>") for m in candidates if m.get(JMRP_HEADER)), None)
    if recipient is None:
        return None
    message_id = original_message_id(message)
    return Report("jmrp", (_result(recipient, "complaint", BounceClass.COMPLAINT, message_id, "abuse", "jmrp"),),
                  message_id)
