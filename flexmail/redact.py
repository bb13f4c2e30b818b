"""A logging filter that keeps addresses, IPs and tokens out of every log line, and
keeps every record on its own line.

Code logs ids and address hashes; this filter is the safety net for what slips through
(a library's message, an exception text), so it rewrites the final formatted text.

Control characters are escaped (a line feed becomes the two characters backslash, n): a ``%0a``
in a URL path, which werkzeug's and gunicorn's access logs print decoded, cannot start a
forged line. A traceback keeps its lines, each indented, so no line of it can pass for a
record of its own either.
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


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_one(match: re.Match) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape_controls(text: str) -> str:
    """``text`` on one line: every control character (line breaks included) escaped."""
    return _CONTROL.sub(_escape_one, text)


def _indented_lines(text: str) -> str:
    """A multi-line text (a traceback) with control characters escaped within each line and
    every line indented, so none of them starts like a log record."""
    return "\n".join("  " + escape_controls(line) for line in text.split("\n"))


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
    record.msg = escape_controls(redact(message))
    record.args = None
    if record.exc_info:
        # Exception texts carry SQL parameters, SMTP replies... format and scrub them now,
        # and drop the live exception so no handler formats it again in clear.
        record.exc_text = _indented_lines(redact(logging.Formatter().formatException(record.exc_info)))
        record.exc_info = None
    if record.stack_info:
        record.stack_info = _indented_lines(redact(record.stack_info))
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
