"""Helpers for the dashboard tests: signing in like a browser, and a list with a mix of events."""

from __future__ import annotations

import re

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: bytes | str) -> str:
    text = html.decode() if isinstance(html, bytes) else html
    return CSRF.search(text).group(1)


def sign_in(client, key: str, *, lang: str | None = None):
    """Fetch the sign-in page (for its CSRF token) and post the key; returns the answer."""
    page = client.get("/dashboard", query_string={"lang": lang} if lang else None)
    assert page.status_code in (200, 401), page.status_code
    return client.post("/dashboard/sign-in", data={"csrf_token": csrf_of(page.data), "api_key": key})


def session_cookie(client):
    return client.get_cookie("session")
