"""Chromium walks signup -> mail -> confirm -> forward -> unsubscribe -> undo in en, nl, fr and de: every page
is in the list's language only (``<html lang>`` included), has no axe-core violation, fits a 375 px screen,
and is photographed at 375 and 1280 px; the walk also works without JavaScript and without CSS.

The mail step goes through the development mailbox (``/dev/mail``, on in these tests' development mode), as a
newcomer without a mail account would: the person opens the mail there and clicks the link inside the rendered
HTML part. The mailbox pages are English (a developer's tool) and mark the mail's own texts with its ``lang``.

Outputs (a CI artifact folder, gitignored): ``tests/output/screenshots/<lang>-<page>-<width>.png`` and
``tests/output/axe/<lang>-<page>.json``. The walk runs on SQLite only: it exercises templates, catalogs
and the browser, which do not depend on the database (the PostgreSQL run covers the same pages through
``tests/public/test_i18n_pages.py``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from playwright.sync_api import expect

from flexmail import clock
from flexmail.domain.languages import SUPPORTED
from tests.branding_support import LogoServer, png
from tests.conftest import BACKEND
from tests.forward_support import create_campaign, forward_url, mails_to
from tests.helpers import link_from
from tests.i18n_support import LIST_NAMES, SENDER, VisibleText, Vocabulary, branded_list, catalog

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(BACKEND != "sqlite", reason="the browser walk depends on no database feature")]

HERE = Path(__file__).resolve().parent
AXE = HERE / "vendor" / "axe-core" / "axe.min.js"
OUTPUT = HERE.parent / "output"
VOCABULARY = Vocabulary.load()
WIDTHS = (375, 1280)


@pytest.fixture
def logos(tmp_path):
    with LogoServer(tmp_path, {"/logo.png": (200, "image/png", png(160, 48), {})}) as server:
        yield server


@pytest.fixture
def app_config(app_config, logos):
    app_config.update(LOGO_CA_FILE=str(logos.cert), LOGO_FETCH_ALLOW_PRIVATE=True, DEV_MODE=True)
    return app_config


def open_mail(page, base: str, email: str, *, audit=None) -> None:
    """Open the newest mail to ``email`` in the development mailbox (``audit``: check both its pages)."""
    page.goto(f"{base}/dev/mail")
    if audit:
        audit(page, "dev-mailbox", lang="en")
    page.locator("table.mailbox tbody tr", has_text=email).first.locator("a").click()
    expect(page.locator("dl.mail-headers")).to_contain_text(email)
    if audit:
        # The HTML part is the mail's, in a sandboxed frame that runs no script (so no axe-core in it either).
        audit(page, "dev-mail", lang="en", axe_options={"iframes": False})


def click_in_mail(page, link_text: str) -> None:
    """Click a link of the HTML part shown in the development mailbox; it opens in the whole window."""
    page.frame_locator("iframe.mail-html").get_by_role("link", name=link_text).click()


def _token_free(url: str) -> str:
    return re.sub(r"/(confirm|not-me|unsubscribe|forward)/[^/?]+", r"/\1/<token>", url)


class Auditor:
    """Checks one page as a person and an accessibility tool see it, and keeps the evidence."""

    def __init__(self, lang: str, label: str = ""):
        self.lang, self.label, self.seen = lang, label, []
        for folder in ("screenshots", "axe"):
            (OUTPUT / folder).mkdir(parents=True, exist_ok=True)

    def __call__(self, page, name: str, *, axe: bool = True, lang: str | None = None,
                 axe_options: dict | None = None) -> None:
        stem = f"{self.label}{self.lang}-{name}"
        lang = lang or self.lang
        self.seen.append(name)
        page.wait_for_load_state("load")  # a click's navigation may be committed but not yet parsed
        expect(page.locator("html")).to_have_attribute("lang", lang)
        visible = VisibleText(page.content())
        assert visible.html_lang == lang, (name, visible.html_lang)
        assert VOCABULARY.foreign_texts(lang, visible) == [], name
        assert page.title().strip(), name
        if axe:
            page.add_script_tag(path=str(AXE))
            options = {"resultTypes": ["violations"], **(axe_options or {})}
            result = page.evaluate("options => axe.run(document, options)", options)
            violations = [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                           "nodes": [n["target"] for n in v["nodes"]]} for v in result["violations"]]
            (OUTPUT / "axe" / f"{stem}.json").write_text(json.dumps(
                {"page": name, "lang": lang, "url": _token_free(page.url), "axe": result["testEngine"]["version"],
                 "violations": violations, "passes": len(result.get("passes", []))}, indent=2))
            assert violations == [], (name, violations)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            if width == 375:  # responsive: nothing wider than a small phone
                assert page.evaluate("document.documentElement.scrollWidth") <= width, name
            page.screenshot(path=str(OUTPUT / "screenshots" / f"{stem}-{width}.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})


@pytest.fixture
def walk_context(new_page):
    """A page whose context lets axe-core's script in (our CSP allows only our own scripts)."""
    def make(lang, **options):
        return new_page(bypass_csp=True, locale=lang, **options)

    return make


