"""Where mail goes: a Maildir (embedded default) or an SMTP relay (production)."""

from __future__ import annotations

import mailbox
import smtplib
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from urllib.parse import unquote, urlsplit


class MaildirTransport:
    def __init__(self, path: str):
        self.path = Path(path)

    def send(self, message: EmailMessage, *, envelope_from: str | None = None) -> None:
        """Store the message as delivered; the envelope sender becomes its Return-Path."""
        data = message.as_bytes()  # the message's own policy (UTF-8 headers if SMTPUTF8)
        if envelope_from:  # as a delivering MTA does, at the top
            data = f"Return-Path: <{envelope_from}>\r\n".encode() + data
        box = mailbox.Maildir(self.path, create=True)
        box.add(data)


class SMTPTransport:
    """One connection per message: simple and robust; a relay does the batching."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.tls = parts.scheme
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None

    def send(self, message: EmailMessage, *, envelope_from: str | None = None) -> None:
        """``envelope_from`` (MAIL FROM) is where bounces go; default: the From address."""
        sender = envelope_from or getaddresses([message["From"]])[0][1]
        recipients = [addr for _, addr in getaddresses(message.get_all("To", []))]
        data = message.as_bytes()
        needs_utf8 = any(not a.isascii() for a in [sender, *recipients])
        cls = smtplib.SMTP_SSL if self.tls == "smtps" else smtplib.SMTP
        with cls(self.host, self.port, timeout=30) as smtp:
            if self.tls == "smtp+starttls":
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.sendmail(sender, recipients, data, mail_options=["SMTPUTF8"] if needs_utf8 else [])


def get_transport(url: str):
    """``maildir:PATH`` or ``smtp://host:port`` (also ``smtps://``, ``smtp+starttls://``)."""
    if url.startswith("maildir:"):
        return MaildirTransport(url[len("maildir:"):])
    if url.split("://", 1)[0] in ("smtp", "smtps", "smtp+starttls"):
        return SMTPTransport(url)
    raise ValueError("FLEXMAIL_MAIL_URL must be maildir:PATH or smtp://host:port")
