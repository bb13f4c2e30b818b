"""Subscriptions read or written by one Core statement, for the hot paths.

An ORM ``Subscription`` costs a second SELECT whenever it is touched after a commit
(expired attributes) and an identity-map entry per request; the signup, confirm and
one-click paths need neither. They read (or ``UPDATE ... RETURNING``) the columns they use
into a ``SubscriptionRow``, which has the attribute names of the model, so
``record_event``, ``outbox.add_confirmation`` and the API schemas take it as they take a
model.
"""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import func, select

from flexmail.models import MailingList, OutboxMessage, Subscription

#: Every column of a subscription, for RETURNING and SELECT.
SUBSCRIPTION_COLUMNS = tuple(Subscription.__table__.c)


class SubscriptionRow(SimpleNamespace):
    """One subscription (and whatever else its statement returned) as plain attributes."""

    @classmethod
    def of(cls, row) -> SubscriptionRow | None:
        return None if row is None else cls(**row._mapping)


def list_column(column, label: str):
    """A column of the subscription's list, as a scalar subquery correlated to the subscription
    (usable in an UPDATE's RETURNING, where SQLite allows no join)."""
    return (select(column).where(MailingList.id == Subscription.list_id)
            .correlate(Subscription).scalar_subquery().label(label))


def brand_columns() -> tuple:
    """The list's branding, read in the same statement as the subscription (scalar
    subqueries, so an UPDATE's RETURNING can carry them too); see ``branding.brand_of_row``."""
    from flexmail.models import ListLogo

    logo = (select(ListLogo.sha256).where(ListLogo.list_id == Subscription.list_id)
            .correlate(Subscription).scalar_subquery().label("brand_logo_sha"))
    return (*(list_column(getattr(MailingList, name), f"brand_{name}") for name in BRAND_FIELDS), logo)


#: The list columns a page's branding needs (``services.branding.Brand``).
BRAND_FIELDS = ("id", "language", "name", "sender_name", "accent_color", "postal_address", "contact_email",
                "privacy_url")


def pending_mails():
    """How many confirmation mails of the subscription still wait to be sent: only when there
    are some does a decision (confirm, unsubscribe, cancel) need to skip them."""
    return (select(func.count(OutboxMessage.id))
            .where(OutboxMessage.subscription_id == Subscription.id, OutboxMessage.status == "pending")
            .correlate(Subscription).scalar_subquery().label("pending_mails"))
