"""Text that may be stored or shown: no NUL, no other control characters.

PostgreSQL cannot store NUL in a text column, lone surrogates cannot be encoded as UTF-8,
and the other C0/C1 controls have no place in a name, a reason or an address. Tab, line
feed and carriage return are text (a note has lines) and stay allowed here; fields that
must be one line refuse line breaks themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
MESSAGE = "Control characters (NUL and the like) are not allowed."


def has_control_characters(text: str) -> bool:
    """True when ``text`` holds a character that no text field may hold."""
    return _CONTROL.search(text) is not None


def holds_control_characters(value) -> bool:
    """True when a string anywhere in ``value`` (dict keys included) holds one."""
    if isinstance(value, str):
        return has_control_characters(value)
    if isinstance(value, Mapping):
        return any(holds_control_characters(k) or holds_control_characters(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):  # 100,000 addresses: one search, not 100,000
            return has_control_characters("\n".join(value))
        return any(holds_control_characters(v) for v in value)
    return False


def control_character_fields(items: Iterable[tuple]) -> list[str]:
    """The names among ``(name, value)`` pairs whose name or value holds a control character."""
    bad = []
    for name, value in items:
        if holds_control_characters(name) or holds_control_characters(value):
            bad.append(name if isinstance(name, str) and not has_control_characters(name) else "_schema")
    return bad
