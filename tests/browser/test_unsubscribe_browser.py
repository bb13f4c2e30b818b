"""The unsubscribe page in a real Chromium against the app on a real HTTP server: loading it
with JavaScript changes nothing (scanners run scripts, standards G4), the person's click does,
"stop all mail from this sender" reaches every list of the sender, and the undo is a new
double opt-in that only the fresh confirmation mail completes."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.helpers import link_from
from tests.unsubscribe_support import confirm_signup, detail, snapshot

pytestmark = pytest.mark.browser

LINGER_MS = 1_000


@pytest.fixture
def subscribed(site, client, account, create_list, subscribe, worker, maildir):
    """A person confirmed on two lists of one sender: ``(unsubscribe URL of the first, [sub ids])``."""
    first, second = create_list(), create_list(name="Offers")
    ids = [confirm_signup(client, subscribe, worker, maildir, lst["id"]) for lst in (first, second)]
    url = detail(client, account, ids[0])["unsubscribe_url"]
    assert url.startswith(site.url + "/unsubscribe/")
    return url, ids, first


def _statuses(client, account, ids):
    return [detail(client, account, i)["status"] for i in ids]


def _errors_of(page) -> list[str]:
    """Script errors and Content-Security-Policy refusals the page causes (a missing favicon is no error)."""
    errors = []
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def test_stop_all_mail_then_undo_leads_to_a_new_confirmation(app, client, account, subscribed, new_page, worker,
                                                             maildir, create_list, subscribe):
    """A scripted visit changes nothing; ticking "stop all mail" with a reason and clicking unsubscribes every
    list of the sender; the undo sends a fresh confirmation whose click subscribes the list again."""
    url, ids, first = subscribed
    before = snapshot(app)
    page = new_page()
    errors = _errors_of(page)
    page.goto(url)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(LINGER_MS)
    assert snapshot(app) == before
    expect(page.locator("h1")).to_have_text("Unsubscribe from Weekly News")
    expect(page.locator("main")).to_contain_text("R•••@example.com")
    expect(page.locator("main")).not_to_contain_text("Reader@example.com")

    page.check("#all-lists")
    page.check("#reason-too_many")
    page.click("#unsubscribe-button")
    expect(page.locator("#outcome")).to_have_text("You are unsubscribed: no more mail from Acme News")
    assert page.url == url  # answered in place, no redirect
    assert _statuses(client, account, ids) == ["unsubscribed", "unsubscribed"]
    unsubscribed = [e for e in detail(client, account, ids[0])["events"] if e["type"] == "unsubscribed"]
    assert unsubscribed[0]["details"]["method"] == "page" and unsubscribed[0]["ip"] == "127.0.0.1"
    reasons = client.get(f"/api/v1/lists/{first['id']}/unsubscribe-reasons", headers=account.headers).json
    assert reasons["reasons"]["too_many"] == 1
    third = create_list(name="Events")
    assert subscribe(third["id"], email="reader@example.com").status_code == 409

    page.click("#undo-button")
    expect(page.locator("#outcome")).to_have_text("Check your inbox")
    assert _statuses(client, account, ids) == ["pending", "unsubscribed"]
    worker.drain()
    mail = maildir()[-1]
    assert mail["Subject"] == "Please confirm your subscription to Weekly News"
    page.goto(link_from(mail, "confirm"))
    page.click("#confirm-button")
    expect(page.locator("#outcome")).to_contain_text("you are subscribed to Weekly News")
    assert _statuses(client, account, ids) == ["subscribed", "unsubscribed"]
    assert errors == []  # nothing blocked by the CSP, no script errors


def test_without_javascript_the_button_leaves_only_this_list(app, client, account, subscribed, new_page):
    """Without JavaScript the page works the same; the plain button leaves this list and keeps the other."""
    url, ids, _ = subscribed
    page = new_page(java_script_enabled=False)
    page.goto(url)
    assert _statuses(client, account, ids) == ["subscribed", "subscribed"]
    page.click("#unsubscribe-button")
    expect(page.locator("#outcome")).to_have_text("You are unsubscribed from Weekly News")
    assert _statuses(client, account, ids) == ["unsubscribed", "subscribed"]
    page.goto(url)
    expect(page.locator("#outcome")).to_have_text("You are not subscribed to Weekly News")
    assert _statuses(client, account, ids) == ["unsubscribed", "subscribed"]
