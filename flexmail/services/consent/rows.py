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

from sqlalchemy import bindparam, exists, func, insert, select, update

from flexmail.models import ConsentEvent, MailingList, OutboxMessage, Subscription, WebhookEndpoint
from flexmail.services.evidence.ledger import NEW_EVENT_COLUMNS

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


#: The list columns a page's branding needs (``services.consent.branding.Brand``).
BRAND_FIELDS = ("id", "language", "name", "sender_name", "accent_color", "postal_address", "contact_email",
                "privacy_url")


def pending_mails():
    """How many confirmation mails of the subscription still wait to be sent: only when there
    are some does a decision (confirm, unsubscribe, cancel) need to skip them."""
    return (select(func.count(OutboxMessage.id))
            .where(OutboxMessage.subscription_id == Subscription.id, OutboxMessage.status == "pending")
            .correlate(Subscription).scalar_subquery().label("pending_mails"))


def has_webhooks():
    """Whether the subscription's account has webhook endpoints: their deliveries must be
    written in the event's transaction (``services.delivery.webhooks``), which the one-statement
    paths below do not do, so those accounts take the general path."""
    return exists().where(WebhookEndpoint.account_id == Subscription.account_id,
                          WebhookEndpoint.deleted_at.is_(None)).label("has_webhooks")


def update_with_event(*conditions, **values):
    """One statement (PostgreSQL) that makes a guarded UPDATE of one subscription and inserts
    its event only if the UPDATE matched: ``WITH changed AS (UPDATE ... RETURNING id) INSERT
    INTO consent_events ... SELECT ... FROM changed RETURNING id``. Atomic on its own, so it
    runs in autocommit: no BEGIN and COMMIT round trips.

    Parameters: ``the_subscription``, ``email_read`` (the address the event's hashes commit
    to; the UPDATE matches only while the row still has it) and ``e_<column>`` for each of
    ``ledger.NEW_EVENT_COLUMNS``; ``values`` may use more. Their names differ from the
    columns of both tables, which SQLAlchemy would take as column values.
    """
    table, events = Subscription.__table__, ConsentEvent.__table__
    changed = (
        update(table)
        .where(table.c.id == bindparam("the_subscription"), *conditions,
               table.c.email.is_not_distinct_from(bindparam("email_read", type_=table.c.email.type)))
        .values(**values)
        .returning(table.c.id)
        .cte("changed")
    )
    row = select(*(bindparam(f"e_{name}", type_=events.c[name].type) for name in NEW_EVENT_COLUMNS))
    return insert(events).from_select(list(NEW_EVENT_COLUMNS), row.select_from(changed)).returning(events.c.id)


def event_parameters(event: dict) -> dict:
    """``ledger.event_values`` as ``update_with_event``'s ``e_`` parameters."""
    return {f"e_{name}": value for name, value in event.items()}
