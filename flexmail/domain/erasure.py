"""What counts as personal inside consent event details, for erasure (GDPR Art. 17).

Erasure nulls personal values in place and changes nothing else: the events stay, in
order, with their types, times and the marketer's own wording (consent text, list name,
subjects and digests of what was sent). A value is personal when it sits under a key that
names a person's data, or when it contains the person's address in any letter case.
"""

from __future__ import annotations

#: Detail keys whose values describe the person (never the marketer or the mail).
PERSONAL_KEYS = frozenset({
    "email", "to", "recipient", "recipients", "original_recipient", "final_recipient", "address",
    "name", "first_name", "last_name", "full_name", "display_name", "phone", "ip", "user_agent",
})


def scrub(value, needles: tuple[str, ...]):
    """Return ``(value with personal parts set to None, how many were nulled)``.

    ``needles`` are case-folded forms of the address (normalised and ASCII/IDNA).
    """
    if isinstance(value, dict):
        out, count = {}, 0
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in PERSONAL_KEYS and item is not None:
                out[key], count = None, count + 1
            else:
                out[key], n = scrub(item, needles)
                count += n
        return out, count
    if isinstance(value, list):
        out, count = [], 0
        for item in value:
            cleaned, n = scrub(item, needles)
            out.append(cleaned)
            count += n
        return out, count
    if isinstance(value, str) and contains_address(value, needles):
        return None, 1
    return value, 0


def contains_address(text: str | None, needles: tuple[str, ...]) -> bool:
    if not text:
        return False
    folded = text.casefold()
    return any(n and n in folded for n in needles)
