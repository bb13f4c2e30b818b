"""ESP events (already verified and decoded JSON) as reports: Amazon SES (the SNS
``Message``), SendGrid Event Webhook, Mailgun webhooks, Postmark webhooks. Each maps bounce,
dropped, spam-report and unsubscribe events through the same ``decide`` and classes as
mail; what the provider itself calls permanent is never taken as hard without a reason
about the address, and vice versa a "hard" with sender words stays ``sender``.
"""

from __future__ import annotations

from flexmail.domain.bounces.mime import normalize_message_id
from flexmail.domain.bounces.results import Report, Result, clean_diagnostic, decide
from flexmail.domain.bounces.vocabulary import BounceClass


def _failure(recipient, *, status=None, diagnostic=None, permanent: bool, message_id, provider, action="failed",
             fallback="undefined") -> Result:
    """A bounce event: decided from its status and words; a permanent one whose words say
    nothing is ``fallback`` (the provider's own subtype)."""
    diagnostic = clean_diagnostic(diagnostic)
    if not permanent and status and status.startswith("5."):
        status = "4" + status[1:]
    reason, klass, status = decide(status=status, diagnostic=diagnostic, action=action,
                                   reply_code=None if permanent else 450)
    if reason == "undefined" and fallback != "undefined":
        reason = fallback
        klass = BounceClass.HARD if permanent and fallback in ("userunknown", "hostunknown") else BounceClass.SOFT
    return Result(recipient, reason, klass, status, diagnostic, message_id, action, f"esp:{provider}")


def _simple(recipient, reason, klass, message_id, provider, action, diagnostic=None) -> Result:
    return Result(recipient, reason, klass, None, diagnostic, message_id, action, f"esp:{provider}")


# --- Amazon SES (SNS notification Message, event publishing or feedback notifications) -------

SES_SUBTYPES = {"NoEmail": "userunknown", "Suppressed": "userunknown", "OnAccountSuppressionList": "userunknown",
                "MailboxFull": "mailboxfull", "MessageTooLarge": "mesgtoobig", "ContentRejected": "contenterror",
                "AttachmentRejected": "contenterror"}


def ses(message: dict) -> Report:
    """An SES notification (``notificationType`` or ``eventType``: Bounce, Complaint, Delivery)."""
    kind = message.get("notificationType") or message.get("eventType") or ""
    mail = message.get("mail") or {}
    headers = {h.get("name", "").lower(): h.get("value") for h in mail.get("headers") or [] if isinstance(h, dict)}
    message_id = normalize_message_id((mail.get("commonHeaders") or {}).get("messageId") or headers.get("message-id"))
    results = []
    if kind == "Bounce":
        bounce = message.get("bounce") or {}
        permanent = bounce.get("bounceType") == "Permanent"
        fallback = SES_SUBTYPES.get(bounce.get("bounceSubType"), "undefined")
        for item in bounce.get("bouncedRecipients") or []:
            results.append(_failure(item.get("emailAddress"), status=item.get("status"),
                                    diagnostic=item.get("diagnosticCode"), permanent=permanent,
                                    message_id=message_id, provider="ses", fallback=fallback))
    elif kind == "Complaint":
        complaint = message.get("complaint") or {}
        feedback = (complaint.get("complaintFeedbackType") or "abuse").lower()
        klass = BounceClass.IGNORE if feedback == "not-spam" else BounceClass.COMPLAINT
        for item in complaint.get("complainedRecipients") or []:
            results.append(_simple(item.get("emailAddress"), "complaint", klass, message_id, "ses", feedback))
    elif kind == "Delivery":
        for address in (message.get("delivery") or {}).get("recipients") or []:
            results.append(_simple(address, "delivered", BounceClass.IGNORE, message_id, "ses", "delivered"))
    return Report("esp", tuple(r for r in results if r.recipient), message_id)


def ses_mail(message) -> Report | None:
    """An SES notification delivered by SNS as an email ("AWS Notification Message"): the
    JSON body, either the SNS envelope or the SES notification itself."""
    import json

    from flexmail.domain.bounces.mime import text_of

    if not message.get("x-amz-sns-message-id") and "sns.amazonaws.com" not in str(message.get("From", "")):
        return None
    try:
        # Mail transport folds long lines: strict=False lets the JSON strings keep them.
        data = json.loads(text_of(message).strip(), strict=False)
        if isinstance(data, dict) and isinstance(data.get("Message"), str):
            data = json.loads(data["Message"], strict=False)
    except ValueError:
        return None
    if not isinstance(data, dict) or not (data.get("notificationType") or data.get("eventType")):
        return None
    report = ses(data)
    return report if report.results else None


# --- SendGrid Event Webhook ------------------------------------------------------------------

SENDGRID_DROPPED = {"bounced address": ("userunknown", BounceClass.HARD),
                    "invalid": ("userunknown", BounceClass.HARD),
                    "spam reporting address": ("complaint", BounceClass.COMPLAINT),
                    "unsubscribed address": ("opt-out", BounceClass.OPT_OUT)}


