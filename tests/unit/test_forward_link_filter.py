"""The forward note's link filter judges links after UTS-46 mapping, as a resolver would."""

from __future__ import annotations

import pytest

from flexmail.domain.forwarding import LINK_REMOVED, clean_name, clean_note


@pytest.mark.parametrize("text", [
    "see evil.рф/x now",          # Cyrillic top-level label
    "see evil.рф now",
    "go to evil\uff0ecom please",  # fullwidth full stop
    "go to evil\u3002com please",  # ideographic full stop
    "go to evil\uff61com please",  # halfwidth ideographic full stop
    "\uff45\uff56\uff49\uff4c\uff0e\uff43\uff4f\uff4d/x",  # fullwidth letters and dot
    "EVIL.COM",
    "evil.xn--p1ai",
    "пример.испытание/путь",
    "悪い。中国/x",                  # ideographic stop, but a path follows: a link
])
def test_links_hidden_behind_unicode_are_removed(text):
    """Hosts that only become hosts after UTS-46 mapping are removed like ASCII ones."""
    cleaned = clean_note(text)
    assert LINK_REMOVED in cleaned
    for host_part in ("evil", "ｅｖｉｌ", "рф", "xn--", "пример", "中国/x"):
        assert host_part not in cleaned.replace(LINK_REMOVED, "")


def test_names_are_filtered_the_same_way():
    """The forwarder's name gets the same filter."""
    assert clean_name("Bob evil\u3002com") == f"Bob {LINK_REMOVED}"


@pytest.mark.parametrize("text", [
    "よろしくお願いします。ありがとう",  # Japanese sentences end with the ideographic stop
    "你好。谢谢你的推荐",
    "Thanks, e.g. this one is good",
    "Version 1.2.3 works",
])
def test_ordinary_prose_is_kept(text):
    """Sentences in Chinese or Japanese, abbreviations and version numbers are not links."""
    assert clean_note(text) == text


def test_the_original_text_around_a_link_is_kept():
    """Only the link is replaced; the forwarder's other words stay as typed (not mapped)."""
    assert clean_note("Ｈｉ！ see evil．com, bye") == f"Ｈｉ！ see {LINK_REMOVED}, bye"
