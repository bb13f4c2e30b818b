"""Small helpers shared by tests."""

from __future__ import annotations

import re


def link_from(message, path: str) -> str:
    """The first http(s) link to ``/path/`` in a message's text part."""
    body = message.get_body(("plain",)).get_content()
    match = re.search(rf"https?://\S+/{path}/\S+", body)
    assert match, f"no /{path}/ link in mail"
    return match.group(0)


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def confirmation_links(message) -> tuple[str, str]:
    """(confirm URL, "this was not me" URL) from a confirmation mail."""
    return link_from(message, "confirm"), link_from(message, "not-me")
