"""Mailing lists of an account."""

from __future__ import annotations

from sqlalchemy import select

from flexmail.extensions import db
from flexmail.models import MailingList
from flexmail.services.context import parse_address
from flexmail.services.errors import NotFound, ValidationFailed
from flexmail.services.unit_of_work import unit_of_work

SUPPORTED_LANGUAGES = ("en", "de")


def create_list(account_id: int, *, name: str, sender_name: str, sender_email: str,
                consent_text: str, language: str = "en",
                confirm_redirect_url: str | None = None) -> MailingList:
    """Create a list. Sender name and address end up in mail headers, so no line breaks."""
    for field_name, value in (("name", name), ("sender_name", sender_name)):
        if any(c in value for c in "\r\n\0"):
            raise ValidationFailed("Invalid input.", fields={field_name: ["Line breaks are not allowed."]})
    if language not in SUPPORTED_LANGUAGES:
        raise ValidationFailed("Invalid input.", fields={"language": [f"One of {', '.join(SUPPORTED_LANGUAGES)}."]})
    sender = parse_address(sender_email, field_name="sender_email")
    with unit_of_work() as uow:
        row = MailingList(
            account_id=account_id, name=name.strip(), sender_name=sender_name.strip(),
            sender_email=sender.normalized, consent_text=consent_text.strip(), language=language,
            confirm_redirect_url=confirm_redirect_url,
        )
        uow.session.add(row)
    return row


def get_list(account_id: int, list_id: int) -> MailingList:
    """The list if it belongs to the account; another tenant's list is simply not found."""
    row = db.session.get(MailingList, list_id)
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
