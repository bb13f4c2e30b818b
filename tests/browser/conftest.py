"""Browser fixtures: Debian's Chromium driven by Playwright (never ``playwright install``).

``browser`` is one Chromium per session; each test gets fresh contexts. A missing
Chromium (or Playwright) skips locally and fails in CI (``CI=true``), like the services
in ``tests/conftest.py``.
"""

from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
#: Per-action timeout: a broken page fails in seconds instead of Playwright's 30 s.
TIMEOUT_MS = 5_000


def _unavailable(message: str) -> None:
    if CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session."""
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"Chromium is not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"Playwright is not importable ({exc})")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:
        playwright.stop()
        _unavailable(f"Chromium at {CHROMIUM} did not start ({exc})")
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def site(app, live_server):
    """The live server, with the app's links in mails pointing at it (PUBLIC_URL is read at send time)."""
    app.config["PUBLIC_URL"] = live_server.url
    return live_server


@pytest.fixture
def new_page(browser):
    """``new_page(java_script_enabled=True)``: a page in a fresh context, closed after the test."""
    contexts = []

    def make(**options):
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
