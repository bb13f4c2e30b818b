"""The development mailbox (``/dev/mail``): the mails this instance stored, for a newcomer
without a mail account.

It exists only when both hold: mail goes to a Maildir (``FLEXMAIL_MAIL_URL=maildir:...``,
the embedded default) and the instance runs in development mode (``FLEXMAIL_DEV_MODE=1``,
which ``./dev run`` sets; off by default, in production and in tests). Every other
configuration has no such route at all: the mails hold live confirmation and unsubscribe
tokens, and a relay's mails are not ours to show.
"""

from __future__ import annotations

from flexmail.mail import maildir_reader
from flexmail.mail.maildir_reader import MailSummary, MailView
from flexmail.services.platform.context import setting
from flexmail.services.platform.errors import NotFound

MAILDIR = "maildir:"


def available(config) -> bool:
    """Whether this configuration has a development mailbox (decided once, at app start)."""
    return bool(config.get("DEV_MODE")) and str(config.get("MAIL_URL") or "").startswith(MAILDIR)


def _path() -> str:
    return setting("MAIL_URL")[len(MAILDIR):]


def list_mails() -> list[MailSummary]:
    """The stored mails, newest first (at most 200)."""
    return maildir_reader.list_mails(_path())


def get_mail(mail_id: str) -> MailView:
    """One stored mail, both parts made safe to show. Raises ``NotFound`` for an id the
    Maildir does not list (a path such as ``../x`` included: ids are never paths)."""
    mail = maildir_reader.read_mail(_path(), mail_id)
    if mail is None:
        raise NotFound("No such mail.")
    return mail
