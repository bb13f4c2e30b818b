"""Helpers for the language and branding tests: a branded list per language, every public
page of it, and the catalogs to tell the languages' texts apart."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.pofile import read_po

from flexmail import clock
from flexmail.domain.languages import SUPPORTED
from tests.forward_support import create_campaign, forward_url, mails_to
from tests.helpers import link_from, token_of

CATALOGS = Path(__file__).resolve().parent.parent / "flexmail" / "translations"
#: A sender whose name ends in a dot: no page or mail may show "Outdoor Co.." (issue 13).
SENDER = "Outdoor Co."
LIST_NAMES = {"en": "Trail News", "nl": "Wandelnieuws", "fr": "Nouvelles du sentier", "de": "Wandernachrichten"}
CONSENT = {
    "en": "Send me the Outdoor Co. newsletter about hiking gear. I can unsubscribe at any time.",
    "nl": "Stuur mij de nieuwsbrief van Outdoor Co. over wandeluitrusting. Ik kan me altijd uitschrijven.",
    "fr": "Envoyez-moi la lettre d’Outdoor Co. sur le matériel de randonnée. Je peux me désinscrire à tout moment.",
    "de": "Schicken Sie mir den Newsletter von Outdoor Co. über Wanderausrüstung. Ich kann mich jederzeit abmelden.",
}
BRANDING = {"accent_color": "#1b5e20", "postal_address": "Outdoor Co.\nRue de la Loi 16\n1000 Brussels\nBelgium",
            "contact_email": "privacy@outdoor.example", "privacy_url": "https://outdoor.example/privacy"}


def catalog(lang: str) -> dict[str, str]:
    """msgid -> the text shown in ``lang``: English shows the msgid; an untranslated message of
    another language is left out (it would show English, which is what the tests look for)."""
    with (CATALOGS / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return {m.id: (m.string or m.id) for m in read_po(fh) if m.id and (m.string or lang == "en")}


def _fragments(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"%\(\w+\)s", text) if part.strip()]


@dataclass
class Vocabulary:
    """For each language, the catalog texts that are its own (not shared with another language)."""

    whole: dict[str, set[str]] = field(default_factory=dict)
    fragments: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def load(cls) -> Vocabulary:
        texts = {lang: set(catalog(lang).values()) for lang in SUPPORTED}
        frags = {lang: {f for t in texts[lang] for f in _fragments(t)} for lang in SUPPORTED}
        vocab = cls()
        for lang in SUPPORTED:
            others_whole = set().union(*(texts[o] for o in SUPPORTED if o != lang))
            others_frag = set().union(*(frags[o] for o in SUPPORTED if o != lang))
            vocab.whole[lang] = {t for t in texts[lang] if "%(" not in t} - others_whole
            # Long fragments only: short ones ("Hallo,", "Contact:") are shared or ambiguous.
            vocab.fragments[lang] = {f for f in frags[lang] if len(f) >= 12} - {
                f for f in frags[lang] if any(f in o for o in others_frag)}
        return vocab

    def foreign_texts(self, lang: str, visible: VisibleText) -> list[str]:
        """Texts of other languages' catalogs found on a page shown in ``lang``."""
        found = []
        for other in SUPPORTED:
            if other == lang:
                continue
            found += [f"{other}: {t}" for t in self.whole[other] if t in visible.elements]
            found += [f"{other}: {f}" for f in self.fragments[other] if f in visible.text]
        return found


class VisibleText(HTMLParser):
    """The text a person sees (title included), without scripts, styles and the language switch.

    A part marked with a ``lang`` of its own other than the page's (WCAG 3.1.2, "language of
    parts": the development mailbox shows a German mail's subject on its English page) is
    left out: it is announced in its own language, which is what the check is about.
    """

    SKIP = {"script", "style"}
    BLOCKS = {"title", "h1", "h2", "p", "label", "button", "legend", "li", "a", "strong", "span", "blockquote"}

    def __init__(self, html: str):
        super().__init__()
        self.parts, self.elements, self._stack, self._skip, self._current = [], set(), [], 0, []
        self.html_lang = None
        self.feed(html)
        self.text = " ".join(" ".join(self.parts).split())

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.html_lang = attrs.get("lang")
        if tag in ("br", "img", "input", "meta", "link"):
            return
        own_lang = tag != "html" and attrs.get("lang") not in (None, self.html_lang)
        skip = (tag in self.SKIP or "data-language-switch" in attrs or attrs.get("aria-hidden") == "true"
                or own_lang)
        self._stack.append((tag, skip))
        self._skip += skip
        if tag in self.BLOCKS:
            self._current.append([])

    def handle_endtag(self, tag):
        if not self._stack:
            return
        open_tag, skip = self._stack.pop()
        self._skip -= skip
        if open_tag in self.BLOCKS and self._current:
            text = " ".join(" ".join(self._current.pop()).split())
            if text:
                self.elements.add(text)

    def handle_data(self, data):
        if self._skip:
            return
        self.parts.append(data)
        for buffer in self._current:
            buffer.append(data)


