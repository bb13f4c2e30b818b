"""The forward form in a real Chromium against the app on a real HTTP server.

The page runs under a strict CSP (no inline script or style), carries a CSRF token in a
session cookie and hides a honeypot by CSS: only a browser shows that all of it works
together for a person, and that loading the page alone counts nothing.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.forward_support import FRIENDS, mails_to, setup_forwarding, stats
from tests.helpers import link_from

pytestmark = pytest.mark.browser


@pytest.fixture
def fwd(app, site, client, account, create_list, subscribe, worker, maildir):
    """A confirmed subscriber's forward link, pointing at the live server."""
    app.config["FORWARD_RATE_LIMIT"] = "50 per minute"  # a counter of this test's own
    forwarding = setup_forwarding(client, account, create_list, subscribe, worker, maildir)
    assert forwarding.forward_url.startswith(site.url + "/forward/")
    return forwarding


def _watch_csp(page) -> list[str]:
    problems = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def test_person_forwards_to_two_friends_in_chromium(client, account, fwd, worker, maildir, new_page):
    """Filling in two friends, a name and a note and pressing Send mails both and counts one forward."""
    page = new_page()
    problems = _watch_csp(page)
    page.goto(fwd.forward_url)
    page.wait_for_load_state("networkidle")
    assert stats(client, account, fwd.campaign_id) == {"forwards": 0, "forwarded_recipients": 0}
    honeypot = page.locator("#website").bounding_box()
    assert honeypot is None or honeypot["x"] + honeypot["width"] <= 0  # moved out of sight by our CSS
    assert page.locator("input[name=friend]").count() == 5

    page.fill("#friend-1", FRIENDS[0])
    page.fill("#friend-2", FRIENDS[1])
    page.fill("#sender_name", "Ann")
    page.fill("#note", "You will like this one.")
    page.click("#forward-button")
    expect(page.locator("#outcome")).to_contain_text("Thank you for sharing")

    assert problems == []
    assert stats(client, account, fwd.campaign_id) == {"forwards": 1, "forwarded_recipients": 2}
    worker.drain()
    for friend in FRIENDS[:2]:
        (mail,) = mails_to(maildir(), friend)
        text = mail.get_body(("plain",)).get_content()
        assert "Ann forwarded you this message" in text and "You will like this one." in text


def test_browser_checks_addresses_before_anything_is_sent(client, account, fwd, new_page):
    """The address fields are email inputs: the browser refuses a malformed one and nothing is posted."""
    page = new_page()
    page.goto(fwd.forward_url)
    page.fill("#friend-1", "not an address")
    page.click("#forward-button")
    page.wait_for_timeout(300)
    assert page.url == fwd.forward_url
    assert page.locator("#friend-1").evaluate("el => el.validity.valid") is False
    assert stats(client, account, fwd.campaign_id)["forwards"] == 0


def test_friend_stops_forwards_from_the_mail_link(app, client, account, fwd, worker, maildir, new_page):
    """The friend opens the link in the forwarded mail and presses the button: later forwards skip them."""
    from tests.forward_support import post_forward

    post_forward(client, fwd.path, [FRIENDS[0]])
    worker.drain()
    (mail,) = mails_to(maildir(), FRIENDS[0])
    page = new_page()
    page.goto(link_from(mail, "forward"))
    expect(page.locator("#stop-button")).to_be_visible()
    page.click("#stop-button")
    expect(page.locator("#outcome")).to_contain_text("You will not receive forwarded messages")

    assert post_forward(client, fwd.path, [FRIENDS[0]]).status_code == 200
    worker.drain()
    assert len(mails_to(maildir(), FRIENDS[0])) == 1


def test_client_mode_opens_the_mail_program_without_javascript(client, account, create_list, subscribe, worker,
                                                               maildir, site, new_page):
    """On a client-mode list, with JavaScript off, the page has no address field; its button counts one forward
    and hands the browser a prepared mailto: (303) with no recipient; reloading the page counts nothing."""
    fwd = setup_forwarding(client, account, create_list, subscribe, worker, maildir,
                           list_overrides={"forward_mode": "client"})
    page = new_page(java_script_enabled=False)
    page.goto(fwd.forward_url)
    page.reload()
    assert page.locator("input[type=email], textarea, input[name=friend]").count() == 0
    assert stats(client, account, fwd.campaign_id)["forwards"] == 0
    with page.expect_response(lambda response: "/open?" in response.url) as answer:
        page.click("#open-mail-button")
    assert answer.value.status == 303
    assert answer.value.headers["location"].startswith("mailto:?subject=Fwd%3A%20Our%20autumn%20news&body=")
    assert stats(client, account, fwd.campaign_id) == {"forwards": 1, "forwarded_recipients": 0}
