"""Every public page and mail in en, nl, fr and de: the language of the list, the person's
own choice, ``<html lang>`` equal to the text shown, no text of another language, and the
sender's identity (with names shown as given) on every page and in every mail."""

from __future__ import annotations

import re

import pytest

from flexmail.domain.languages import SUPPORTED
from tests.forward_support import mails_to
from tests.helpers import link_from, token_of
from tests.i18n_support import (
    BRANDING,
    LIST_NAMES,
    SENDER,
    VisibleText,
    Vocabulary,
    branded_list,
    catalog,
    every_page,
)

VOCABULARY = Vocabulary.load()
#: Pages that know no list (errors, broken links, the friend's opt-out) carry no branding.
NO_LIST = {"bad-link", "expired-link", "renewed", "forward-sent", "forward-stop", "forward-stopped",
           "forward-bad-link", "unsubscribe-bad-link", "error-404"}


@pytest.fixture
def pages_of(client, account, worker, maildir, create_list):
    def visit(lang):
        return every_page(client, account, worker, maildir, branded_list(create_list, lang), lang)

    return visit


@pytest.mark.parametrize("lang", SUPPORTED)
def test_every_page_is_wholly_in_the_list_language(pages_of, lang):
    """Each page of a list in ``lang`` says ``<html lang>`` = ``lang`` and shows no text of another language's
    catalog (so no untranslated English on a German page either)."""
    pages = pages_of(lang)
    assert len(pages) == 25
    for page in pages:
        visible = VisibleText(page.html)
        assert visible.html_lang == lang, (page.name, visible.html_lang)
        assert VOCABULARY.foreign_texts(lang, visible) == [], page.name
        assert ".." not in visible.text.replace("...", ""), (page.name, "doubled punctuation after a name")


@pytest.mark.parametrize("lang", SUPPORTED)
def test_every_page_of_a_list_names_its_sender_and_how_to_reach_it(pages_of, lang):
    """Pages about a list show the sender, postal address, contact and privacy notice (CASL, ePrivacy) with
    the list's accent; the sender's name keeps its own final dot."""
    for page in pages_of(lang):
        if page.name in NO_LIST:
            continue
        footer = page.html.split('<footer class="identity">', 1)[1]
        assert f"<strong>{SENDER}</strong>" in footer, page.name
        assert "Rue de la Loi 16<br>1000 Brussels" in footer
        assert 'href="mailto:privacy@outdoor.example"' in footer
        assert f'href="{BRANDING["privacy_url"]}"' in footer
        assert re.search(r'<link rel="stylesheet" href="/brand/\d+\.css\?v=1b5e20">', page.html), page.name


def test_the_person_can_switch_language_and_forms_keep_it(client, account, worker, maildir, create_list):
    """``?lang=fr`` on a German list's page shows French, every language is offered in its own name, and the
    page's form posts back with ``?lang=fr`` so the answer is French too."""
    lst = branded_list(create_list, "de")
    page = client.get(f"/subscribe/{lst['id']}?lang=fr").get_data(as_text=True)
    assert VisibleText(page).html_lang == "fr"
    assert "S’inscrire à Wandernachrichten" in page
    for code, name in (("en", "English"), ("nl", "Nederlands"), ("fr", "Français"), ("de", "Deutsch")):
        assert f'hreflang="{code}" lang="{code}"' in page and f">{name}</a>" in page
    assert f'action="/subscribe/{lst["id"]}?lang=fr"' in page
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    answer = client.post(f"/subscribe/{lst['id']}?lang=fr", data={"csrf_token": csrf, "email": "a@example.com"})
    assert VisibleText(answer.get_data(as_text=True)).html_lang == "fr"
    assert "Consultez votre boîte de réception" in answer.get_data(as_text=True)
    unknown = client.get(f"/subscribe/{lst['id']}?lang=xx").get_data(as_text=True)
    assert VisibleText(unknown).html_lang == "de"  # an unknown choice falls back to the list's language


def test_pages_without_a_list_follow_the_browser(client):
    """An error page knows no list: it speaks the browser's best supported language, else English."""
    for header, lang, title in (("nl-BE,nl;q=0.9,en;q=0.5", "nl", "Pagina niet gevonden"),
                                ("fr-BE", "fr", "Page introuvable"), ("ja, de;q=0.3", "de", "Seite nicht gefunden"),
                                ("ja", "en", "Page not found")):
        page = client.get("/nowhere", headers={"Accept-Language": header})
        assert page.status_code == 404
        html = page.get_data(as_text=True)
        assert VisibleText(html).html_lang == lang and title in html


