"""Mailing lists of an account."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from flexmail.domain.forwarding import FORWARD_MODES, SERVER
from flexmail.domain.languages import SUPPORTED as SUPPORTED_LANGUAGES
from flexmail.extensions import db
from flexmail.models import MailingList
from flexmail.services.consent import branding
from flexmail.services.platform.context import parse_address
from flexmail.services.platform.errors import NotFound, ValidationFailed
from flexmail.services.platform.unit_of_work import unit_of_work

_UNSET = object()


def _check_language(language: str) -> None:
    if language not in SUPPORTED_LANGUAGES:
        raise ValidationFailed("Invalid input.", fields={"language": [f"One of {', '.join(SUPPORTED_LANGUAGES)}."]})


def _check_forward_mode(mode: str) -> None:
    if mode not in FORWARD_MODES:
        raise ValidationFailed("Invalid input.", fields={"forward_mode": [f"One of {', '.join(FORWARD_MODES)}."]})


def create_list(account_id: int, *, name: str, sender_name: str, sender_email: str,
                consent_text: str, language: str = "en",
                confirm_redirect_url: str | None = None, logo_url: str | None = None,
                forward_mode: str = SERVER, **brand) -> MailingList:
    """Create a list. Sender name and address end up in mail headers, so no line breaks.

    Branding (``accent_color``, ``postal_address``, ``contact_email``, ``privacy_url``) is
    optional; a ``logo_url`` is fetched now, once, and a logo that cannot be used is a 422.
    ``forward_mode`` is ``server`` (we send forwards) or ``client`` (the forwarder's own
    mail program does; standards H2).
    """
    for field_name, value in (("name", name), ("sender_name", sender_name)):
        if any(c in value for c in "\r\n\0"):
            raise ValidationFailed("Invalid input.", fields={field_name: ["Line breaks are not allowed."]})
    _check_language(language)
    _check_forward_mode(forward_mode)
    sender = parse_address(sender_email, field_name="sender_email")
    brand = branding.clean_branding(brand)
    fetched = branding.fetch_logo(logo_url) if logo_url else None  # before the transaction: it waits on I/O
    with unit_of_work() as uow:
        row = MailingList(
            account_id=account_id, name=name.strip(), sender_name=sender_name.strip(),
            sender_email=sender.normalized, consent_text=consent_text.strip(), language=language,
            confirm_redirect_url=confirm_redirect_url, forward_mode=forward_mode, **brand,
        )
        uow.session.add(row)
        if fetched:
            uow.session.flush()
            branding.store_logo(uow.session, row.id, logo_url, fetched)
    return row


def update_branding(account_id: int, list_id: int, *, language: str | None = None,
                    logo_url=_UNSET, forward_mode: str | None = None, **brand) -> MailingList:
    """Change a list's language, branding and forward mode; fields not given stay, ``None``
    clears one (a forward mode cannot be cleared, only changed).

    A new ``logo_url`` is fetched again (once); ``logo_url=None`` removes the logo.
    """
    get_list(account_id, list_id)
    if language is not None:
        _check_language(language)
    if forward_mode is not None:
        _check_forward_mode(forward_mode)
    brand = branding.clean_branding(brand)
    fetched = branding.fetch_logo(logo_url) if logo_url not in (_UNSET, None) else None
    with unit_of_work() as uow:
        row = uow.session.get(MailingList, list_id)
        if language is not None:
            row.language = language
        if forward_mode is not None:
            row.forward_mode = forward_mode
        for key, value in brand.items():
            setattr(row, key, value)
        if logo_url is not _UNSET:
            branding.store_logo(uow.session, list_id, logo_url, fetched)
    return row


def get_list(account_id: int, list_id: int) -> MailingList:
    """The list if it belongs to the account; another tenant's list is simply not found."""
    row = db.session.get(MailingList, list_id)
    if row is None or row.account_id != account_id:
        raise NotFound("No such list.")
    return row


#: What a signup needs of its list, read by one prebuilt Core statement (``signup_list``).
_SIGNUP_LIST = select(MailingList.id, MailingList.account_id, MailingList.name, MailingList.language,
                      MailingList.consent_text).where(MailingList.id == bindparam("list_id"))


def signup_list(account_id: int, list_id: int):
    """``get_list`` for the signup path: the columns it uses as a row, no ORM object."""
    row = db.session.connection().execute(_SIGNUP_LIST, {"list_id": list_id}).one_or_none()
    if row is None or row.account_id != account_id:
        raise NotFound("No such list.")
    return row


def get_public_list(list_id: int) -> MailingList:
    row = db.session.get(MailingList, list_id)
    if row is None:
        raise NotFound("No such list.")
    return row


def list_lists(account_id: int) -> list[MailingList]:
    return list(db.session.scalars(
        select(MailingList).where(MailingList.account_id == account_id).order_by(MailingList.id)
    ))
