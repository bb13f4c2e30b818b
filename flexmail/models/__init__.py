"""Tables. Importing this package registers every model with the metadata."""

from flexmail.models.accounts import Account, ApiKey
from flexmail.models.audit import AuditEntry
from flexmail.models.bounces import BouncePolicy, BounceRecord, HookEndpoint, HookEventSeen
from flexmail.models.campaigns import Campaign
from flexmail.models.consent_events import ConsentEvent, LedgerNode, LedgerTreeHead
from flexmail.models.contact_imports import ContactImport, ContactImportPart
from flexmail.models.dashboard import DashboardSession
from flexmail.models.flood import FloodCounter
from flexmail.models.forwarding import CampaignForwardDay, ForwardOptOut, ForwardQuota
from flexmail.models.idempotency import IdempotencyRecord
from flexmail.models.leases import Lease
from flexmail.models.lists import ListLogo, MailingList
from flexmail.models.outbox import OutboxMessage
from flexmail.models.spool import SpoolApplied
from flexmail.models.subscriptions import Subscription
from flexmail.models.suppression_imports import SuppressionImport
from flexmail.models.suppressions import Suppression, SuppressionLift
from flexmail.models.webhooks import WebhookDelivery, WebhookEndpoint

__all__ = [
    "Account",
    "ApiKey",
    "AuditEntry",
    "BouncePolicy",
    "BounceRecord",
    "Campaign",
    "CampaignForwardDay",
    "ContactImport",
    "ContactImportPart",
    "ConsentEvent",
    "DashboardSession",
    "FloodCounter",
    "ForwardOptOut",
    "ForwardQuota",
    "HookEndpoint",
    "HookEventSeen",
    "IdempotencyRecord",
    "Lease",
    "LedgerNode",
    "LedgerTreeHead",
    "ListLogo",
    "MailingList",
    "OutboxMessage",
    "SpoolApplied",
    "Subscription",
    "Suppression",
    "SuppressionImport",
    "SuppressionLift",
    "WebhookDelivery",
    "WebhookEndpoint",
]
