"""Mails in the recipient's language: which language, the subject, and rendering in it.

Pages choose their language per request (``flexmail.public.rendering``); a mail is written
outside any page, so its sender chooses here: the language stored with the subscription
(the list's at signup), else the list's, else English.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager

from flask import render_template
from flask_babel import force_locale, gettext

from flexmail.domain.languages import choose
from flexmail.i18n import CATALOGS, DOMAIN


def mail_language(*candidates: str | None) -> str:
    """The first supported language among ``candidates`` (subscription's, list's), else English."""
    return choose(*candidates)


@contextmanager
def in_language(lang: str):
    """Translate everything inside into ``lang`` (templates and ``gettext`` alike)."""
    with force_locale(lang):
        yield


def confirmation_subject(list_name: str, lang: str) -> str:
    with in_language(lang):
        return gettext("Please confirm your subscription to %(list)s", list=list_name)


def forward_subject(subject: str, lang: str) -> str:
    """The conventional forward prefix of the language (Fwd:, Doorst:, TR :, WG:)."""
    with in_language(lang):
        return gettext("Fwd: %(subject)s", subject=subject)


def forward_invitation(sender: str, lang: str) -> str:
    """The first line of a forward prepared for the forwarder's own mail program."""
    with in_language(lang):
        return gettext("I thought you might like this message from %(sender)s:", sender=sender)


def render_mail(name: str, lang: str, **context) -> tuple[str, str]:
    """``(text, html)`` of ``templates/<name>.txt|.html`` in ``lang``."""
    with in_language(lang):
        return (render_template(f"{name}.txt", lang=lang, **context),
                render_template(f"{name}.html", lang=lang, **context))


def catalog_version(lang: str) -> str:
    """A content hash of the language's catalog: part of a mail's wording, like its template."""
    po = CATALOGS / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    digest = hashlib.sha256(po.read_bytes() if po.exists() else b"").hexdigest()[:12]
    return f"{lang}@{digest}"
