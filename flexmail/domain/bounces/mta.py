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
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message


def _rx(*patterns: str) -> re.Pattern:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


#: Recognises a report: (the report, its own text, the reporting and remote host names).
Recogniser = Callable[[Message, str, set[str]], bool]


@dataclass(frozen=True)
class Mta:
    """One reporting MTA: how to recognise its reports, and the words it writes when its
    own lookup found no such mailbox."""

    name: str
    recognise: Recogniser
    unknown: re.Pattern


def _header(message: Message, name: str) -> str:
    return str(message.get(name, "") or "").strip()


def _lines(*patterns: str) -> Recogniser:
    """All of ``patterns`` are whole lines of the report's text (its template)."""
    compiled = [re.compile(rf"^\s*{p}\s*$", re.M | re.I) for p in patterns]
    return lambda message, text, rhosts: all(c.search(text) for c in compiled)


def _header_has(name: str, words: str, *, start: bool = False) -> Recogniser:
    def recognise(message: Message, text: str, rhosts: set[str]) -> bool:
        value = _header(message, name).lower()
        return value.startswith(words.lower()) if start else words.lower() in value
    return recognise


def _host(suffix: str) -> Recogniser:
    return lambda message, text, rhosts: any(h == suffix or h.endswith("." + suffix) for h in rhosts)


def _either(*recognisers: Recogniser) -> Recogniser:
    return lambda message, text, rhosts: any(r(message, text, rhosts) for r in recognisers)


def _text_has(words: str) -> Recogniser:
    return lambda message, text, rhosts: words.lower() in text.lower()


def _from_domain(pattern: str) -> Recogniser:
    compiled = re.compile(rf"@(?:[\w-]+\.)*{pattern}\b", re.I)
    return lambda message, text, rhosts: bool(compiled.search(_header(message, "From")))


#: Reporting MTAs (Sisimai's Lhost readers): the bounce is the MTA's own verdict.
REPORTING = (
    # Lotus Domino: "Your message ... was not delivered to: <address> because: User x (address)
    # not listed in Domino Directory".
    Mta("domino", _lines("was not delivered to:", "because:"),
        _rx(r"not listed in (?:the )?domino directory", r"not listed in public name & address book")),
    # Older Lotus Notes SMTP MTA: "------- Failure Reasons --------", the reason line, the address.
    Mta("notes", _lines(r"-+\s*failure reasons\s*-+"), _rx(r"not listed in public name & address book")),
    # Exchange 5.5-2003 Internet Mail Service: "MSEXCH:IMS:... (000C05A6) Unknown Recipient".
    Mta("exchange-ims", _either(_text_has("msexch:ims:"), _header_has("X-Mailer", "Internet Mail Service")),
        _rx(r"\(000C05A6\)")),
    # Ipswitch IMail: X-Mailer "<SMTP32 vN>", "Unknown user: address".
    Mta("imail", _header_has("X-Mailer", "<SMTP32 v", start=True),
        _rx(r"\bunknown user: ", r"invalid final delivery userid")),
    # McAfee Email Gateway: X-NAI-Header "Modified by McAfee".
    Mta("mcafee", _header_has("X-NAI-Header", "Modified by McAfee"),
        _rx(r" user \(.+@.+\) unknown\. ", r"550 unknown user \S+@\S+", r"550 <[^>]+@[^>]+>\.+ user not exist",
            r"no such user")),
    # Verizon's MMS gateway (vzwpix.com, vtext.com): "No valid recipients for this MM".
    Mta("verizon", _from_domain(r"(?:vzwpix|vtext)\.com"), _rx(r"no valid recipients for this mm")),
    # Gmail / Google Workspace DSNs: Google's own verdict on the address (Rhost::GSuite).
    Mta("google", _either(_host("googlemail.com"), _header_has("From", "mailer-daemon@googlemail.com")),
        _rx(r"because the address couldn.t be found\. check for typos")),
    # Outlook.com / Hotmail's own DSNs (Rhost::Outlook).
    Mta("hotmail", _host("hotmail.com"), _rx(r"requested action not taken: mailbox unavailable")),
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
