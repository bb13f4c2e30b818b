"""Every public page in one language, with its sender's branding.

Views render as before (``render_template("public/x.html", link=...)``); just before a
``public/`` template renders, ``_localize`` decides the page's language and branding from
what the view passed:

1. ``?lang=`` on the URL: the person's own choice, kept by every form of the page;
2. the language of the list behind the page (``link.language``, ``list.language``);
3. the browser's Accept-Language, for pages that know no list (errors, bad links);
4. English.

It then points Flask-Babel at that language, so ``<html lang>`` (``page_lang()``) and the
text always agree. Forms post back with ``?lang=<shown language>`` when the answer page
could not tell the language by itself (a person's choice, a page without a list), so the
answer is in the language of the page the person just used, without JavaScript or cookies.
"""

from __future__ import annotations

import re

from flask import before_render_template, g, request
from flask_babel import gettext, lazy_gettext, refresh

from flexmail.domain.languages import NATIVE_NAMES, SUPPORTED, choose
from flexmail.i18n import browser_language, requested_language
from flexmail.services.consent import branding


def _list_of(context):
    """``(language, brand)`` of the list behind a page, from what its view passed."""
    lst = context.get("list")
    if lst is not None and hasattr(lst, "sender_email"):
        return lst.language, branding.brand_of(lst)
    link = context.get("link")
    brand = getattr(link, "brand", None)
    if brand is not None:  # read with the link by the service: no query here
        return getattr(link, "language", None) or brand.language, brand
    if link is not None and getattr(link, "subscription_id", None) is not None:
        brand = branding.brand_for_subscription(link.subscription_id)
        if brand is None:  # the subscription is gone (erased): no list to speak for
            return None, None
        return getattr(link, "language", None) or brand.language, brand
    return None, None


def _localize(sender, template, context, **extra):
    if not (template.name or "").startswith("public/"):
        return
    list_language, brand = _list_of(context)
    lang = choose(requested_language(), list_language, browser_language())
    g.flexmail_lang = lang
    g.flexmail_lang_from_list = requested_language() is None and lang == list_language
    refresh()  # drop a locale Flask-Babel may have cached earlier in this request
    context.setdefault("brand", brand)
    context["lang"] = lang
    if request.method in ("GET", "HEAD"):
        context["lang_links"] = [(code, NATIVE_NAMES[code], f"{request.path}?lang={code}", code == lang)
                                 for code in SUPPORTED]


def keep_lang(always: bool = False) -> dict:
    """URL arguments that keep the shown language on a form's answer.

    Nothing when the language is the list's and the answer page knows the list too (its
    URL then stays exactly the link from the mail); ``always`` for forms whose answer page
    knows no list (the forward form's "sent" page).
    """
    lang = g.get("flexmail_lang")
    if not lang or (g.get("flexmail_lang_from_list") and not always):
        return {}
    return {"lang": lang}


#: Error titles and texts per HTTP status (pages only: the API answers with its envelope).
_ERRORS = {
    400: (lazy_gettext("This request could not be handled"),
          lazy_gettext("Something in the request was missing or not valid. Please go back and try again.")),
    404: (lazy_gettext("Page not found"),
          lazy_gettext("There is no page at this address. If you followed a link from an email, "
                       "please open the whole link.")),
    405: (lazy_gettext("This request could not be handled"),
          lazy_gettext("This page cannot be used this way. Please go back and try again.")),
    410: (lazy_gettext("This link has expired"),
          lazy_gettext("This link no longer works. Please use the most recent email you received.")),
    413: (lazy_gettext("This request could not be handled"),
          lazy_gettext("What was sent is too large. Please try again with less.")),
    429: (lazy_gettext("Please slow down"),
          lazy_gettext("There were too many requests in a short time. Please wait a moment and try again.")),
    503: (lazy_gettext("This service is briefly unavailable"),
          lazy_gettext("The service is busy or under maintenance. Please try again in a few minutes.")),
}
_SERVER_ERROR = (lazy_gettext("Something went wrong on our side"), lazy_gettext("Please try again in a moment."))


def error_title(status: int) -> str:
    return str(_ERRORS.get(status, _SERVER_ERROR if status >= 500 else _ERRORS[400])[0])


def error_text(status: int) -> str:
    return str(_ERRORS.get(status, _SERVER_ERROR if status >= 500 else _ERRORS[400])[1])


#: Messages the services give in English (also used by the API), as the pages say them.
_MESSAGES = {
    "Please enter your email address.": lazy_gettext("Please enter your email address."),
    "That does not look like an email address we can write to.":
        lazy_gettext("That does not look like an email address we can write to."),
    "This form has expired. Please enter the addresses again.":
        lazy_gettext("This form has expired. Please enter the addresses again."),
    "Enter at least one address.": lazy_gettext("Enter at least one address."),
    "The name must be on one line.": lazy_gettext("The name must be on one line."),
    "Please use the button to write from your own mail program.":
        lazy_gettext("Please use the button to write from your own mail program."),
    "This form has expired. Please try again.": lazy_gettext("This form has expired. Please try again."),
}
_PATTERNS = (
    (re.compile(r"^Address (\d+) is not valid\.$"), lambda m: gettext("Address %(n)s is not valid.", n=m[1])),
    (re.compile(r"^At most (\d+) addresses\.$"), lambda m: gettext("At most %(n)s addresses.", n=m[1])),
    (re.compile(r"^At most (\d+) characters\.$"), lambda m: gettext("At most %(n)s characters.", n=m[1])),
)


def ui_message(message: str) -> str:
    """A service's English message in the page's language (unknown ones get a general text)."""
    if message in _MESSAGES:
        return str(_MESSAGES[message])
    for pattern, say in _PATTERNS:
        match = pattern.match(message)
        if match:
            return say(match)
    return gettext("This entry could not be used. Please check it and try again.")


def init_app(app) -> None:
    before_render_template.connect(_localize, app)
    app.jinja_env.globals.update(keep_lang=keep_lang, error_title=error_title, error_text=error_text)
    app.jinja_env.filters["ui_message"] = ui_message


#: The unsubscribe reasons' labels (``public/unsubscribe.py``), listed here for extraction:
#: the page translates each label it is given.
REASON_LABELS = (lazy_gettext("Too many emails"), lazy_gettext("The content is not relevant to me"),
                 lazy_gettext("I never signed up"), lazy_gettext("Another reason"))
