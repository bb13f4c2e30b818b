"""Smoke tests of the production brokers: a confirmation mail travels through RabbitMQ and Redis."""

from __future__ import annotations

import uuid

import dramatiq
import pytest

from tests.conftest import RABBIT_URL, REDIS_URL, need_service


@pytest.mark.parametrize("broker_url,host_port", [
    pytest.param(RABBIT_URL, ("127.0.0.1", 5672), marks=pytest.mark.rabbitmq, id="rabbitmq"),
    pytest.param(REDIS_URL, ("127.0.0.1", 6379), marks=pytest.mark.redis, id="redis"),
])
def test_confirmation_mail_goes_through_a_real_broker(make_app, app_config, maildir_for, broker_url, host_port):
    """With FLEXMAIL_BROKER_URL pointing at a real broker, a separate worker sends the queued mail."""
    need_service(broker_url.split(":")[0], *host_port)
    app = make_app({**app_config, "BROKER_URL": broker_url, "BROKER_NAMESPACE": f"fm-smoke-{uuid.uuid4().hex[:8]}"})
    broker = app.extensions["dramatiq"]
    from flexmail.services.consent import subscriptions
    from flexmail.services.marketer import accounts, lists
    from flexmail.services.platform.context import RequestMeta

    queue = "mail"
    if broker_url.startswith("amqp"):
        broker.flush(queue)
    with app.app_context():
        account_id, _ = accounts.create_account("A", scopes=["marketer"])
        list_id = lists.create_list(account_id, name="L", sender_name="S", sender_email="s@example.com",
                                    consent_text="C").id
        subscriptions.request_subscription(account_id, list_id, email="broker@example.com",
                                           meta=RequestMeta("192.0.2.1", "UA"))
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        broker.join(queue, timeout=30_000)
        worker.join()
    finally:
        worker.stop()
    mails = maildir_for(app)
    assert len(mails) == 1 and mails[0]["To"].addresses[0].addr_spec == "broker@example.com"
