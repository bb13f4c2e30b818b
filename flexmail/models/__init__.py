"""Tables. Importing this package registers every model with the metadata."""

from flexmail.models.accounts import Account, ApiKey
from flexmail.models.audit import AuditEntry
from flexmail.models.consent_events import ConsentEvent, LedgerHead
from flexmail.models.lists import MailingList
from flexmail.models.outbox import OutboxMessage
from flexmail.models.subscriptions import Subscription
from flexmail.models.suppressions import Suppression

__all__ = [
    "Account",
    "ApiKey",
    "AuditEntry",
    "ConsentEvent",
    "LedgerHead",
    "MailingList",
    "OutboxMessage",
    "Subscription",
    "Suppression",
]