@pytest.mark.parametrize("lang", SUPPORTED)
def test_walk_every_page_in_each_language(app, client, account, site, walk_context, worker, maildir, create_list,
                                          logos, lang):
    """Signup, mail, confirm, forward, unsubscribe and undo in ``lang``, through the browser, on every page: only
    ``lang`` text, no axe-core violation, a 375 px layout, screenshots; the mails are in ``lang`` too."""
    strings = catalog(lang)
    lst = branded_list(create_list, lang, logo_url=logos.url("/logo.png"))
    audit = Auditor(lang)
    page = walk_context(lang)
    base = site.url
    email = f"chromium.{lang}@example.com"

    page.goto(f"{base}/subscribe/{lst['id']}")
    expect(page.locator("header .sender")).to_contain_text(SENDER)
    expect(page.locator("header img.logo")).to_have_attribute("src", re.compile(r"^/brand/\d+/logo\?v="))
    audit(page, "subscribe")
    page.fill("#email", email)
    page.locator("form button[type=submit]").click()
    audit(page, "check-inbox")

    worker.drain()
    mail = mails_to(maildir(), email)[-1]
    assert mail["Subject"] == strings["Please confirm your subscription to %(list)s"] % {"list": LIST_NAMES[lang]}
    confirm_url = link_from(mail, "confirm")
    open_mail(page, base, email, audit=audit)
    expect(page.locator("h1")).to_have_text(mail["Subject"])
    click_in_mail(page, strings["Confirm my subscription"])
    expect(page).to_have_url(confirm_url)
    audit(page, "confirm")
    page.click("#confirm-button")
    expect(page.locator("#outcome")).to_contain_text(LIST_NAMES[lang])
    audit(page, "confirmed")

    subscription_id = client.get(f"/api/v1/lists/{lst['id']}/subscriptions",
                                 headers=account.headers).json["items"][0]["id"]
    campaign = create_campaign(client, account, lst["id"], subject=f"{LIST_NAMES[lang]} 7")
    page.goto(forward_url(client, account, subscription_id, campaign["id"]))
    audit(page, "forward")
    page.fill("#friend-1", f"friend.{lang}@example.org")
    page.click("#forward-button")
    audit(page, "forward-sent")
    worker.drain()
    friend_mail = mails_to(maildir(), f"friend.{lang}@example.org")[-1]
    assert friend_mail["Subject"] == strings["Fwd: %(subject)s"] % {"subject": f"{LIST_NAMES[lang]} 7"}
    page.goto(link_from(friend_mail, "forward"))
    audit(page, "forward-stop")
    page.click("#stop-button")
    audit(page, "forward-stopped")

    # The same list switched to client mode: the page opens the person's own mail program.
    client.patch(f"/api/v1/lists/{lst['id']}", json={"forward_mode": "client"}, headers=account.headers)
    page.goto(forward_url(client, account, subscription_id, campaign["id"]))
    audit(page, "forward-client")
    assert page.locator("input[type=email], textarea, input[name=friend]").count() == 0
    with page.expect_response(re.compile(r"/forward/[^/]+/open")) as answer:
        page.click("#open-mail-button")
    assert answer.value.status == 303
    mailto = answer.value.headers["location"]
    assert mailto.startswith("mailto:?subject=") and unquote(mailto).startswith(
        "mailto:?subject=" + strings["Fwd: %(subject)s"] % {"subject": f"{LIST_NAMES[lang]} 7"} + "&body=")
    assert client.get(f"/api/v1/campaigns/{campaign['id']}/stats", headers=account.headers).json["forwards"] == 2

    detail = client.get(f"/api/v1/subscriptions/{subscription_id}", headers=account.headers).json
    page.goto(detail["unsubscribe_url"])
    audit(page, "unsubscribe")
    page.check("#reason-too_many")
    page.click("#unsubscribe-button")
    audit(page, "unsubscribed")
    page.click("#undo-button")
    audit(page, "undo")
    worker.drain()
    again = mails_to(maildir(), email)[-1]
    assert again["Subject"] == mail["Subject"] and again["Message-ID"] != mail["Message-ID"]
    open_mail(page, base, email)
    click_in_mail(page, strings["This was not me"])
    expect(page).to_have_url(link_from(again, "not-me"))
    audit(page, "not-me")
    page.click("#not-me-button")
    audit(page, "not-me-done")

    for name, path in (("bad-link", "/confirm/not-a-token"), ("unsubscribe-bad-link", "/unsubscribe/not-a-token"),
                       ("forward-bad-link", "/forward/not-a-token"), ("error-404", "/no-such-page")):
        page.goto(base + path)  # no list behind these: the browser's language (the context's locale) decides
        audit(page, name)
    clock.freeze(clock.now().replace(year=clock.now().year + 1))
    page.goto(confirm_url)
    audit(page, "expired-link")
    page.click("#renew-button")
    audit(page, "renewed")
    assert len(audit.seen) == 22


