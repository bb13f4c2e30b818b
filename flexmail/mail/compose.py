"""Message construction. Header values are checked for line breaks before they get here.

The SMTP policy would RFC 2047-encode a List-Unsubscribe value (standards K1/B2), so those
headers come pre-folded from ``mail.headers`` and are written exactly as given."""

from __future__ import annotations

import datetime as dt
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

#: SMTP line endings, folding at 78 where there is space.
POLICY = policy.SMTP.clone(max_line_length=78, refold_source="none")
#: For SMTPUTF8 mail (RFC 6532): addresses are written in UTF-8, since an RFC 2047
#: encoded-word inside an address is invalid (RFC 2047 section 5).
POLICY_UTF8 = POLICY.clone(utf8=True)


class HeaderInjection(ValueError):
    pass


def _clean(value: str, name: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise HeaderInjection(f"line break in {name}")
    return value


def compose(*, sender_name: str, sender_email: str, to: str, subject: str, text: str,
            html: str | None, message_id: str, date: dt.datetime,
            extra_headers: dict[str, str] | None = None, cte: str | None = None) -> EmailMessage:
    """A multipart/alternative message (text first, HTML preferred by clients).

    ``cte`` forces the parts' Content-Transfer-Encoding (``7bit``, ``8bit``); by default the
    email package picks one (quoted-printable when a line is longer than 78).
    """
    msg = EmailMessage(policy=POLICY_UTF8 if not (sender_email + to).isascii() else POLICY)
    local, _, domain = _clean(sender_email, "From").rpartition("@")
    msg["From"] = Address(display_name=_clean(sender_name, "From name"), username=local, domain=domain)
    to_local, _, to_domain = _clean(to, "To").rpartition("@")
    msg["To"] = Address(username=to_local, domain=to_domain)
    msg["Subject"] = _clean(subject, "Subject")
    msg["Date"] = format_datetime(date.astimezone(dt.UTC))
    msg["Message-ID"] = _clean(message_id, "Message-ID")
    msg["Auto-Submitted"] = "auto-generated"
    for name, value in (extra_headers or {}).items():
        msg[name] = _clean(value, name)
    msg.set_content(text, cte=cte)
    if html is not None:
        msg.add_alternative(html, subtype="html", cte=cte)
    return msg
