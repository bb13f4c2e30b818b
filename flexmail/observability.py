"""Health, readiness and Prometheus metrics for every web process (and workers' middleware).

- ``/health``: the process answers (in ``public``).
- ``/ready``: the database answers, the broker answers and the schema is at the newest
  migration; 503 with the failing checks otherwise (a load balancer takes the process out).
- ``/metrics``: Prometheus text. Requests and latencies labelled by the route RULE
  (``/unsubscribe/<token>``), never the raw path, since tokens live in paths; outbox depth and
  age of the oldest due row, queue depth and lag, ledger sealing lag and spool lines waiting,
  read at scrape time; unsubscribes per method from ``services.platform.metrics``. Only loopback
  clients, or a client with ``Authorization: Bearer <FLEXMAIL_METRICS_TOKEN>``, may read it.

Under gunicorn ``PROMETHEUS_MULTIPROC_DIR`` is set (``deploy/gunicorn.conf.py``), so the
counters of all web workers (and of ``inbound serve`` when ``./dev up`` gives it the same
directory) are summed at each scrape. Dramatiq worker processes export their own figures
through dramatiq's Prometheus middleware (``FLEXMAIL_WORKER_METRICS=1``, port 9191).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import time

from flask import Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

REQUEST_SECONDS = Histogram(
    "flexmail_http_request_duration_seconds", "HTTP requests by route rule, method and status: latency.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
#: The label of a request that matched no route (404s, probes): never its path.
UNMATCHED = "<unmatched>"


# --- readiness ---------------------------------------------------------------------------------

def _check_database() -> tuple[bool, str | None]:
    """The database answers and its schema is at the migrations' head."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from flexmail.extensions import db

    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            try:
                current = set(conn.scalars(text("SELECT version_num FROM alembic_version")))
            except Exception:  # no alembic_version table: never migrated
                current = set()
    except Exception as exc:
        return False, f"database unreachable ({type(exc).__name__})"
    directory = current_app.extensions["migrate"].directory
    heads = set(ScriptDirectory(directory).get_heads())
    if current != heads:
        return True, "migrations not at head"
    return True, None


def _check_broker() -> str | None:
    broker = current_app.extensions["dramatiq"]
    try:
        if hasattr(broker, "client"):  # Redis
            broker.client.ping()
        elif hasattr(broker, "get_queue_message_counts"):  # RabbitMQ: opens (or reuses) a connection
            broker.connection  # noqa: B018
    except Exception as exc:
        return f"broker unreachable ({type(exc).__name__})"
    return None


def ready():
    db_up, db_problem = _check_database()
    checks = {"database": "ok" if db_up else "unreachable",
              "migrations": "ok" if db_problem is None else ("unknown" if not db_up else "behind"),
              "broker": "ok"}
    broker_problem = _check_broker()
    if broker_problem:
        checks["broker"] = "unreachable"
    ok = all(v == "ok" for v in checks.values())
    if not ok:
        log.warning("not ready: %s", ", ".join(p for p in (db_problem, broker_problem) if p))
    body = {"status": "ready" if ok else "not ready", "checks": checks}
    headers = {} if ok else {"Retry-After": "10"}
    return Response(json.dumps(body), status=200 if ok else 503, mimetype="application/json", headers=headers)


# --- queues ------------------------------------------------------------------------------------

def queue_figures(broker) -> dict[str, tuple[int, float | None]]:
    """Per (non-delay) queue: messages waiting, and seconds since the oldest of them was enqueued
    (Redis and the stub broker; ``None`` where the broker does not say, e.g. RabbitMQ)."""
    figures = {}
    now_ms = time.time() * 1000
    for name in sorted(broker.get_declared_queues()):
        if name.endswith(".DQ"):  # delayed messages wait on purpose: their depth says nothing of lag
            continue
        if hasattr(broker, "client"):  # Redis: ids in a list (oldest first), bodies in a hash
            key = f"{broker.namespace}:{name}"
            depth = broker.client.llen(key)
            lag = None
            first = broker.client.lindex(key, 0)
            if first is not None:
                data = broker.client.hget(f"{key}.msgs", first)
                if data:
                    lag = max(0.0, (now_ms - json.loads(data)["message_timestamp"]) / 1000)
            figures[name] = (depth, lag if depth else 0.0)
        elif hasattr(broker, "get_queue_message_counts"):
            figures[name] = (broker.get_queue_message_counts(name)[0], None)
        elif hasattr(broker, "queues"):  # StubBroker
            queue = broker.queues[name]
            items = list(queue.queue)  # encoded messages, oldest first
            lag = (now_ms - json.loads(items[0])["message_timestamp"]) / 1000 if items else 0.0
            figures[name] = (len(items), max(0.0, lag))
    return figures


