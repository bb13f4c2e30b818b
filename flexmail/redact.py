"""A logging filter that keeps addresses, IPs and tokens out of every log line.

Code logs ids and address hashes; this filter is the safety net for what slips through
(a library's message, an exception text), so it rewrites the final formatted text.
"""

from __future__ import annotations

import logging
import re

_EMAIL = re.compile(r"[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;:]+")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_IPV6 = re.compile(r"\b(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{0,4}\b|::(?:[0-9a-fA-F]{1,4}:?){1,7}")
# Signed tokens sit in URL paths such as /confirm/<token>; keep the route, drop the token.
_TOKEN_PATH = re.compile(r"(/(?:confirm|not-me|unsubscribe|forward|u)/)[^\s/?\"']+")
_ITSDANGEROUS = re.compile(r"\b[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{10,}\b")


def redact(text: str) -> str:
    """Replace addresses, IPs and tokens in ``text`` by placeholders."""
    text = _TOKEN_PATH.sub(r"\1[token]", text)
    text = _ITSDANGEROUS.sub("[token]", text)
    text = _EMAIL.sub("[email]", text)
    text = _IPV6.sub("[ip]", text)
    return _IPV4.sub("[ip]", text)


class RedactingFilter(logging.Filter):
    """Formats the record once, redacts it and freezes the result into ``msg``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not break logging
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.exc_info = None
        return True


def install(level: int = logging.INFO) -> None:
    """Attach the filter to every handler of the root logger (and add one if none)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
