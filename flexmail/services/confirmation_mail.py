"""The confirmation mail: rendered once per outbox row, in this one function.

``render_confirmation`` builds the RFC 5322 bytes and the proof summary of one mail. The
outbox stores both on the row at its first claim and sends those bytes at every attempt.
A ``RenderCache`` (one per batch) renders the templates once per list, language and
consent wording, with markers where the per-recipient links go, and fills in the links
per mail; when a template does something with a link other than print it (the markers do
not come through intact), that mail is rendered on its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from flask import current_app, render_template

from flexmail.clock import now
from flexmail.domain.tokens import Purpose
from flexmail.mail.compose import compose
from flexmail.services.context import setting, signer

CONFIRM_TEMPLATE = "mail/confirm"
_CONFIRM_MARK = "FLEXMAILCONFIRMURLMARK"
_CANCEL_MARK = "FLEXMAILCANCELURLMARK"


def template_version(name: str) -> str:
    """A content hash of the text and HTML templates: changes whenever the wording does."""
    env = current_app.jinja_env
    digest = hashlib.sha256()
    for suffix in (".txt", ".html"):
        source, _, _ = env.loader.get_source(env, f"{name}{suffix}")
        digest.update(source.encode())
    return f"{name.rsplit('/', 1)[-1]}@{digest.hexdigest()[:12]}"


@dataclass
class RenderCache:
    """Rendered template text per (list, language, wording) and the template version,
    for one batch of mails (so a list edited meanwhile is never rendered stale for long)."""

    parts: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)

    def version(self, name: str) -> str:
        if name not in self.versions:
            self.versions[name] = template_version(name)
        return self.versions[name]


def language_of(sub, lst) -> str:
    return sub.language if sub.language in ("en", "de") else "en"


def _subject(lst, lang: str) -> str:
    return {"en": f"Please confirm your subscription to {lst.name}",
            "de": f"Bitte bestätigen Sie Ihr Abonnement von {lst.name}"}[lang]


def _texts(lst, sub, lang: str, confirm_url: str, cancel_url: str) -> tuple[str, str]:
    context = {"list": lst, "consent_text": sub.consent_text, "confirm_url": confirm_url, "cancel_url": cancel_url,
               "max_age_days": max(1, setting("CONFIRM_MAX_AGE") // 86400)}
    return (render_template(f"{CONFIRM_TEMPLATE}.txt", lang=lang, **context),
            render_template(f"{CONFIRM_TEMPLATE}.html", lang=lang, **context))


def render_confirmation(message, sub, lst, *, cache: RenderCache | None = None) -> tuple[bytes, dict]:
    """The mail for outbox row ``message`` (bytes as sent) and what the proof records of it."""
    cache = cache or RenderCache()
    base = setting("PUBLIC_URL")
    ids = [sub.id, message.id]
    confirm_url = f"{base}/confirm/{signer().dumps(Purpose.CONFIRM, ids)}"
    cancel_url = f"{base}/not-me/{signer().dumps(Purpose.CANCEL, ids)}"
    lang = language_of(sub, lst)
    key = (lst.id, lst.name, lst.sender_name, lang, sub.consent_text)
    if key not in cache.parts:
        cache.parts[key] = _texts(lst, sub, lang, _CONFIRM_MARK, _CANCEL_MARK)
    text, html = cache.parts[key]
    if all(part.count(_CONFIRM_MARK) == 1 and part.count(_CANCEL_MARK) == 1 for part in (text, html)):
        text, html = (part.replace(_CONFIRM_MARK, confirm_url).replace(_CANCEL_MARK, cancel_url)
                      for part in (text, html))
    else:
        text, html = _texts(lst, sub, lang, confirm_url, cancel_url)
    subject = _subject(lst, lang)
    mail = compose(sender_name=lst.sender_name, sender_email=lst.sender_email, to=sub.email, subject=subject,
                   text=text, html=html, message_id=message.message_id, date=now())
    data = mail.as_bytes()
    summary = {
        "subject": subject, "message_id": message.message_id, "outbox_id": message.id,
        "template_version": cache.version(CONFIRM_TEMPLATE),
        # Digests of the parts as a recipient's mail program decodes them, so anyone holding
        # the received mail can check it against the proof; and of the whole message as sent.
        "text_sha256": _digest(text), "html_sha256": _digest(html),
        "message_sha256": hashlib.sha256(data).hexdigest(),
        "from": lst.sender_email,
    }
    return data, summary


def _digest(content: str) -> str:
    """SHA-256 of a part's text with LF line ends, as a mail program decodes it."""
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    if not content.endswith("\n"):
        content += "\n"  # set_content ends every line, the last one too
    return hashlib.sha256(content.encode()).hexdigest()