class ScrapeCollector:
    """The gauges read at scrape time from the database, the spool and the broker."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        from flexmail.services.optout import spool
        from flexmail.services.platform import metrics

        up = GaugeMetricFamily("flexmail_database_up", "1 when the scrape could read the database.")
        try:
            figures = metrics.snapshot()
            up.add_metric([], 1)
        except Exception as exc:
            log.warning("metrics: database figures unavailable (%s)", type(exc).__name__)
            figures = None
            up.add_metric([], 0)
        yield up
        if figures:
            yield GaugeMetricFamily("flexmail_outbox_depth", "Outbox rows waiting to be sent.",
                                    value=figures["outbox"]["depth"])
            yield GaugeMetricFamily("flexmail_outbox_oldest_due_age_seconds",
                                    "Age of the oldest outbox row that is due to be sent (0: none).",
                                    value=figures["outbox"]["oldest_due_age_seconds"])
            ledger = figures["ledger"]
            if ledger is not None:
                yield GaugeMetricFamily("flexmail_ledger_unsealed_events",
                                        "Consent events not yet placed in their account's tree.",
                                        value=ledger["unsealed"])
                yield GaugeMetricFamily("flexmail_ledger_sealing_lag_seconds",
                                        "Age of the oldest consent event not yet sealed (0: none).",
                                        value=ledger["oldest_unsealed_age_seconds"])
        try:  # from the spool's files alone: it counts while the database is down
            with self.app.app_context():
                pending = spool.status()["pending"]
            yield GaugeMetricFamily("flexmail_spool_pending_lines",
                                    "Opt-outs in the local spool waiting for the database.", value=pending)
        except Exception as exc:
            log.warning("metrics: spool figures unavailable (%s)", type(exc).__name__)
        depth = GaugeMetricFamily("flexmail_queue_depth", "Messages waiting in a broker queue.", labels=["queue"])
        lag = GaugeMetricFamily("flexmail_queue_lag_seconds",
                                "Seconds the oldest waiting message has been in its queue.", labels=["queue"])
        try:
            for name, (count, age) in queue_figures(self.app.extensions["dramatiq"]).items():
                depth.add_metric([name], count)
                if age is not None:
                    lag.add_metric([name], age)
        except Exception as exc:
            log.warning("metrics: broker figures unavailable (%s)", type(exc).__name__)
        yield depth
        yield lag


def _allowed() -> bool:
    token = current_app.config["METRICS_TOKEN"]
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), str(token).encode()):
        return True
    if not current_app.config["METRICS_LOOPBACK"]:
        return False
    try:  # with FLEXMAIL_TRUSTED_PROXIES this is the client behind the proxy, not the proxy
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def metrics_view():
    if not _allowed():
        return Response(json.dumps({"error": {"code": "forbidden", "message": "metrics are not public",
                                              "fields": {}}}), status=403, mimetype="application/json")
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(ScrapeCollector(current_app._get_current_object()))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(scrape)
        body = generate_latest(scrape)
    else:
        body = generate_latest(REGISTRY) + generate_latest(scrape)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


# --- wiring ------------------------------------------------------------------------------------

def init_app(app) -> None:
    """Routes /ready and /metrics, request timing, and the workers' Prometheus middleware."""
    app.config.setdefault("METRICS_TOKEN", None)
    app.config["METRICS_LOOPBACK"] = str(app.config.get("METRICS_LOOPBACK", True)).lower() in {
        "1", "true", "yes", "on"}
    app.add_url_rule("/ready", "ready", ready)
    app.add_url_rule("/metrics", "metrics", metrics_view)

    @app.before_request
    def _start_timer():
        g.flexmail_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = g.pop("flexmail_started", None)
        if started is not None:
            rule = request.url_rule.rule if request.url_rule is not None else UNMATCHED
            REQUEST_SECONDS.labels(request.method, rule, str(response.status_code)).observe(
                time.perf_counter() - started)
        return response

    if str(app.config.get("WORKER_METRICS", "")).lower() in {"1", "true", "yes", "on"}:
        from dramatiq.middleware.prometheus import Prometheus

        app.extensions["dramatiq"].add_middleware(Prometheus())
