"""Dramatiq actors: one line each, ids only (never an address or a model).

The one exception to "ids only" is ``send_forward``: a forward to a friend is never stored (no outbox
row), so its message must carry the friend's address, sealed (encrypted) by
``services.forwards.forwarding``. It has no dramatiq retries: a failed message would go, with its
traceback, into a retry record and then the dead-letter queue (standards K4), so the
service never raises and re-enqueues itself a few times instead.

``send_outbox`` has no dramatiq retries either: the retry schedule lives on the outbox row,
and the service records every send failure there instead of raising.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker

from flexmail.services.delivery import outbox, webhook_delivery
from flexmail.services.evidence import retention, sealing
from flexmail.services.forwards import forwarding
from flexmail.services.marketer import contact_imports
from flexmail.services.suppression import imports


@dramatiq.actor(broker=StubBroker(), max_retries=0, queue_name="mail")
def send_outbox(message_id: int) -> None:  # the outbox row's schedule is the only retry
    outbox.send_outbox(message_id)


@dramatiq.actor(broker=StubBroker(), max_retries=0, queue_name="forward")
def send_forward(campaign_id: int, sealed: str, attempt: int = 1) -> None:
    forwarding.deliver_forward(campaign_id, sealed, attempt=attempt)


@dramatiq.actor(broker=StubBroker(), max_retries=5, min_backoff=5_000, max_backoff=300_000,
                time_limit=6 * 3600 * 1000, queue_name="imports")
def import_suppressions(import_id: int) -> None:
    imports.run_import(import_id)


@dramatiq.actor(broker=StubBroker(), max_retries=3, queue_name="maintenance", time_limit=3_600_000)
def run_retention() -> None:
    retention.run_retention()


@dramatiq.actor(broker=StubBroker(), max_retries=3, queue_name="ledger", time_limit=3_600_000)
def seal_ledger(account_id: int) -> None:
    sealing.seal(account_id, wait=False)




@dramatiq.actor(broker=StubBroker(), max_retries=5, min_backoff=5_000, max_backoff=300_000,
                time_limit=6 * 3600 * 1000, queue_name="imports")
def import_contacts(import_id: int) -> None:
    contact_imports.run_import(import_id)


@dramatiq.actor(broker=StubBroker(), max_retries=0, queue_name="webhooks")
def deliver_webhook(delivery_id: int) -> None:  # the row's schedule is the only retry
    webhook_delivery.deliver(delivery_id)


ACTORS = (send_outbox, send_forward, import_suppressions, run_retention, deliver_webhook, import_contacts,
          seal_ledger)


def bind_actors(broker: dramatiq.Broker) -> None:
    """Declare every actor on ``broker`` (the app's), replacing the placeholder broker."""
    for actor in ACTORS:
        actor.broker = broker
        broker.declare_actor(actor)