def test_switching_language_on_the_page_keeps_it_through_the_forms(site, walk_context, create_list, logos):
    """A person on a Dutch list's page picks Français: the page, its <html lang> and the answer to its form are
    French; the link of the current language says so to assistive technology."""
    lst = branded_list(create_list, "nl")
    page = walk_context("nl")
    page.goto(f"{site.url}/subscribe/{lst['id']}")
    expect(page.locator("nav.languages a[aria-current]")).to_have_text("Nederlands")
    page.click("nav.languages a[hreflang=fr]")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("nav.languages a[aria-current]")).to_have_text("Français")
    page.fill("#email", "switch@example.com")
    page.locator("form button[type=submit]").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("h1")).to_have_text("Consultez votre boîte de réception")


def _walk_basics(page, site, lst, client, account, worker, maildir, email, strings):
    """Signup -> confirm -> unsubscribe -> undo with plain clicks; returns the h1 texts seen."""
    headings = []
    page.goto(f"{site.url}/subscribe/{lst['id']}")
    headings.append(page.locator("h1").inner_text())
    page.fill("#email", email)
    page.locator("form button[type=submit]").click()
    headings.append(page.locator("h1").inner_text())
    worker.drain()
    open_mail(page, site.url, email)
    click_in_mail(page, strings["Confirm my subscription"])
    expect(page).to_have_url(link_from(mails_to(maildir(), email)[-1], "confirm"))
    page.click("#confirm-button")
    headings.append(page.locator("#outcome").inner_text())
    items = client.get(f"/api/v1/lists/{lst['id']}/subscriptions", headers=account.headers).json["items"]
    detail = client.get(f"/api/v1/subscriptions/{items[0]['id']}", headers=account.headers).json
    assert detail["status"] == "subscribed"
    page.goto(detail["unsubscribe_url"])
    page.click("#unsubscribe-button")
    headings.append(page.locator("#outcome").inner_text())
    page.click("#undo-button")
    headings.append(page.locator("#outcome").inner_text())
    worker.drain()
    assert len(mails_to(maildir(), email)) == 2  # the undo sent a fresh confirmation
    return headings


def test_the_walk_works_without_javascript(site, client, account, new_page, worker, maildir, create_list, logos):
    """With JavaScript off every form still submits (plain HTML forms), in the list's language."""
    lst = branded_list(create_list, "de")
    page = new_page(java_script_enabled=False)
    strings = catalog("de")
    headings = _walk_basics(page, site, lst, client, account, worker, maildir, "nojs@example.com", strings)
    assert headings[1] == strings["Check your inbox"]
    assert headings[-1] == strings["Check your inbox"]


def test_the_walk_works_and_reads_in_order_without_css(site, client, account, new_page, worker, maildir, create_list,
                                                       logos):
    """With no stylesheet at all the pages still work, read in a sensible order (sender, languages, heading, form,
    identity) and every field has its label; screenshots of the unstyled pages are kept."""
    lst = branded_list(create_list, "fr", logo_url=logos.url("/logo.png"))
    page = new_page()
    page.route(re.compile(r".*\.css(\?.*)?$"), lambda route: route.abort())
    page.goto(f"{site.url}/subscribe/{lst['id']}")
    assert page.evaluate("getComputedStyle(document.body).maxWidth") == "none"  # no rule of ours applied
    order = page.evaluate("""() => ['header .sender', 'nav.languages', 'h1', 'form', 'footer.identity']
        .map(s => document.querySelector(s)).every((el, i, all) => i === 0 ||
             (all[i - 1].compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING))""")
    assert order
    unlabeled = page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), textarea')]
        .filter(el => !(el.labels && el.labels.length && el.labels[0].innerText.trim())).map(el => el.id)""")
    assert unlabeled == []
    (OUTPUT / "screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "screenshots" / "nocss-fr-subscribe-1280.png"), full_page=True)
    strings = catalog("fr")
    headings = _walk_basics(page, site, lst, client, account, worker, maildir, "nocss@example.com", strings)
    assert headings[0] == strings["Subscribe to %(list)s"] % {"list": LIST_NAMES["fr"]}
    page.screenshot(path=str(OUTPUT / "screenshots" / "nocss-fr-undo-1280.png"), full_page=True)
