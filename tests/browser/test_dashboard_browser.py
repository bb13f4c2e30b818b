"""The dashboard in Debian's Chromium: signed in through its form, with JavaScript off, every page has
no axe-core violation (charts, legends and opened data tables included), fits a 375 px screen, and loads
nothing from anywhere but the service. Evidence: ``tests/output/axe/dashboard-*.json`` and screenshots.
SQLite only, like the other browser walks: the page's markup does not depend on the database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import BACKEND

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(BACKEND != "sqlite", reason="the browser walk depends on no database feature")]

HERE = Path(__file__).resolve().parent
AXE = HERE / "vendor" / "axe-core" / "axe.min.js"
OUTPUT = HERE.parent / "output"


def _audit(page, name: str) -> None:
    """axe-core on the page as shown; the result is kept, and a violation fails the test."""
    for folder in ("axe", "screenshots"):
        (OUTPUT / folder).mkdir(parents=True, exist_ok=True)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    violations = [{"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]]}
                  for v in result["violations"]]
    (OUTPUT / "axe" / f"dashboard-{name}.json").write_text(json.dumps(
        {"page": name, "axe": result["testEngine"]["version"], "violations": violations}, indent=2))
    assert violations == [], (name, violations)
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        if width == 375:
            assert page.evaluate("document.documentElement.scrollWidth") <= width, name
        page.screenshot(path=str(OUTPUT / "screenshots" / f"dashboard-{name}-{width}.png"), full_page=True)


def _walk(page, site, account, list_id, *, audit) -> list:
    """Sign in (badly, then well), the lists, the funnel with its tables open, a range, sign-out."""
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{site.url}/dashboard")
    expect(page.locator("h1")).to_have_text("Sign in to the dashboard")
    audit(page, "sign-in")

    page.fill("#api_key", "fm_" + "q" * 43)
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("That key cannot sign in")
    audit(page, "sign-in-refused")

    page.fill("#api_key", account.key)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Your lists")
    audit(page, "lists")

    page.click("text=Trail News")
    expect(page.locator("h1")).to_contain_text("Trail News")
    assert page.locator("svg[role=img]").count() >= 1  # charts of empty series say so in words
    for summary in page.locator("details > summary").all():
        summary.click()  # <details> opens by itself, without JavaScript
    assert page.locator("details[open] table").count() == page.locator("details").count()
    audit(page, "funnel")

    page.select_option("#days", "90")
    page.click("text=Show")
    expect(page.locator("#days")).to_have_value("90")

    page.click("text=Sign out")
    expect(page.locator("h1")).to_have_text("Sign in to the dashboard")
    assert page.goto(f"{site.url}/dashboard/lists/{list_id}").status == 401
    return requests


@pytest.fixture
def funnel_list(create_list, subscribe, worker):
    lst = create_list(name="Trail News")
    for n in range(3):
        assert subscribe(lst["id"], email=f"walker{n}@example.com").status_code == 202
    worker.drain()
    return lst


def test_dashboard_pages_pass_axe(site, account, funnel_list, new_page):
    """Each dashboard page passes axe-core, fits 375 px, and every request stays on the service."""
    page = new_page(bypass_csp=True)  # axe's script is not ours: the CSP would refuse it
    requests = _walk(page, site, account, funnel_list["id"], audit=_audit)
    assert requests and all(url.startswith(site.url + "/") for url in requests), requests


def test_dashboard_works_without_javascript(site, account, funnel_list, new_page):
    """The same walk with JavaScript off: forms, data tables and sign-out need no script."""
    page = new_page(java_script_enabled=False)
    _walk(page, site, account, funnel_list["id"], audit=lambda page, name: None)
