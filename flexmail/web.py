"""Web-layer safety that holds for every route: bounded ids, bounded JSON, security headers.

- ``<int:...>`` in any URL rule is bounded to the range of our integer columns, so an id
  beyond it is a 404 (no route), never a database overflow (SQLite) or out-of-range
  error (PostgreSQL int4).
- A JSON body nested deeper than ``MAX_JSON_DEPTH`` or holding a number longer than
  ``MAX_NUMBER_DIGITS`` is refused with 422 before any parser sees it (Python's parser
  raises RecursionError at about 1,000 levels, a 2 KB body, and ValueError past 4,300 digits).
- Every response, whatever produced it (API, docs, static files, error pages, redirects),
  carries the security headers; HSTS when the public URL is https.
"""

from __future__ import annotations

import re

from flask import Request, current_app
from werkzeug.exceptions import UnprocessableEntity
from werkzeug.routing import IntegerConverter

#: Our id columns are INTEGER: 32-bit signed on PostgreSQL. Nothing above exists.
MAX_ID = 2**31 - 1
MAX_JSON_DEPTH = 32
MAX_NUMBER_DIGITS = 100

#: Pages and JSON: nothing is loaded from anywhere but us, nothing frames us.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HSTS = "max-age=31536000"


def _up_to(limit: str) -> str:
    """A regular expression for the decimal numbers 0..``limit`` (leading zeros allowed)."""
    options = [rf"[0-9]{{1,{len(limit) - 1}}}"] if len(limit) > 1 else []
    for i, digit in enumerate(limit):
        rest = len(limit) - i - 1
        if digit != "0":
            low = f"[0-{int(digit) - 1}]" if digit != "1" else "0"
            options.append(limit[:i] + low + (f"[0-9]{{{rest}}}" if rest else ""))
    options.append(limit)
    return "(?:" + "|".join(options) + ")"


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` limited to 0..MAX_ID, in ASCII digits.

    The bound is in the regular expression, not only in ``to_python``: werkzeug answers 405
    when a value passes a rule's regex but fails its conversion on a path that has rules
    for other methods, and a value that matches no rule is a plain 404 on every method.
    """

    regex = _up_to(str(MAX_ID))

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):  # noqa: A002 (werkzeug's names)
        if max is None or max > MAX_ID:
            max = MAX_ID  # noqa: A001
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)
        self.regex = _up_to(str(MAX_ID))  # signed=True would have set werkzeug's own


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_LONG_NUMBER = re.compile(rb"\d{%d}" % (MAX_NUMBER_DIGITS + 1))
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def json_problem(data: bytes) -> str | None:
    """Why ``data`` (a JSON text) must not be parsed, or ``None``.

    Counts are done with bytes operations, so a 16 MB bulk body costs milliseconds: the
    strings are cut out first (brackets and digits inside them do not count), then every
    pass removes the innermost ``[]``/``{}`` pairs; what is left after MAX_JSON_DEPTH passes
    is deeper than that (or unbalanced).
    """
    openers = data.count(b"[") + data.count(b"{")
    long_number = _LONG_NUMBER.search(data) is not None
    if openers <= MAX_JSON_DEPTH and not long_number:
        return None
    bare = _JSON_STRING.sub(b'""', data)
    if long_number and _LONG_NUMBER.search(bare):
        return f"A number has more than {MAX_NUMBER_DIGITS} digits."
    brackets = bare.translate(None, _NOT_BRACKET).replace(b"{", b"[").replace(b"}", b"]")
    for _ in range(MAX_JSON_DEPTH):
        shorter = brackets.replace(b"[]", b"")
        if shorter == brackets:
            break
        brackets = shorter
    if brackets:  # deeper than the limit, or unbalanced (which no parser should recurse into)
        return f"JSON nested deeper than {MAX_JSON_DEPTH} levels, or unbalanced."
    return None


class FlexmailRequest(Request):
    """Checks a JSON body the first time anyone reads it (webargs, ``get_json``, a hook).

    The check runs when the body is read, not before the view, so routes that raise
    ``max_content_length`` for themselves (bulk suppressions) keep working.
    """

    _json_checked = False

    def get_data(self, cache=True, as_text=False, parse_form_data=False):
        data = super().get_data(cache=cache, as_text=False, parse_form_data=parse_form_data)
        if not self._json_checked:
            self._json_checked = True
            if data.lstrip()[:1] in (b"[", b"{"):
                problem = json_problem(data)
                if problem:
                    raise UnprocessableEntity(problem)
        return data.decode(errors="replace") if as_text else data


def security_headers(response):
    """Set the security headers on every response; a view's own CSP and X-Frame-Options are
    kept (the API docs page sets a stricter CSP of its own, ``api.docs.CSP``; the development
    mailbox lets its own page frame a mail's HTML part)."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Only the development mailbox's framed mail part sets its own (SAMEORIGIN).
    response.headers.setdefault("X-Frame-Options", "DENY")
    # Token URLs (confirm, unsubscribe, forward) must not leak through Referer; nothing else
    # needs to send one either.
    response.headers["Referrer-Policy"] = "no-referrer"
    if current_app.config["PUBLIC_URL"].startswith("https://"):
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def init_app(app) -> None:
    """Install the converter (before any blueprint adds a rule), request class and headers."""
    app.url_map.converters["int"] = BoundedIntConverter
    app.request_class = FlexmailRequest
    app.after_request(security_headers)
