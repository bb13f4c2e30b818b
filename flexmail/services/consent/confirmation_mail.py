"""The confirmation mail: rendered once per outbox row, in this one function.

``render_confirmation`` builds the RFC 5322 bytes and the proof summary of one mail. The
outbox stores both on the row at its first claim and sends those bytes at every attempt.
A ``RenderCache`` (one per batch) renders the templates once per list, language and
consent wording, with markers where the per-recipient links go, and fills in the links
per mail; when a template does something with a link other than print it (the markers do
not come through intact), that mail is rendered on its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from email.utils import format_datetime

from flask import current_app

from flexmail.clock import now
from flexmail.domain.tokens import Purpose
from flexmail.mail.compose import compose
from flexmail.services.consent import localized
from flexmail.services.platform.context import setting, signer

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
    """The subscription's language (the list's at signup), else the list's, else English."""
    return localized.mail_language(sub.language, lst.language)


def _texts(lst, sub, lang: str, confirm_url: str, cancel_url: str) -> tuple[str, str]:
    context = {"list": lst, "consent_text": sub.consent_text, "confirm_url": confirm_url, "cancel_url": cancel_url,
               "max_age_days": max(1, setting("CONFIRM_MAX_AGE") // 86400)}
    return localized.render_mail(CONFIRM_TEMPLATE, lang, **context)


def render_confirmation(message, sub, lst, *, cache: RenderCache | None = None) -> tuple[bytes, dict]:
    """The mail for outbox row ``message`` (bytes as sent) and what the proof records of it."""
    cache = cache or RenderCache()
    base = setting("PUBLIC_URL")
    ids = [sub.id, message.id]
    confirm_url = f"{base}/confirm/{signer().dumps(Purpose.CONFIRM, ids)}"
    cancel_url = f"{base}/not-me/{signer().dumps(Purpose.CANCEL, ids)}"
    lang = language_of(sub, lst)
    subject = localized.confirmation_subject(lst.name, lang)
    key = (lst.id, lst.name, lst.sender_name, lst.sender_email, lang, sub.consent_text)
    if key not in cache.parts:
        cache.parts[key] = _texts(lst, sub, lang, _CONFIRM_MARK, _CANCEL_MARK)
    text, html = cache.parts[key]
    if all(part.count(_CONFIRM_MARK) == 1 and part.count(_CANCEL_MARK) == 1 for part in (text, html)):
        text, html = (part.replace(_CONFIRM_MARK, confirm_url).replace(_CANCEL_MARK, cancel_url)
                      for part in (text, html))
        data = _from_skeleton(cache, key, lst, subject, sub.email, message.message_id, confirm_url, cancel_url)
    else:  # the template does more with a link than print it: render this mail on its own
        text, html = _texts(lst, sub, lang, confirm_url, cancel_url)
        data = None
    if data is None:
        data = compose(sender_name=lst.sender_name, sender_email=lst.sender_email, to=sub.email, subject=subject,
                       text=text, html=html, message_id=message.message_id, date=now(),
                       cte=_cte(text, html)).as_bytes()
    summary = {
        "subject": subject, "message_id": message.message_id, "outbox_id": message.id,
        "template_version": cache.version(CONFIRM_TEMPLATE),
        "catalog_version": localized.catalog_version(lang),
        # Digests of the parts as a recipient's mail program decodes them, so anyone holding
        # the received mail can check it against the proof; and of the whole message as sent.
        "text_sha256": _digest(text), "html_sha256": _digest(html),
        "message_sha256": hashlib.sha256(data).hexdigest(),
        "from": lst.sender_email,
    }
    return data, summary


#: Lines up to this long are sent as they are (7bit/8bit): RFC 5322 allows 998 octets, and
#: a link of up to ``_MAX_LINK`` characters still fits after it replaces its marker.
_MAX_PLAIN_LINE = 500
_MAX_LINK = 400
_TO_MARK = "flexmail-recipient@marker.invalid"
_ID_MARK = "<flexmail-message-id@marker.invalid>"
_DATE_MARK = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def _cte(text: str, html: str) -> str | None:
    """7bit or 8bit when every line is short enough, so links stay readable in the raw mail
    and a per-list skeleton can take them in; else let the email package choose."""
    lines = [line for part in (text, html) for line in part.encode().splitlines()]
    if max((len(line) for line in lines), default=0) > _MAX_PLAIN_LINE:
        return None
    return "7bit" if (text + html).isascii() else "8bit"


def _from_skeleton(cache, key, lst, subject, to, message_id, confirm_url, cancel_url) -> bytes | None:
    """The mail as ``compose`` would make it, from the list's skeleton with markers in place
    of the recipient, Message-ID, date and links; None when that cannot be exact."""
    if not to.isascii() or len(to) > 60 or max(len(confirm_url), len(cancel_url)) > _MAX_LINK:
        return None  # compose would write or fold these headers differently
    skel_key = ("skeleton", *key)
    if skel_key not in cache.parts:
        text, html = cache.parts[key]
        cte = _cte(text, html)
        skeleton = None
        if cte is not None:
            skeleton = compose(sender_name=lst.sender_name, sender_email=lst.sender_email, to=_TO_MARK,
                               subject=subject, text=text, html=html, message_id=_ID_MARK, date=_DATE_MARK,
                               cte=cte).as_bytes()
            markers = {_TO_MARK: 1, _ID_MARK: 1, format_datetime(_DATE_MARK): 1, _CONFIRM_MARK: 2, _CANCEL_MARK: 2}
            if any(skeleton.count(m.encode()) != count for m, count in markers.items()):
                skeleton = None
        cache.parts[skel_key] = skeleton
    skeleton = cache.parts[skel_key]
    if skeleton is None:
        return None
    return (skeleton.replace(_TO_MARK.encode(), to.encode()).replace(_ID_MARK.encode(), message_id.encode())
            .replace(format_datetime(_DATE_MARK).encode(), format_datetime(now().astimezone(dt.UTC)).encode())
            .replace(_CONFIRM_MARK.encode(), confirm_url.encode()).replace(_CANCEL_MARK.encode(), cancel_url.encode()))


def _digest(content: str) -> str:
    """SHA-256 of a part's text with LF line ends, as a mail program decodes it."""
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    if not content.endswith("\n"):
        content += "\n"  # set_content ends every line, the last one too
    return hashlib.sha256(content.encode()).hexdigest()
