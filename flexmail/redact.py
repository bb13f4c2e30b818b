"""A logging filter that keeps addresses, IPs and tokens out of every log line.

Code logs ids and address hashes; this filter is the safety net for what slips through
(a library's message, an exception text), so it rewrites the final formatted text.
"""

from __future__ import annotations

import logging
import re

_EMAIL = re.compile(r"[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;:]+")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_IPV6 = re.compile(r"(?<![\w:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|[0-9A-Fa-f:]*::[0-9A-Fa-f:.]*)(?![\w:])")
# Signed tokens sit in URL paths such as /confirm/<token>; keep the route, drop the token.
_TOKEN_PATH = re.compile(r"(/(?:confirm|not-me|unsubscribe|forward|u)/)[^\s/?\"']+")
# itsdangerous: payload.timestamp.signature (timed) or payload.signature; the signature
# is 27 base64url characters (SHA-1 HMAC), which keeps dotted module names out.
_ITSDANGEROUS = re.compile(r"\b[A-Za-z0-9_\-]{2,}\.(?:[A-Za-z0-9_\-]{4,8}\.)?[A-Za-z0-9_\-]{27,}(?![A-Za-z0-9_\-])")


def redact(text: str) -> str:
    """Replace addresses, IPs and tokens in ``text`` by placeholders."""
    text = _TOKEN_PATH.sub(r"\1[token]", text)
    text = _ITSDANGEROUS.sub("[token]", text)
    text = _EMAIL.sub("[email]", text)
    text = _IPV6.sub("[ip]", text)
    return _IPV4.sub("[ip]", text)


def _redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Freeze the redacted message (and traceback text) into the record, once."""
    if getattr(record, "_flexmail_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a broken format string must not break logging
        message = str(record.msg)
    record.msg = redact(message)
    record.args = None
    if record.exc_info:
        # Exception texts carry SQL parameters, SMTP replies... format and scrub them now,
        # and drop the live exception so no handler formats it again in clear.
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        record.exc_info = None
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._flexmail_redacted = True
    return record


_installed = False


def install(level: int = logging.INFO) -> None:
    """Redact every record at creation (a record factory), so it holds for every handler,
    including ones added later (gunicorn's, pytest's); add a stderr handler if none."""
    global _installed
    if not _installed:
        previous = logging.getLogRecordFactory()

        def factory(*args, **kwargs):
            return _redact_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = True
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(level)
