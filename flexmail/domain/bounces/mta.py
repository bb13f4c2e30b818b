"""What a report's format says beyond its words: which reporting MTA or remote host wrote
it, and that host's own wording for a missing mailbox.

A "user unknown" without an X.1.1 status and without evidence of the RCPT phase is not
proof that the mailbox is missing (``results.decide``; Sisimai's Reason::UserUnknown and
Filtered). Sisimai still reads some of them as ``userunknown`` through its per-MTA
readers (Lhost::*) and per-remote-host tables (Rhost::*): each knows the format of one
MTA and the verdicts that MTA writes after its *own* directory lookup. This module holds
that knowledge, keyed on markers that any mail from the MTA carries (a header, a fixed
sentence of its template, its reporting host), never on a particular mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message


def _rx(*patterns: str) -> re.Pattern:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


@dataclass(frozen=True)
class Mta:
    """One reporting MTA or remote host: how to recognise its mail, and the words it writes
    when its own lookup found no such mailbox."""

    name: str
    #: True when the report (headers, text, DSN per-message fields) is this MTA's.
    recognise: object
    #: Its wording for a missing mailbox.
    unknown: re.Pattern


def _header(message: Message, name: str) -> str:
    return str(message.get(name, "") or "")


#: Reporting MTAs (Sisimai's Lhost readers): the bounce is the MTA's own verdict.
REPORTING = (
    # Lotus Domino / Notes: "was not delivered to: ... because: User x not listed in Domino
    # Directory"; older Notes: "------- Failure Reasons --------".
    Mta("domino", lambda m, text, rhosts: bool(re.search(r"^\s*was not delivered to:\s*$", text, re.M | re.I)
                                              and re.search(r"^\s*because:\s*$", text, re.M | re.I)),
        _rx(r"not listed in (?:the )?domino directory", r"not listed in public name & address book")),
    Mta("notes", lambda m, text, rhosts: bool(re.search(r"^-+\s*failure reasons\s*-+\s*$", text, re.M | re.I)),
        _rx(r"not listed in public name & address book")),
    # Exchange 5.5-2003 Internet Mail Service: "MSEXCH:IMS:... (000C05A6) Unknown Recipient".
    Mta("exchange-ims", lambda m, text, rhosts: "msexch:ims:" in text.lower()
        or "internet mail service" in _header(m, "X-Mailer").lower(),
        _rx(r"\(000C05A6\)")),
    # Ipswitch IMail: X-Mailer "<SMTP32 vN>", "Unknown user: address".
    Mta("imail", lambda m, text, rhosts: _header(m, "X-Mailer").startswith("<SMTP32 v"),
        _rx(r"\bunknown user: ", r"invalid final delivery userid")),
    # McAfee Email Gateway: X-NAI-Header "Modified by McAfee".
    Mta("mcafee", lambda m, text, rhosts: "modified by mcafee" in _header(m, "X-NAI-Header").lower(),
        _rx(r" user \(.+@.+\) unknown\. ", r"550 unknown user \S+@\S+", r"550 <[^>]+@[^>]+>\.+ user not exist",
            r"no such user")),
    # Verizon's MMS gateway (vzwpix.com, vtext.com): "No valid recipients for this MM".
    Mta("verizon", lambda m, text, rhosts: bool(re.search(r"@[\w.-]*(?:vzwpix|vtext)\.com\b", _header(m, "From"),
                                                          re.I)),
        _rx(r"no valid recipients for this mm")),
    # Gmail / Google Workspace DSNs: Google's own verdict on the address.
    Mta("google", lambda m, text, rhosts: any(h.endswith("googlemail.com") for h in rhosts)
        or "mailer-daemon@googlemail.com" in _header(m, "From").lower(),
        _rx(r"because the address couldn.t be found\. check for typos")),
    # Outlook.com / Hotmail's own DSNs (Sisimai's Rhost::Outlook).
    Mta("hotmail", lambda m, text, rhosts: any(h.endswith("hotmail.com") for h in rhosts),
        _rx(r"requested action not taken: mailbox unavailable")),
)

#: Remote hosts (Sisimai's Rhost tables), recognised by the remote host or the recipient's
#: domain: their replies' wording for a missing mailbox.
REMOTE = (
    # au (KDDI): "550 <address>: User unknown" is a missing mailbox, "550 : User unknown" a filter.
    (re.compile(r"(?:^|\.)(?:ezweb\.ne\.jp|au\.com)$"), _rx(r">: user unknown")),
    # Yahoo Inc. (*.yahoodns.net): "554 delivery error: dd This user doesn't have a yahoo.com account".
    (re.compile(r"\.yahoodns\.net$"), _rx(r"dd this user doesn.t have a ", r"mailbox not found")),
    # Orange and La Poste: the error code at the end of the reply (LPN007_416, OFR_418).
    (re.compile(r"(?:^|\.)(?:laposte\.net|orange\.fr|wanadoo\.fr)$"),
     _rx(r"\b(?:LPN|OFR|OUK)(?:_|\d{3}[-_])?41[68]\b")),
)

HOST_RE = re.compile(r"(?:(?:remote-mta|reporting-mta):\s*dns;\s*|while talking to |talking to |host )"
                     r"([a-z0-9][a-z0-9.-]*\.[a-z]{2,})", re.I)


def hosts(text: str, fields: dict | None = None) -> set[str]:
    """Host names the report gives for the reporting and the remote MTA."""
    found = {h.lower().rstrip(".") for h in HOST_RE.findall(text or "")}
    for key in ("Reporting-Mta", "Remote-Mta"):
        value = str((fields or {}).get(key, "") or "")
        if ";" in value:
            name = value.split(";", 1)[1].strip().split()[0:1]
            if name:
                found.add(name[0].lower().rstrip("."))
    return found


def vouches(message: Message, text: str, recipient: str | None, words: str, rhosts: set[str]) -> str | None:
    """The name of the MTA or remote host whose format says ``words`` are its own verdict
    that the mailbox does not exist, or None."""
    for mta in REPORTING:
        if mta.recognise(message, text, rhosts) and mta.unknown.search(words):
            return mta.name
    domain = (recipient or "").rsplit("@", 1)[-1].lower()
    for host, unknown in REMOTE:
        if (host.search(domain) or any(host.search(h) for h in rhosts)) and unknown.search(words):
            return host.pattern
    return None
