"""Spreadsheet-safe CSV cells (OWASP CSV injection, standards J1-J4).

A cell that a spreadsheet would read as a formula (starting with ``= + - @``, TAB, CR,
LF or NUL) gets a leading ``'``. So that the escape can be undone exactly, a cell that
already starts with ``'`` gets one more. ``unescape`` reverses it; JSON exports need
neither.
"""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\0", "'")


def escape(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def unescape(text: str) -> str:
    return text[1:] if text.startswith("'") else text
