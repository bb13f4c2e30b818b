"""The languages our pages and mails are written in, and how one is chosen."""

from __future__ import annotations

#: Languages with a complete catalog (Flexmail serves Belgium and Germany).
SUPPORTED = ("en", "nl", "fr", "de")
DEFAULT = "en"
#: Each language's name in that language, for the page's language switch.
NATIVE_NAMES = {"en": "English", "nl": "Nederlands", "fr": "Français", "de": "Deutsch"}


def supported(tag: str | None) -> str | None:
    """``tag`` reduced to a supported language (``de-AT`` -> ``de``), or ``None``."""
    if not tag or not isinstance(tag, str):
        return None
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in SUPPORTED else None


def choose(*candidates: str | None) -> str:
    """The first supported candidate, else English. An unknown tag never fails a page or mail."""
    for candidate in candidates:
        lang = supported(candidate)
        if lang:
            return lang
    return DEFAULT
