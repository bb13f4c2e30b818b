"""The confirmation mail rendered from a per-list skeleton is the mail compose() would make."""

from __future__ import annotations

import datetime as dt
import re
from email import message_from_bytes, policy
from types import SimpleNamespace

import pytest

from flexmail import clock
from flexmail.mail.compose import compose
from flexmail.services.consent import confirmation_mail
from flexmail.services.consent.confirmation_mail import RenderCache, render_confirmation


def _normalised(data: bytes) -> bytes:
    return re.sub(rb"={15}\d+==", b"BOUNDARY", data)


@pytest.mark.parametrize("language,address", [("en", "reader@example.com"), ("de", "Leser.Name@example.de"),
                                              ("de", "jürgen@exämple.de"), ("en", "x" * 60 + "@example.com")])
def test_skeleton_mail_equals_the_composed_mail(app, language, address):
    """Same headers, parts and bytes (but the MIME boundary) as composing each mail on its own,
    for ASCII, German and non-ASCII recipients; the second mail of a batch reuses the skeleton."""
    clock.freeze(dt.datetime(2026, 6, 1, 10, 30, tzinfo=dt.UTC))
    lst = SimpleNamespace(id=1, name="Weekly news", sender_name="Acme News", sender_email="news@acme.example",
                          language="en", postal_address="1 Main St\nSpringfield", contact_email=None, privacy_url=None)
    sub = SimpleNamespace(id=7, email=address, language=language,
                          consent_text="Send me the weekly Acme newsletter. I can unsubscribe at any time.")
    row = SimpleNamespace(id=3, message_id="<0123456789abcdef0123456789abcdef@flexmail.test>")
    cache = RenderCache()
    with app.app_context(), app.test_request_context():
        render_confirmation(SimpleNamespace(id=2, message_id="<other@flexmail.test>"), sub, lst, cache=cache)
        data, summary = render_confirmation(row, sub, lst, cache=cache)
        text, html = confirmation_mail._texts(lst, sub, language, *_links(data))
        alone = compose(sender_name=lst.sender_name, sender_email=lst.sender_email, to=address,
                        subject=summary["subject"], text=text, html=html, message_id=row.message_id,
                        date=clock.now(), cte=confirmation_mail._cte(text, html)).as_bytes()
    assert _normalised(data) == _normalised(alone)
    skeletons = [v for k, v in cache.parts.items() if k[0] == "skeleton" and v is not None]
    assert len(skeletons) == (1 if address.isascii() and len(address) <= 60 else 0)
    assert f"\r\nTo: {address}\r\n".encode() in data
    mail = message_from_bytes(data, policy=policy.default)
    assert summary["text_sha256"] == confirmation_mail._digest(mail.get_body(("plain",)).get_content())


def _links(data: bytes) -> tuple[str, str]:
    mail = message_from_bytes(data, policy=policy.default)
    body = mail.get_body(("plain",)).get_content()
    return (re.search(r"https?://\S+/confirm/\S+", body).group(0), re.search(r"https?://\S+/not-me/\S+", body).group(0))
