"""The dramatiq broker: stub (in-process) on the embedded default, Redis or RabbitMQ in production.

Actors are declared on whichever broker the app built (``bind_actors``), so the module
that defines them imports nothing from the app, and tests can build brokers per run.
"""

from __future__ import annotations

import logging
import threading

import dramatiq
from dramatiq.middleware import Middleware

log = logging.getLogger(__name__)


class AppContextMiddleware(Middleware):
    """Runs each message inside the Flask app context, and ends its DB session after."""

    def __init__(self, app):
        self.app = app
        self._local = threading.local()

    def before_process_message(self, broker, message):
        ctx = self.app.app_context()
        ctx.push()
        self._local.ctx = ctx

    def _pop(self):
        ctx = getattr(self._local, "ctx", None)
        if ctx is not None:
            self._local.ctx = None
            ctx.pop()

    def after_process_message(self, broker, message, *, result=None, exception=None):
        self._pop()

    def after_skip_message(self, broker, message):
        self._pop()

    def before_worker_thread_shutdown(self, broker, thread):
        from flexmail.mail.transports import close_pooled

        close_pooled()  # the thread's SMTP connections end with it


class PeriodicMiddleware(Middleware):
    """A thread in every worker process that runs ``_loop`` from boot to shutdown, waking every
    ``interval`` seconds on ``self._stop`` (0: no thread). The sweepers and the sealer are these."""

    thread_name = "periodic"

    def __init__(self, app, interval: int):
        self.app = app
        self.interval = interval
        self._stop = threading.Event()

    def after_worker_boot(self, broker, worker):
        if self.interval <= 0:
            return
        self._stop.clear()
        threading.Thread(target=self._loop, name=self.thread_name, daemon=True).start()

    def before_worker_shutdown(self, broker, worker):
        self._stop.set()

    def _loop(self):
        raise NotImplementedError


class OutboxSweeperMiddleware(PeriodicMiddleware):
    """Worker processes (dramatiq's, or the embedded thread) offer to be the outbox sweeper.

    Each runs a thread that tries to take the ``outbox-sweeper`` lease (``services.delivery.outbox.run_sweeper``)
    every ``interval`` seconds; only its holder sweeps, so there is one sweeper per
    installation however many workers run. A holder that dies stops renewing and another
    worker takes over after three intervals.
    """

    thread_name = "outbox-sweeper"

    def _loop(self):
        from flexmail.services.delivery import outbox

        outbox.run_sweeper(self.app, self.interval, self._stop)


class WebhookSweeperMiddleware(PeriodicMiddleware):
    """The same for webhook deliveries (their own ``webhook-sweeper`` lease): due rows (first
    attempts missed, retries) are enqueued by one worker of the installation."""

    thread_name = "webhook-sweeper"

    def _loop(self):
        from flexmail.services.delivery import webhook_delivery

        webhook_delivery.run_sweeper(self.app, self.interval, self._stop)


def build_broker(url: str, *, namespace: str = "flexmail", redis_options: dict | None = None) -> dramatiq.Broker:
    """``stub``, ``redis://...`` or ``amqp://...``; ``redis_options`` go to the RedisBroker."""
    if url == "stub":
        from dramatiq.brokers.stub import StubBroker

        return StubBroker()
    if url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, namespace=namespace, **(redis_options or {}))
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url)
    raise ValueError("FLEXMAIL_BROKER_URL must be stub, redis://... or amqp://...")


def init_app(app) -> dramatiq.Broker:
    """Build the broker, add our middleware, make it global and bind the actors to it."""
    broker = build_broker(app.config["BROKER_URL"], namespace=app.config.get("BROKER_NAMESPACE", "flexmail"),
                          redis_options={"heartbeat_timeout": app.config["BROKER_HEARTBEAT_TIMEOUT"],
                                         "maintenance_chance": app.config["BROKER_MAINTENANCE_CHANCE"]})
    broker.add_middleware(AppContextMiddleware(app))
    broker.add_middleware(OutboxSweeperMiddleware(app, app.config["OUTBOX_SWEEP_INTERVAL"]))
    broker.add_middleware(WebhookSweeperMiddleware(app, app.config["OUTBOX_SWEEP_INTERVAL"]))
    from flexmail.sealer import LedgerSealerMiddleware

    broker.add_middleware(LedgerSealerMiddleware(app, app.config["LEDGER_SEAL_INTERVAL"]))
    dramatiq.set_broker(broker)
    from flexmail import tasks

    tasks.bind_actors(broker)
    app.extensions["dramatiq"] = broker
    return broker


def start_embedded_worker(app, broker) -> dramatiq.Worker:
    """The in-process worker of the embedded default (StubBroker has no other consumer)."""
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=200)
    worker.start()
    app.extensions["dramatiq_worker"] = worker
    return worker


def start_worker_with_first_request(app, broker) -> None:
    """On the embedded default, the process that serves HTTP runs the worker (and offers to
    be the sweeper), starting with its first request. CLI commands (``inbound deliver``,
    ``inbound serve``, ``outbox sweep``...) serve none, so they never start one; mail they
    commit is enqueued to nobody and sent by the sweeper of the web process."""
    lock = threading.Lock()

    @app.before_request
    def _start_embedded_worker():
        if "dramatiq_worker" in app.extensions:
            return
        with lock:
            if "dramatiq_worker" not in app.extensions:
                start_embedded_worker(app, broker)
