"""Bounces that are not RFC 3464: qmail, Exim, older Exchange, Gmail, Yahoo, OpenSMTPD,
Japanese carriers... flufl.bounce (Mailman's detectors) finds the recipients of the formats
it knows; for the rest, the addresses written in the bounce text of a message that looks
like a bounce. The reason then comes from the words near each address (``vocabulary``)."""

from __future__ import annotations

import logging
import re
from email.message import Message
from email.utils import getaddresses

from flexmail.domain.bounces import mta
from flexmail.domain.bounces.mime import bounce_text, original_message_id, returned_headers, snippet
from flexmail.domain.bounces.results import Report, Result, clean_diagnostic, decide, phase
from flexmail.domain.bounces.vocabulary import HARD_REASONS

ADDRESS_RE = re.compile(r"[A-Za-z0-9._%+=!#$&'*/?^`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
BOUNCE_SUBJECT = re.compile(r"undeliver|delivery|failure|failed|returned|bounce|not delivered|unable to deliver|"
                            r"rejected|error|mail system|nondeliver|non-deliver|warning|notification", re.I)
BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery|mailer|mail administrator|"
                           r"mail ?delivery ?(?:sub)?system|daemon", re.I)
#: A Message-ID quoted in the text (``Message-ID: <x@host>``) names no recipient.
MESSAGE_ID_LINE = re.compile(r"message-id:\s*<[^<>\s]+>", re.I)
SERVICE_LOCALS = ("mailer-daemon", "postmaster", "double-bounce", "root", "noreply", "no-reply")


def looks_like_a_bounce(message: Message) -> bool:
    """A delivery failure notice by its sender or subject (an out-of-office reply is not)."""
    return bool(BOUNCE_SENDER.search(str(message.get("From", ""))) or BOUNCE_SUBJECT.search(
        str(message.get("Subject", ""))))


def _flufl(message: Message) -> tuple[set[str], set[str], bool]:
    from flufl.bounce import all_failures  # imported here: a heavy import, only for non-DSN mail

    logging.getLogger("flufl.bounce").setLevel(logging.WARNING)  # it logs every detector at INFO
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector choking on odd MIME: fall back to our own reading
        return set(), set(), False
    def decode(items) -> set[str]:
        return {(a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a)).strip().strip("<>").rstrip(".")
                for a in items}
    temp, perm = decode(temporary), decode(permanent)
    return {a for a in temp if "@" in a}, {a for a in perm if "@" in a}, bool(temporary or permanent)


def _excluded(message: Message, returned: Message | None) -> set[str]:
    """Addresses that are never the failed recipient: the report's own From/To, the
    returned message's sender."""
    names = [str(v) for v in message.get_all("From", []) + message.get_all("To", [])]
    if returned is not None:
        names += [str(v) for v in returned.get_all("From", []) + returned.get_all("Sender", [])
                  + returned.get_all("Return-Path", [])]
    return {a.lower() for _, a in getaddresses(names) if a}


def own_line(text: str, address: str) -> str | None:
    """Sendmail's per-recipient error line (``554 <address>... Remote protocol error``), if
    the bounce has one for ``address``."""
    match = re.search(rf"^[ \t]*([45]\d\d[ -]<?{re.escape(address)}>?(?:\.\.\.|,)[ \t]*\S.*)$", text,
                      re.IGNORECASE | re.MULTILINE)
    return match.group(1) if match else None


def paragraphs(text: str, address: str) -> list[str]:
    """Each paragraph (between blank lines) of ``text`` that names ``address``: some MTAs
    (Notes) write the reason on the line before the address, others (Exchange's IMS) their
    error code lines after it."""
    return [p for p in re.split(r"\n[ \t]*\n", text) if address.lower() in p.lower()]


def written_recipients(message: Message, text: str) -> list[str]:
    """The addresses written in a bounce's own text that can be the failed recipient:
    not the report's From/To, the returned message's sender, a service mailbox or a
    Message-ID."""
    excluded = _excluded(message, returned_headers(message))
    text = MESSAGE_ID_LINE.sub(" ", text)
    found = [a.rstrip(".") for a in ADDRESS_RE.findall(text)]
    return [a for a in dict.fromkeys(found) if a.lower() not in excluded and not a.lower().startswith(SERVICE_LOCALS)]


def read(message: Message) -> Report | None:
    """Results for a non-standard bounce; None when no recipient is found."""
    temporary, permanent, detected = _flufl(message)
    text = bounce_text(message)
    if detected:
        # What flufl.bounce found in the quoted original (its Message-ID, its sender) is no
        # recipient, when the MTA's own text names the others.
        named = {a for a in permanent | temporary if a.lower() in MESSAGE_ID_LINE.sub(" ", text).lower()}
        if named:
            permanent, temporary = permanent & named, temporary & named
    if not detected:
        if not looks_like_a_bounce(message):
            return None
        permanent = set(written_recipients(message, text))
        if not permanent:
            return None
    message_id = original_message_id(message)
    rhosts = mta.hosts(text)
    results = []
    for address in sorted(permanent | temporary, key=str.lower):
        near = snippet(text, address) or text
        action = "failed" if address in permanent else "delayed"
        vouched = mta.vouches(message, text, address, " ".join([near, *paragraphs(text, address)]),
                              rhosts) is not None
        reason, klass, status = decide(diagnostic=near, action=action, recipient=address, vouched=vouched)
        if address in permanent:
            # The whole text as a second witness when the lines near the address are silent.
            if reason == "undefined":
                vouched = mta.vouches(message, text, address, text, rhosts) is not None
                reason, klass, status = decide(diagnostic=text, action=action, recipient=address, vouched=vouched)
        own = own_line(text, address)
        if own is not None and reason in HARD_REASONS:
            # Sendmail's "554 <address>... why" is this recipient's own verdict: the next
            # recipient's or host's lines may not make it a hard bounce when it says otherwise
            # (the lines near the address still say at which command it came).
            verdict = decide(diagnostic=own, action=action, recipient=address, vouched=vouched,
                             command=phase(near, transcript=False))
            if verdict[0] not in HARD_REASONS:
                (reason, klass, status), near = verdict, own
        results.append(Result(address, reason, klass, status, clean_diagnostic(near), message_id, action,
                              "bounce"))
    return Report("bounce", tuple(results), message_id)
