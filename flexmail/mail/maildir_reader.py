"""Reading back the mails the Maildir transport stored, for the development mailbox.

A newcomer on the embedded default has no mail account: ``/dev/mail`` lists what the
Maildir holds and shows each mail. This module is the reading half: list, parse, and make
both parts safe to show. The HTML part is sanitised (no script, style element, form,
frame or event handler; only http(s)/mailto links, which open in the top window) and is
served on its own in a sandboxed frame with a strict CSP; the text part is given as
segments of plain text and links, so a template shows it without any markup of the mail.

A mail id is a Maildir key (a file name in ``new/`` or ``cur/``). It is only ever looked up
among the names those folders list, never joined to a path, so an id like
``../../etc/passwd`` names nothing; symbolic links are not followed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from email import message_from_bytes, policy

import nh3

#: What Maildir keys look like (time.M<usec>P<pid>Q<n>.<host>; mailbox escapes "/" and ":"
#: in the host as \057 and \072). Anything else is refused before the Maildir is read.
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-\\]{0,254}$")
#: A link in a text part: http(s) up to white space or a character that ends it in prose.
_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
_HTML_LANG = re.compile(r"<html[^>]*\blang=[\"']?([A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*)", re.IGNORECASE)

_TAGS = set(nh3.ALLOWED_TAGS) - {"area", "map"}
_ATTRIBUTES = {**{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
               "*": {"style", "title", "lang", "dir", "align"}}
_STYLE_PROPERTIES = {
    "color", "background", "background-color", "font", "font-family", "font-size", "font-style", "font-weight",
    "line-height", "text-align", "text-decoration", "white-space", "margin", "margin-top", "margin-bottom",
    "margin-left", "margin-right", "padding", "border", "border-left", "border-radius", "display", "max-width",
    "width", "height",
}


@dataclass(frozen=True)
class MailSummary:
    """One line of the mailbox: enough to pick a mail."""

    id: str
    date: dt.datetime | None
    sender: str
    to: str
    subject: str
    #: The language the mail says it is in (``<html lang>`` of its HTML part), for ``lang`` on the page.
    lang: str | None


@dataclass(frozen=True)
class MailView:
    """One mail as the mailbox shows it. ``text`` is a list of ``(text, is_link)`` segments."""

    summary: MailSummary
    text: list[tuple[str, bool]] | None
    html: str | None


def _files(path: str) -> dict[str, os.DirEntry]:
    """Key -> file of every mail in the Maildir (``new/`` and ``cur/``; names after ``:`` are flags)."""
    files = {}
    for folder in ("new", "cur"):
        try:
            entries = list(os.scandir(os.path.join(path, folder)))
        except OSError:  # no Maildir (yet)
            continue
        for entry in entries:
            if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                files[entry.name.split(":", 1)[0]] = entry
    return files


def _read(entry: os.DirEntry):
    with open(entry.path, "rb") as fh:
        return message_from_bytes(fh.read(), policy=policy.default)


def _summary(key: str, message) -> MailSummary:
    date = None
    header = message["Date"]
    if header is not None:
        date = getattr(header, "datetime", None)
    return MailSummary(id=key, date=date, sender=str(message["From"] or ""), to=str(message["To"] or ""),
                       subject=str(message["Subject"] or ""), lang=_language(message))


def _language(message) -> str | None:
    html = message.get_body(("html",))
    match = _HTML_LANG.search(html.get_content()) if html is not None else None
    return match.group(1) if match else None


def _sort_key(summary: MailSummary, stored_ns: int):
    at = summary.date
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return (at.timestamp() if at is not None else stored_ns / 1e9, stored_ns, summary.id)


def list_mails(path: str, *, limit: int = 200) -> list[MailSummary]:
    """The newest ``limit`` mails of the Maildir at ``path``, newest first (by Date, then by when stored).

    Only the ``limit`` most recently stored files are read, so a Maildir that a benchmark
    filled with thousands of mails still lists at once.
    """
    stored = []
    for key, entry in _files(path).items():
        try:
            stored.append((entry.stat(follow_symlinks=False).st_mtime_ns, key, entry))
        except OSError:  # removed meanwhile
            continue
    stored.sort(key=lambda item: item[:2], reverse=True)
    found = []
    for stored_ns, key, entry in stored[:limit]:
        try:
            summary = _summary(key, _read(entry))
        except OSError:
            continue
        found.append((_sort_key(summary, stored_ns), summary))
    found.sort(key=lambda item: item[0], reverse=True)
    return [summary for _, summary in found[:limit]]


def read_mail(path: str, mail_id: str) -> MailView | None:
    """The mail with this id, parsed and made safe to show; ``None`` for any id the Maildir does not list."""
    if not isinstance(mail_id, str) or not KEY.match(mail_id):
        return None
    entry = _files(path).get(mail_id)
    if entry is None:
        return None
    try:
        message = _read(entry)
    except OSError:
        return None
    text_part, html_part = message.get_body(("plain",)), message.get_body(("html",))
    text = text_part.get_content() if text_part is not None else None
    html = html_part.get_content() if html_part is not None else None
    return MailView(summary=_summary(mail_id, message), text=text_segments(text) if text is not None else None,
                    html=sanitize(html) if html is not None else None)


def text_segments(text: str) -> list[tuple[str, bool]]:
    """``text`` cut into ``(piece, is_link)``: the links of a text part, to be shown clickable."""
    segments, at = [], 0
    for match in _URL.finditer(text):
        if match.start() > at:
            segments.append((text[at:match.start()], False))
        segments.append((match.group(0), True))
        at = match.end()
    if at < len(text):
        segments.append((text[at:], False))
    return segments


def sanitize(html: str) -> str:
    """The HTML part without anything active; links open in the top window (the frame
    showing it is sandboxed, and our pages refuse to be framed)."""
    return nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                     filter_style_properties=_STYLE_PROPERTIES, strip_comments=True,
                     link_rel="noopener noreferrer", set_tag_attribute_values={"a": {"target": "_top"}})