@dataclass
class Page:
    name: str
    lang: str
    status: int
    html: str
    url: str


def branded_list(create_list, lang: str, **extra) -> dict:
    return create_list(name=LIST_NAMES[lang], sender_name=SENDER, sender_email="news@outdoor.example",
                       consent_text=CONSENT[lang], language=lang, **BRANDING, **extra)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def every_page(client, account, worker, maildir, lst: dict, lang: str) -> list[Page]:
    """Visit every public page of a list in the test client, in the order a person meets them.

    Pages that know no list (errors, broken links) get the language by Accept-Language.
    """
    pages: list[Page] = []
    browser = {"Accept-Language": f"{lang};q=0.9"}

    def visit(name, method, url, status=200, **kwargs):
        response = client.open(url, method=method, **kwargs)
        assert response.status_code == status, (name, response.status_code)
        page = Page(name, lang, status, response.get_data(as_text=True), url)
        pages.append(page)
        return page

    list_id = lst["id"]
    form = visit("subscribe", "GET", f"/subscribe/{list_id}")
    visit("subscribe-error", "POST", f"/subscribe/{list_id}", 400, data={"csrf_token": _csrf(form.html), "email": ""})
    email = f"walker.{lang}@example.com"
    visit("check-inbox", "POST", f"/subscribe/{list_id}", data={"csrf_token": _csrf(form.html), "email": email})
    worker.drain()
    mail = mails_to(maildir(), email)[-1]
    confirm, not_me = link_from(mail, "confirm"), link_from(mail, "not-me")
    confirm_path, not_me_path = "/confirm/" + token_of(confirm), "/not-me/" + token_of(not_me)
    visit("confirm", "GET", confirm_path)
    visit("not-me", "GET", not_me_path)
    visit("bad-link", "GET", "/confirm/not-a-token", 404, headers=browser)
    clock.freeze(clock.now() + dt.timedelta(days=30))
    visit("expired-link", "GET", confirm_path, 410, headers=browser)
    visit("renewed", "POST", confirm_path + "/renew", headers=browser)
    clock.freeze(None)
    visit("confirmed", "POST", confirm_path, data={"method": "button"})
    visit("confirm-again", "GET", confirm_path)
    visit("not-me-after", "GET", not_me_path)

    subscription_id = _subscription_of(client, account, list_id, email)
    campaign = create_campaign(client, account, list_id, subject=f"{LIST_NAMES[lang]} 42")
    forward_path = "/forward/" + token_of(forward_url(client, account, subscription_id, campaign["id"]))
    fwd = visit("forward", "GET", forward_path)
    visit("forward-error", "POST", forward_path, 422,
          data={"csrf_token": _csrf(fwd.html), "friend": ["not an address"], "sender_name": "", "note": ""})
    sent = visit("forward-sent", "POST", forward_path + f"?lang={lang}",
                 data={"csrf_token": _csrf(fwd.html), "friend": [f"friend.{lang}@example.org"], "sender_name": "Ann",
                       "note": "Look at this."})
    assert sent.status == 200
    worker.drain()
    forward_mail = mails_to(maildir(), f"friend.{lang}@example.org")[-1]
    stop_path = "/forward/" + token_of(link_from(forward_mail, "forward").removesuffix("/stop")) + "/stop"
    visit("forward-stop", "GET", stop_path, headers=browser)
    visit("forward-stopped", "POST", stop_path, headers=browser)
    visit("forward-bad-link", "GET", "/forward/not-a-token", 404, headers=browser)
    # The list switched to client mode: the same link opens the forwarder's own mail program.
    client.patch(f"/api/v1/lists/{list_id}", json={"forward_mode": "client"}, headers=account.headers)
    fwd_client = visit("forward-client", "GET", forward_path)
    visit("forward-client-refused", "POST", forward_path, 409,
          data={"csrf_token": _csrf(fwd_client.html), "friend": [f"friend.{lang}@example.org"]})

    detail = client.get(f"/api/v1/subscriptions/{subscription_id}", headers=account.headers).json
    unsubscribe_path = "/unsubscribe/" + token_of(detail["unsubscribe_url"])
    visit("unsubscribe", "GET", unsubscribe_path)
    visit("unsubscribed", "POST", unsubscribe_path, data={"via": "page", "reason": "too_many"})
    visit("unsubscribe-inactive", "GET", unsubscribe_path)
    visit("undo", "POST", unsubscribe_path + "/undo")
    worker.drain()
    visit("unsubscribe-bad-link", "GET", "/unsubscribe/not-a-token", 404, headers=browser)
    visit("error-404", "GET", "/no-such-page", 404, headers=browser)
    return pages


def _subscription_of(client, account, list_id, email) -> int:
    response = client.get(f"/api/v1/lists/{list_id}/subscriptions", headers=account.headers)
    if response.status_code == 200:
        for item in response.json["items"]:
            if item.get("email", "").lower() == email:
                return item["id"]
    raise AssertionError(f"no subscription for {email} on list {list_id}")