@pytest.mark.parametrize("lang", SUPPORTED)
def test_confirmation_forward_and_undo_mails_are_in_the_list_language(client, account, worker, maildir, create_list,
                                                                     subscribe, lang):
    """The confirmation mail (first and after an undo) and the forward mail are in the list's language, subject
    included, and end with the sender's identity, contact and privacy notice."""
    lst = branded_list(create_list, lang)
    every_page(client, account, worker, maildir, lst, lang)  # signs up, forwards, unsubscribes and undoes
    strings = catalog(lang)
    confirmations = mails_to(maildir(), f"walker.{lang}@example.com")
    assert len(confirmations) >= 2  # the first, and the undo's
    subject = strings["Please confirm your subscription to %(list)s"] % {"list": LIST_NAMES[lang]}
    forward = mails_to(maildir(), f"friend.{lang}@example.org")[-1]
    assert forward["Subject"] == strings["Fwd: %(subject)s"] % {"subject": f"{LIST_NAMES[lang]} 42"}
    for mail in (confirmations[0], confirmations[-1], forward):
        if mail is not forward:
            assert mail["Subject"] == subject
        html = mail.get_body(("html",)).get_content()
        text = mail.get_body(("plain",)).get_content()
        assert VisibleText(html).html_lang == lang
        for body in (html, text):
            assert VOCABULARY.foreign_texts(lang, VisibleText(body)) == []
            assert "Rue de la Loi 16" in body and "privacy@outdoor.example" in body
            assert BRANDING["privacy_url"] in body and ".." not in body.replace("...", "")
        assert strings["Privacy notice"] in html
    hello = strings["Hello,"]
    assert confirmations[0].get_body(("plain",)).get_content().startswith(hello)


def test_a_german_subscriber_of_a_list_now_in_french_keeps_german_mails(client, account, worker, maildir, create_list,
                                                                       subscribe):
    """A confirmation mail uses the language stored with the signup, so a later change of the list's language does
    not switch a person mid-way (the page they confirm on is the same language as the mail)."""
    lst = branded_list(create_list, "de")
    assert subscribe(lst["id"], email="ute@example.com").status_code == 202
    changed = client.patch(f"/api/v1/lists/{lst['id']}", json={"language": "fr"}, headers=account.headers)
    assert changed.status_code == 200
    worker.drain()
    mail = mails_to(maildir(), "ute@example.com")[-1]
    assert mail["Subject"] == "Bitte bestätigen Sie Ihre Anmeldung für Wandernachrichten"
    page = client.get("/confirm/" + token_of(link_from(mail, "confirm"))).get_data(as_text=True)
    assert VisibleText(page).html_lang == "de"


def test_catalogs_are_complete_and_keep_every_placeholder():
    """nl, fr and de translate every message of the English catalog, with the same placeholders, none fuzzy."""
    english = catalog("en")
    for lang in ("nl", "fr", "de"):
        translated = catalog(lang)
        assert translated.keys() == english.keys(), lang
        for msgid, text in translated.items():
            assert text != msgid or len(msgid) <= 8 or msgid in {"Contact:"}, (lang, msgid)
            assert sorted(re.findall(r"%\(\w+\)s", text)) == sorted(re.findall(r"%\(\w+\)s", msgid)), (lang, msgid)
            # A name right before a full stop would double it for "Outdoor Co." (issue 13).
            assert not re.search(r"%\((sender|list|name)\)s\.", text), (lang, text)


def test_catalog_template_matches_the_templates_and_code(tmp_path):
    """``messages.pot`` holds exactly the messages ``pybabel extract`` finds today, so nothing shown is missing
    from the catalogs (run the extract and update commands of the README when this fails)."""
    from babel.messages.frontend import CommandLineInterface
    from babel.messages.pofile import read_po

    from tests.i18n_support import CATALOGS

    root = CATALOGS.parent.parent
    out = tmp_path / "messages.pot"
    CommandLineInterface().run(["pybabel", "-q", "extract", "-F", str(root / "babel.cfg"), "-k", "lazy_gettext",
                                "--no-location", "-o", str(out), str(root)])
    with out.open("rb") as fresh, (CATALOGS / "messages.pot").open("rb") as kept:
        assert {m.id for m in read_po(fresh) if m.id} == {m.id for m in read_po(kept) if m.id}
        kept.seek(0)
        assert set(catalog("en")) == {m.id for m in read_po(kept) if m.id}
