"""The per-recipient result every report is read into, and the rule that turns an SMTP
status, a reply code and a diagnostic text into a reason and a class."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flexmail.domain.bounces.vocabulary import (
    HARD_REASONS,
    SENDER_REASONS,
    BounceClass,
    find_reply_code,
    find_status,
    status_reason,
    text_reason,
)

#: Longest diagnostic kept (it is shown in the proof and in the deliverability report).
DIAGNOSTIC_MAX = 500

#: DSN actions (RFC 3464 2.3.3) that are good news or not yet news.
NOT_FAILED = {"delivered": "delivered", "relayed": "delivered", "expanded": "delivered", "delayed": None}


@dataclass(frozen=True)
class Result:
    """What a report says about one recipient."""

    #: The address as written in the report (None when redacted: match by ``message_id``).
    recipient: str | None
    #: Sisimai's reason (``vocabulary``).
    reason: str
    #: ``hard``, ``soft``, ``sender``, ``complaint``, ``opt-out`` or ``ignore``.
    bounce_class: BounceClass
    #: Enhanced status code (``5.1.1``) when known.
    status: str | None = None
    #: The remote server's words (SMTP reply or Diagnostic-Code), cut to ``DIAGNOSTIC_MAX``.
    diagnostic: str | None = None
    #: ``<...>`` of the message the report is about, when it says.
    message_id: str | None = None
    #: DSN action (failed, delayed, delivered...) or the ESP's event name.
    action: str | None = None
    #: What read it: dsn, arf, jmrp, smtp, heuristic:<detector>, esp:<provider>.
    source: str = "dsn"

    @property
    def delivered(self) -> bool:
        """A successful delivery report: lifts a soft-bounce suppression."""
        return self.reason == "delivered"

    def summary(self) -> dict:
        return {"reason": self.reason, "class": self.bounce_class.value, "status": self.status,
                "diagnostic": self.diagnostic, "action": self.action, "report": self.source}


@dataclass(frozen=True)
class Report:
    """A whole report: its kind and one result per recipient."""

    #: dsn, arf, jmrp, bounce (non-standard), smtp, esp.
    kind: str
    results: tuple[Result, ...] = field(default_factory=tuple)
    #: Message-ID of the original message, when the report carries it.
    message_id: str | None = None


def clean_diagnostic(text: str | None) -> str | None:
    if not text:
        return None
    flat = " ".join(str(text).split())
    if flat.lower().startswith(("smtp;", "x-postfix;", "x-unix;", "x-local;")):
        flat = flat.split(";", 1)[1].strip()
    return flat[:DIAGNOSTIC_MAX] or None


DATA_PHASE = re.compile(r"(?:in reply to|after|>>>|smtp command:?|command:?)\s*(?:end of\s+)?data\b|"
                        r"after end of data|while (?:sending|transmitting) (?:the )?message (?:body|data)|-+smtp command data",  # noqa: E501
                        re.I)
RCPT_PHASE = re.compile(r"(?:in reply to|after|>>>|smtp command:?)\s*rcpt\b|did not like our rcpt|smtp:rcpt\b|"
                        r"most progress was rcpt|for rcpt to response|rejected address|"
                        # Yahoo's "[RCPT_TO]" after the remote reply; Exchange Online's "unknown
                        # recipient or mailbox unavailable -> 550 <address> ..." (5.1.351).
                        r"\[rcpt_to\]|unknown recipient or mailbox unavailable ->.*@", re.I)
MAIL_PHASE = re.compile(r"(?:after|in reply to)\s+mail\s+from|>>>\s*mail\s+from", re.I)
#: Words about a mailbox that exists: they beat an address status (X.1.x) that says it does not.
MAILBOX_STATE_REASONS = frozenset({"mailboxfull", "exceedlimit", "suspend", "mailererror"})
#: An X.7.x status is about policy and security: never a verdict on the address (standards L2).
POLICY_STATUS = re.compile(r"^[45]\.7\.")


def phase(text: str | None, *, transcript: bool = True) -> str | None:
    """``DATA`` or ``RCPT`` when the text says in reply to which command the refusal came.
    ``transcript=False`` ignores Sendmail's ``>>> DATA`` lines, which with pipelining come
    before the RCPT replies they precede."""
    if not text:
        return None
    if not transcript:
        text = re.sub(r">>>\s*data", "", text, flags=re.I)
    if DATA_PHASE.search(text):
        return "DATA"
    if RCPT_PHASE.search(text):
        return "RCPT"
    return None


def decide(*, status: str | None = None, diagnostic: str | None = None, action: str | None = None,
           reply_code: int | None = None, context: str | None = None,
           recipient: str | None = None, vouched: bool = False,
           command: str | None = None) -> tuple[str, BounceClass, str | None]:
    """(reason, class, status) for one recipient of a failure report or one SMTP reply.

    Only a permanent failure (5.x.x, a 5yz reply, or ``Action: failed`` without a status)
    whose reason is about the address is ``hard``, and not even then when:

    - the words name a sender-side cause ("550 5.1.1 ... listed on Spamhaus" is the IP);
    - the status is X.7.x (policy, security), whatever the words (standards L2);
    - the refusal came after DATA: an address accepted at RCPT and refused for the
      content is a filter, not a missing mailbox (Sisimai's ``filtered``);
    - the words say the recipient's own filter refused it;
    - the words say the mailbox exists (full, disabled, a failed delivery program);
    - a report (``recipient`` given: a DSN or a text bounce, not our own relay's reply nor
      an ESP event) says "user unknown" without an address status (X.1.1, X.1.3, X.1.4),
      without evidence of the RCPT phase, and without ``vouched``: Sisimai's rule
      (Reason::UserUnknown is true for such words only when the last command was RCPT;
      otherwise Reason::Filtered), since some receivers answer "user unknown" after DATA
      when the recipient's own filter refuses the sender.

    ``context`` is the human-readable text around the recipient (the MTA's explanation),
    read for the SMTP phase when the diagnostic does not say it. ``vouched`` is set when
    the report's format says the words are the reporting MTA's or remote host's own
    verdict on the mailbox (``mta.vouches``, Sisimai's per-MTA readers); ``command`` is the
    SMTP command the caller found the refusal at, when the diagnostic does not say it.
    """
    action = (action or "").strip().lower() or None
    text = clean_diagnostic(diagnostic)
    written = find_status(text)
    status = find_status(status) or written
    if written and written != status and not written.endswith(".0.0"):
        status = written  # the remote server's own code beats the reporting MTA's summary
    if status and status.endswith(".0.0") and text:
        specific = find_status(text.replace(status, "", 1))
        status = specific or status
    if reply_code is None:
        reply_code = find_reply_code(text)
    if action in NOT_FAILED:
        reason = NOT_FAILED[action] or "expired"
        return reason, BounceClass.IGNORE, status
    if status:
        permanent = status.startswith("5")
    elif reply_code:
        permanent = reply_code >= 500
    else:
        permanent = action == "failed"
    by_status, by_text = status_reason(status), text_reason(text)
    if by_text is None and context:
        by_text = text_reason(context) if by_status is None else None
    if by_text in SENDER_REASONS or by_status is None:
        reason = by_text or by_status
    elif by_status in HARD_REASONS and by_text in MAILBOX_STATE_REASONS:
        reason = by_text  # "550 5.1.1 mailbox full": the mailbox exists (Sisimai's UserUnknown prematches)
    elif by_text in HARD_REASONS and status and status[2:] == "2.1":
        reason = by_text  # X.2.1 "mailbox disabled" with words saying it does not exist
    elif by_text in ("filtered", "mailererror") or by_status in HARD_REASONS or by_text is None:
        reason = by_text if by_text in ("filtered", "mailererror") else by_status
    elif by_status in ("syntaxerror", "policyviolation", "securityerror", "networkerror", "systemerror"):
        reason = by_text  # generic status subjects; the words are more precise
    else:
        reason = by_status
    if reason in HARD_REASONS and context and by_status in HARD_REASONS:
        # A second witness: the MTA's own explanation near the address naming another cause.
        other = text_reason(context)
        if other is not None and other not in HARD_REASONS and other not in ("filtered", "expired", "undefined"):
            reason = other
    if reason in HARD_REASONS and MAIL_PHASE.search(text or ""):
        reason = "rejected"  # refused at MAIL FROM: the envelope sender, not the recipient
    if reason == "userunknown" and by_status == "filtered" and status and status[2:] == "2.0":
        reason = "filtered"  # X.2.0 refused by the recipient's filter, with "unknown user" words
    if reason in HARD_REASONS and reason == "userunknown":
        if status and POLICY_STATUS.match(status):
            reason = "filtered"
        elif not (status and status[2:].startswith("1.")) and (
                phase(text) == "DATA" or (phase(text) is None and phase(context, transcript=False) == "DATA")):
            reason = "filtered"
    if reason == "userunknown" and recipient and by_status != "userunknown" and not vouched and not (
            command == "RCPT" or phase(text) == "RCPT" or phase(context, transcript=False) == "RCPT"):
        reason = "filtered"  # a "user unknown" that nothing places at RCPT (Sisimai's filtered)
    if reason is None:
        return "undefined", (BounceClass.SOFT if action == "failed" or reply_code or status else BounceClass.IGNORE), status  # noqa: E501
    if reason in HARD_REASONS:
        return reason, (BounceClass.HARD if permanent else BounceClass.SOFT), status
    if reason in SENDER_REASONS:
        return reason, BounceClass.SENDER, status
    return reason, BounceClass.SOFT, status
