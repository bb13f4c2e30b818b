"""Where mail goes: a Maildir (embedded default) or an SMTP relay (production).

SMTP connections are reused: each thread keeps one open connection per relay URL (a
worker thread sends one mail at a time, so one is its whole pool). A connection that sat
idle longer than ``NOOP_AFTER`` seconds is checked with NOOP first and replaced when the
check fails; after any error that is not a reply to this message (a dropped connection, a
timeout) the connection is closed and the next send opens a new one. A refused recipient
or message leaves the connection usable (smtplib sends RSET itself).
"""

from __future__ import annotations

import mailbox
import re
import smtplib
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: Seconds a pooled connection may sit idle before it is checked with NOOP on reuse.
NOOP_AFTER = 5.0
SMTP_TIMEOUT = 30

_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")


@dataclass(frozen=True)
class Failure:
    """Why a send did not go through, as the outbox records it."""

    #: A 5xx reply to RCPT or DATA: the relay refused this message for good (RFC 5321 4.2.1).
    permanent: bool
    #: The reply code (None when there was no reply: connection refused, timeout...).
    code: int | None
    #: The enhanced status code (RFC 3463) at the start of the reply text, e.g. ``5.1.1``.
    status: str | None
    #: The reply text, or the exception's type name when there was no reply.
    text: str


def failure_of(exc: BaseException) -> Failure:
    """Classify a send error: only a 5xx at RCPT or DATA is permanent; 4xx, a refusal of
    MAIL FROM or of our login (our own configuration), and connection errors are retried."""
    code, reply = None, None
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code, reply = next(iter(exc.recipients.values()))
        permanent = code >= 500
    elif isinstance(exc, smtplib.SMTPDataError):
        code, reply = exc.smtp_code, exc.smtp_error
        permanent = code >= 500
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, reply = exc.smtp_code, exc.smtp_error
        permanent = False
    else:
        return Failure(False, None, None, type(exc).__name__)
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    match = _ENHANCED.match(text)
    return Failure(permanent, code, match.group(1) if match else None, " ".join(text.split())[:500])


#: One writer at a time into any Maildir of this process (see ``MaildirTransport.send_bytes``).
_MAILDIR_LOCK = threading.Lock()


class MaildirTransport:
    def __init__(self, path: str):
        self.path = Path(path)

    def send(self, message: EmailMessage, *, envelope_from: str | None = None) -> None:
        """Store the message as delivered; the envelope sender becomes its Return-Path."""
        self.send_bytes(message.as_bytes(), sender=envelope_from, recipients=[])

    def send_bytes(self, data: bytes, *, sender: str | None, recipients: list[str]) -> None:
        if sender:  # as a delivering MTA does, at the top
            data = f"Return-Path: <{sender}>\r\n".encode() + data
        # mailbox.Maildir names files from the time, the pid and a class counter that threads
        # share unlocked: two worker threads in the same microsecond clash (FileExistsError).
        with _MAILDIR_LOCK:
            mailbox.Maildir(self.path, create=True).add(data)

    def close(self) -> None:
        pass


class _Pool(threading.local):
    def __init__(self):
        #: url -> (connection, monotonic time of last use)
        self.connections: dict[str, tuple[smtplib.SMTP, float]] = {}


_pool = _Pool()


class SMTPTransport:
    """Sends over this thread's pooled connection to the relay at ``url``."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.url = url
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.tls = parts.scheme
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None

    def send(self, message: EmailMessage, *, envelope_from: str | None = None) -> None:
        """``envelope_from`` (MAIL FROM) is where bounces go; default: the From address."""
        sender = envelope_from or getaddresses([message["From"]])[0][1]
        recipients = [addr for _, addr in getaddresses(message.get_all("To", []))]
        self.send_bytes(message.as_bytes(), sender=sender, recipients=recipients)

    def send_bytes(self, data: bytes, *, sender: str, recipients: list[str]) -> None:
        """Send ``data`` as it is. Raises smtplib's errors (see ``failure_of``)."""
        smtp = self._connection()
        options = []
        if any(not a.isascii() for a in [sender, *recipients]):
            options.append("SMTPUTF8")
        try:
            if not data.isascii():  # 8bit parts (UTF-8 text): say so where the relay knows how
                smtp.ehlo_or_helo_if_needed()
                if smtp.has_extn("8bitmime"):
                    options.append("BODY=8BITMIME")
            smtp.sendmail(sender, recipients, data, mail_options=options)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
            if getattr(exc, "smtp_code", 0) == 421:  # the relay is closing the connection
                self.close()
            else:
                _pool.connections[self.url] = (smtp, time.monotonic())
            raise
        except BaseException:
            self.close()
            raise
        _pool.connections[self.url] = (smtp, time.monotonic())

    def _connection(self) -> smtplib.SMTP:
        held = _pool.connections.get(self.url)
        if held is not None:
            smtp, last_used = held
            if time.monotonic() - last_used < NOOP_AFTER:
                return smtp
            try:
                if smtp.noop()[0] == 250:
                    return smtp
            except (smtplib.SMTPException, OSError):
                pass
            self.close()
        smtp = self._connect()
        _pool.connections[self.url] = (smtp, time.monotonic())
        return smtp

    def _connect(self) -> smtplib.SMTP:
        cls = smtplib.SMTP_SSL if self.tls == "smtps" else smtplib.SMTP
        smtp = cls(self.host, self.port, timeout=SMTP_TIMEOUT)
        try:
            if self.tls == "smtp+starttls":
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def close(self) -> None:
        """Drop this thread's connection to the relay (QUIT if it still answers)."""
        held = _pool.connections.pop(self.url, None)
        if held is None:
            return
        try:
            held[0].quit()
        except (smtplib.SMTPException, OSError):
            held[0].close()


def close_pooled() -> None:
    """Close this thread's pooled connections (a worker thread calls this as it stops)."""
    for url in list(_pool.connections):
        SMTPTransport(url).close()


def get_transport(url: str):
    """``maildir:PATH`` or ``smtp://host:port`` (also ``smtps://``, ``smtp+starttls://``)."""
    if url.startswith("maildir:"):
        return MaildirTransport(url[len("maildir:"):])
    if url.split("://", 1)[0] in ("smtp", "smtps", "smtp+starttls"):
        return SMTPTransport(url)
    raise ValueError("FLEXMAIL_MAIL_URL must be maildir:PATH or smtp://host:port")
