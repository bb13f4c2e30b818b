"""Dramatiq actors: one line each, ids only (never an address or a model)."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker

from flexmail.services import outbox, retention


@dramatiq.actor(broker=StubBroker(), max_retries=outbox.MAX_ATTEMPTS, min_backoff=5_000,
                max_backoff=600_000, queue_name="mail")
def send_outbox(message_id: int) -> None:
    outbox.send_outbox(message_id)


@dramatiq.actor(broker=StubBroker(), max_retries=3, queue_name="maintenance", time_limit=3_600_000)
def run_retention() -> None:
    retention.run_retention()


ACTORS = (send_outbox, run_retention)


def bind_actors(broker: dramatiq.Broker) -> None:
    """Declare every actor on ``broker`` (the app's), replacing the placeholder broker."""
    for actor in ACTORS:
        actor.broker = broker
        broker.declare_actor(actor)
