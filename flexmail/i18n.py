"""Translations: Flask-Babel with catalogs in ``flexmail/translations`` (en, nl, fr, de).

The ``.po`` catalogs are under version control; the ``.mo`` files Babel reads are compiled
from them at app start into the instance folder (a few milliseconds, only when a catalog
changed), so no build step can be forgotten and no binary is committed.

Which language a page is in is decided in ``flexmail.public.rendering``; outside a page
(mails, CLI) code chooses with ``flask_babel.force_locale``. ``page_lang()`` in templates is
the language gettext really uses, so ``<html lang>`` can never disagree with the text.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import g, has_request_context, request
from flask_babel import Babel, get_locale

from flexmail.domain.languages import DEFAULT, SUPPORTED, supported

CATALOGS = Path(__file__).resolve().parent / "translations"
DOMAIN = "messages"
babel = Babel()


def compile_catalogs(source: Path, target: Path) -> Path:
    """Compile each ``<lang>/LC_MESSAGES/messages.po`` whose ``.mo`` is missing or older."""
    for po in sorted(source.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo = target / po.relative_to(source).with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=po.parent.parent.name, domain=DOMAIN)
        # Write beside and rename: workers starting together never read half a file.
        fd, tmp = tempfile.mkstemp(dir=mo.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            write_mo(out, catalog, use_fuzzy=False)
        os.replace(tmp, mo)
    return target


def requested_language() -> str | None:
    """The person's own choice on the page (``?lang=``), if it is one we have."""
    return supported(request.args.get("lang")) if has_request_context() else None


def browser_language() -> str | None:
    if not has_request_context():
        return None
    return request.accept_languages.best_match(SUPPORTED)


def select_locale() -> str:
    """Default choice where no page decided: the page's choice, ``?lang=``, the browser, English."""
    chosen = g.get("flexmail_lang") if has_request_context() else None
    return chosen or requested_language() or browser_language() or DEFAULT


def page_lang() -> str:
    """The language gettext is translating into right now (for ``<html lang>``)."""
    locale = get_locale()
    return locale.language if locale is not None else DEFAULT


def init_app(app) -> None:
    target = compile_catalogs(CATALOGS, Path(app.instance_path) / "translations")
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals["page_lang"] = page_lang
