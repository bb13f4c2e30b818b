"""The public double opt-in pages in a real Chromium against the app on a real HTTP server.

Mail security gateways (Safe Links and friends) open links in a scripted browser seconds
after delivery, so the browser is the only honest way to check standards G3-G5: a page
load alone never confirms before the click gate, the person's click always does, and after
the gate the page's own same-origin script may confirm in one step.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from flexmail import clock
from tests.helpers import link_from

pytestmark = pytest.mark.browser

#: In both "Thank you: you are subscribed ..." and "You are subscribed ... already confirmed".
SUBSCRIBED = re.compile("you are subscribed", re.IGNORECASE)
#: How long a gateway-like visit lingers on the page before we look at the state.
LINGER_MS = 1_500


@pytest.fixture
def signup(site, client, account, create_list, subscribe, worker, maildir):
    """Sign up through the API with the clock frozen at the send time; returns (subscription id, mail)."""

    def make(email="Reader@Example.com", **list_overrides):
        clock.freeze(clock.now())
        lst = create_list(**list_overrides)
        response = subscribe(lst["id"], email=email)
        assert response.status_code == 202, response.json
        worker.drain()
        mail = maildir()[-1]
        assert link_from(mail, "confirm").startswith(site.url + "/confirm/")
        return response.json["subscription"]["id"], mail

    return make


def _after_sending(app, seconds: float) -> None:
    """Move the frozen clock to ``seconds`` after the confirmation mail was sent."""
    clock.freeze(clock.now() + dt.timedelta(seconds=seconds))


def _past_gate(app) -> None:
    _after_sending(app, app.config["CONFIRM_CLICK_GATE"] + 1)


def _detail(client, account, subscription_id) -> dict:
    response = client.get(f"/api/v1/subscriptions/{subscription_id}", headers=account.headers)
    assert response.status_code == 200, response.json
    return response.json


def _confirmations(detail) -> list[dict]:
    return [e for e in detail["events"] if e["type"] == "confirmed"]


def _linger(page) -> None:
    """Behave like a scanner: let the page load, settle and run whatever it wants to run."""
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(LINGER_MS)
    page.wait_for_load_state("networkidle")


def test_scripted_visit_after_click_gate_confirms_in_one_click(app, client, account, signup, new_page):
    """Opened after the click gate with JavaScript, the link confirms by itself (method "auto")."""
    sub_id, mail = signup()
    _past_gate(app)
    page = new_page()
    page.goto(link_from(mail, "confirm"))
    expect(page.locator("#outcome")).to_contain_text(SUBSCRIBED)
    assert page.locator("#confirm-button").count() == 0

    detail = _detail(client, account, sub_id)
    assert detail["status"] == "subscribed"
    (confirmed,) = _confirmations(detail)
    assert confirmed["details"]["method"] == "auto"
    assert confirmed["ip"] == "127.0.0.1"
    assert confirmed["user_agent"] == page.evaluate("navigator.userAgent")
    fetched = [e for e in detail["events"] if e["type"] == "link_fetched"]
    assert [e["details"]["before_click_gate"] for e in fetched] == [False]


def test_scripted_visit_before_click_gate_changes_nothing_until_the_click(
        app, client, account, signup, new_page):
    """A scripted visit seconds after sending (a security gateway) leaves the signup pending; the button confirms."""
    sub_id, mail = signup()
    _after_sending(app, 5)
    page = new_page()
    scripts = []
    page.on("response", lambda r: scripts.append(r.status) if r.url.endswith("/static/confirm.js") else None)
    page.goto(link_from(mail, "confirm"))
    _linger(page)

    assert scripts == [200], "the page script must have loaded, or this proves nothing about JavaScript"
    assert _detail(client, account, sub_id)["status"] == "pending"
    assert page.locator("#confirm-form").get_attribute("data-autosubmit") is None
    expect(page.locator("#confirm-button")).to_be_visible()

    page.click("#confirm-button")
    expect(page.locator("#outcome")).to_contain_text(SUBSCRIBED)
    detail = _detail(client, account, sub_id)
    assert detail["status"] == "subscribed"
    (confirmed,) = _confirmations(detail)
    assert confirmed["details"]["method"] == "button"
    fetched = [e for e in detail["events"] if e["type"] == "link_fetched"]
    assert [e["details"]["before_click_gate"] for e in fetched] == [True]


def test_without_javascript_the_page_waits_for_the_button(app, client, account, signup, new_page):
    """Without JavaScript, even after the gate, loading the page does not confirm; the button does."""
    sub_id, mail = signup()
    _past_gate(app)
    page = new_page(java_script_enabled=False)
    page.goto(link_from(mail, "confirm"))
    _linger(page)

    # The server offered the auto-submit; only the missing script keeps it from happening.
    assert page.locator("#confirm-form").get_attribute("data-autosubmit") == "1"
    assert _detail(client, account, sub_id)["status"] == "pending"

    page.click("#confirm-button")
    expect(page.locator("#outcome")).to_contain_text(SUBSCRIBED)
    detail = _detail(client, account, sub_id)
    assert detail["status"] == "subscribed"
    assert [e["details"]["method"] for e in _confirmations(detail)] == ["button"]


def test_link_from_the_delivered_mail_confirms_with_a_click(app, client, account, signup, new_page, tmp_path):
    """The confirm link exactly as written in the Maildir message leads, with one click, to the confirmed page."""
    sub_id, mail = signup()
    url = link_from(mail, "confirm")
    _after_sending(app, 60)
    page = new_page()
    response = page.goto(url)
    assert response.status == 200
    expect(page.locator("h1")).to_contain_text("Confirm your subscription to Weekly News")
    expect(page.locator(".consent")).to_contain_text("Send me the weekly Acme newsletter")

    page.click("#confirm-button")
    expect(page.locator("#outcome")).to_have_text("Thank you: you are subscribed to Weekly News")
    shot = tmp_path / "confirmed.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _detail(client, account, sub_id)["status"] == "subscribed"

    # Opening the same link again (a second device, a late scanner) shows success and records nothing.
    page.goto(url)
    expect(page.locator("#outcome")).to_contain_text(SUBSCRIBED)
    expect(page.locator("main")).to_contain_text("Your subscription was already confirmed")
    assert len(_confirmations(_detail(client, account, sub_id))) == 1


def test_hosted_signup_form_then_confirm_from_the_mail(app, site, client, account, create_list, worker, maildir,
                                                       new_page):
    """The hosted form answers neutrally, hides its honeypot from people, and its mail confirms the signup."""
    lst = create_list()
    page = new_page()
    page.goto(f"{site.url}/subscribe/{lst['id']}")
    honeypot = page.locator("#website")
    # Off-screen and out of the keyboard path: a person can neither see nor reach it.
    # (Playwright's is_visible() only checks for a box and visibility, so it calls an
    # off-screen element "visible"; the viewport test is the one that matches a person.)
    expect(honeypot).not_to_be_in_viewport()
    assert honeypot.get_attribute("tabindex") == "-1"
    assert page.locator(".hp").get_attribute("aria-hidden") == "true"
    page.focus("#email")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.type") == "submit"

    page.fill("#email", "form.reader@example.com")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Check your inbox")
    expect(page.locator("#outcome")).to_contain_text("You are not subscribed until you click that link")

    worker.drain()
    (mail,) = maildir()
    assert mail["To"].addresses[0].addr_spec == "form.reader@example.com"
    page.goto(link_from(mail, "confirm"))
    page.click("#confirm-button")
    expect(page.locator("#outcome")).to_contain_text(SUBSCRIBED)

    items = client.get(f"/api/v1/lists/{lst['id']}/subscriptions", headers=account.headers).json["items"]
    (sub,) = items
    detail = _detail(client, account, sub["id"])
    assert detail["status"] == "subscribed"
    requested = detail["events"][0]
    assert requested["type"] == "subscribe_requested"
    assert requested["source"] == "form" and requested["ip"] == "127.0.0.1"
    assert requested["details"]["form_source"] == f"hosted-form:/subscribe/{lst['id']}"


def test_hosted_form_filled_honeypot_sends_nothing(site, client, account, create_list, worker, maildir, new_page):
    """A bot that fills the honeypot gets the same neutral page and no mail is sent."""
    lst = create_list()
    page = new_page()
    page.goto(f"{site.url}/subscribe/{lst['id']}")
    page.fill("#email", "bot.target@example.com")
    page.fill("#website", "http://spam.example")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Check your inbox")
    worker.drain()
    assert maildir() == []
    assert client.get(f"/api/v1/lists/{lst['id']}/subscriptions", headers=account.headers).json["items"] == []


def test_not_me_link_cancels_the_signup(app, client, account, signup, new_page):
    """Opening "this was not me" and pressing its button cancels the pending signup."""
    sub_id, mail = signup()
    _past_gate(app)
    page = new_page()
    page.goto(link_from(mail, "not-me"))
    _linger(page)
    assert _detail(client, account, sub_id)["status"] == "pending"

    page.click("#not-me-button")
    expect(page.locator("#outcome")).to_have_text("Thank you: we will not write to you about this")
    detail = _detail(client, account, sub_id)
    assert detail["status"] == "cancelled"
    assert [e["type"] for e in detail["events"]][-1] == "cancelled"

    # The confirm link of the same mail can no longer confirm, even with a script and after the gate.
    page.goto(link_from(mail, "confirm"))
    expect(page.locator("#outcome")).to_contain_text("can no longer be used")
    assert _detail(client, account, sub_id)["status"] == "cancelled"


def test_confirm_pages_raise_no_csp_violation(app, client, account, signup, new_page):
    """The confirm page, its script and its auto-submit all run under the strict CSP without a violation."""
    sub_id, mail = signup()
    url = link_from(mail, "confirm")
    page = new_page()
    console, errors = [], []
    page.on("console", lambda m: console.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Runs before the page's own scripts and is not subject to the page's CSP.
    page.add_init_script("""
        window.__csp = [];
        document.addEventListener("securitypolicyviolation",
            e => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
    """)

    def violations():
        return [t for t in console if "Content Security Policy" in t] + page.evaluate("window.__csp")

    _after_sending(app, 5)  # the page with its script, no auto-submit
    response = page.goto(url)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    _linger(page)
    assert violations() == [] and errors == []

    _past_gate(app)  # the script submits the form: form-action must allow it
    page.goto(url)
    expect(page.locator("#outcome")).to_contain_text(SUBSCRIBED)
    _linger(page)
    assert violations() == [] and errors == []
    assert _detail(client, account, sub_id)["status"] == "subscribed"

    # The watch is live: an inline script, which the policy forbids, is reported.
    page.evaluate("""() => { const s = document.createElement("script");
                             s.textContent = "window.__ran = 1"; document.body.append(s); }""")
    page.wait_for_timeout(200)
    assert page.evaluate("window.__ran") is None
    assert any("Content Security Policy" in t for t in console)
    assert any(v.startswith("script-src") for v in page.evaluate("window.__csp"))


def test_confirm_redirect_url_is_reached_by_the_browser(client, account, signup, new_page):
    """With a list's confirm_redirect_url, the person's click ends on the marketer's page."""
    sub_id, mail = signup(confirm_redirect_url="https://thanks.example/welcome")
    page = new_page()
    # The marketer's site, served by the browser itself: no network needed.
    page.route("https://thanks.example/**",
               lambda route: route.fulfill(body="<h1 id=thanks>Welcome aboard</h1>", content_type="text/html"))
    page.goto(link_from(mail, "confirm"))
    page.click("#confirm-button")
    expect(page.locator("#thanks")).to_have_text("Welcome aboard", timeout=2_000)
    assert page.url == "https://thanks.example/welcome"
    assert _detail(client, account, sub_id)["status"] == "subscribed"