def sendgrid(event: dict) -> Result | None:
    """One event of the Event Webhook's JSON array (None for events we do not act on)."""
    name = (event.get("event") or "").lower()
    recipient = event.get("email")
    message_id = normalize_message_id(event.get("smtp-id"))
    if name == "bounce":
        permanent = (event.get("type") or "bounce") != "blocked" or str(event.get("status", "")).startswith("5")
        return _failure(recipient, status=event.get("status"), diagnostic=event.get("reason"), permanent=permanent,
                        message_id=message_id, provider="sendgrid")
    if name == "dropped":
        reason = (event.get("reason") or "").lower()
        found = next((v for k, v in SENDGRID_DROPPED.items() if k in reason), None)
        if found is None:
            return _simple(recipient, "undefined", BounceClass.IGNORE, message_id, "sendgrid", "dropped", reason)
        return _simple(recipient, found[0], found[1], message_id, "sendgrid", "dropped", event.get("reason"))
    if name == "spamreport":
        return _simple(recipient, "complaint", BounceClass.COMPLAINT, message_id, "sendgrid", "spamreport")
    if name in ("unsubscribe", "group_unsubscribe"):
        return _simple(recipient, "opt-out", BounceClass.OPT_OUT, message_id, "sendgrid", name)
    if name == "delivered":
        return _simple(recipient, "delivered", BounceClass.IGNORE, message_id, "sendgrid", "delivered")
    return None


# --- Mailgun ---------------------------------------------------------------------------------

def mailgun(data: dict) -> Result | None:
    """The ``event-data`` of a Mailgun webhook."""
    name = (data.get("event") or "").lower()
    recipient = data.get("recipient")
    headers = (data.get("message") or {}).get("headers") or {}
    message_id = normalize_message_id(headers.get("message-id"))
    if name == "failed":
        status = data.get("delivery-status") or {}
        diagnostic = " ".join(str(x) for x in (status.get("code"), status.get("message"), status.get("description"))
                              if x)
        permanent = (data.get("severity") or "permanent") == "permanent"
        if data.get("reason") == "suppress-bounce":
            return _simple(recipient, "userunknown", BounceClass.HARD, message_id, "mailgun", "suppress-bounce")
        return _failure(recipient, status=status.get("enhanced-code"), diagnostic=diagnostic, permanent=permanent,
                        message_id=message_id, provider="mailgun")
    if name == "complained":
        return _simple(recipient, "complaint", BounceClass.COMPLAINT, message_id, "mailgun", "complained")
    if name == "unsubscribed":
        return _simple(recipient, "opt-out", BounceClass.OPT_OUT, message_id, "mailgun", "unsubscribed")
    if name == "delivered":
        return _simple(recipient, "delivered", BounceClass.IGNORE, message_id, "mailgun", "delivered")
    return None


# --- Postmark --------------------------------------------------------------------------------

POSTMARK_TYPES = {
    "HardBounce": ("userunknown", BounceClass.HARD), "BadEmailAddress": ("userunknown", BounceClass.HARD),
    "SoftBounce": ("undefined", BounceClass.SOFT), "Transient": ("undefined", BounceClass.SOFT),
    "DnsError": ("networkerror", BounceClass.SOFT), "AutoResponder": ("undefined", BounceClass.IGNORE),
    "SpamNotification": ("complaint", BounceClass.COMPLAINT), "SpamComplaint": ("complaint", BounceClass.COMPLAINT),
    "Blocked": ("blocked", BounceClass.SENDER), "ContentRelated": ("contenterror", BounceClass.SENDER),
    "VirusNotification": ("virusdetected", BounceClass.SENDER),
    "ChallengeVerification": ("undefined", BounceClass.IGNORE),
    "Unsubscribe": ("opt-out", BounceClass.OPT_OUT), "ManuallyDeactivated": ("undefined", BounceClass.IGNORE),
}


def postmark(event: dict) -> Result | None:
    """One Postmark webhook payload (``RecordType`` Bounce, SpamComplaint, SubscriptionChange, Delivery)."""
    record = event.get("RecordType")
    recipient = event.get("Email") or event.get("Recipient")
    message_id = None  # Postmark's MessageID is its own id, not our Message-ID header
    if record == "Bounce":
        reason, klass = POSTMARK_TYPES.get(event.get("Type"), ("undefined", BounceClass.SOFT))
        words = clean_diagnostic(" ".join(str(x) for x in (event.get("Description"), event.get("Details")) if x))
        if klass == BounceClass.HARD:
            # "HardBounce" is also what Postmark calls a spam block: the words decide.
            decided = _failure(recipient, diagnostic=words, permanent=True, message_id=None, provider="postmark",
                               fallback=reason)
            if decided.bounce_class != BounceClass.SOFT or decided.reason in ("undefined",):
                return decided
        return _simple(recipient, reason, klass, message_id, "postmark", event.get("Type") or "Bounce", words)
    if record == "SpamComplaint":
        return _simple(recipient, "complaint", BounceClass.COMPLAINT, message_id, "postmark", "SpamComplaint")
    if record == "SubscriptionChange" and event.get("SuppressSending"):
        return _simple(recipient, "opt-out", BounceClass.OPT_OUT, message_id, "postmark", "SubscriptionChange")
    if record == "Delivery":
        return _simple(recipient, "delivered", BounceClass.IGNORE, message_id, "postmark", "Delivery")
    return None
