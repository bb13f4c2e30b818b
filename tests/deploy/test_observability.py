"""/ready and /metrics: readiness checks against real services, the exposed series, no secret in them."""

from __future__ import annotations

import re
import warnings

import flask_migrate

from flexmail import create_app
from tests.conftest import HASH_KEY, SECRET
from tests.helpers import token_of
from tests.unsubscribe_support import confirm_signup, unsubscribe_path

ONE_CLICK = "List-Unsubscribe=One-Click"


def _standalone(tmp_path, **overrides):
    """An app outside the shared fixtures (its database may be absent on purpose)."""
    config = {"TESTING": True, "EMBEDDED_WORKER": False, "OUTBOX_SWEEP_INTERVAL": 0, "SPOOL_DRAIN_INTERVAL": 0,
              "SECRET_KEYS": [SECRET], "HASH_KEY": HASH_KEY, "MAIL_URL": f"maildir:{tmp_path / 'mail'}",
              "DATABASE_URL": f"sqlite:///{tmp_path / 'ready.db'}", "BROKER_URL": "stub",
              "SPOOL_DIR": str(tmp_path / "spool"), "DATABASE_CONNECT_TIMEOUT": 2}
    config.update(overrides)
    return create_app(config)


def _migrated(tmp_path, **overrides):
    app = _standalone(tmp_path, **overrides)
    with app.app_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # migrations/env.py uses get_engine()
        flask_migrate.upgrade()
    return app


def test_ready_when_database_broker_and_migrations_are_fine(tmp_path):
    """A migrated database and a reachable broker: /ready answers 200 with every check ok."""
    app = _migrated(tmp_path)
    response = app.test_client().get("/ready")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "checks": {"database": "ok", "migrations": "ok", "broker": "ok"}}


def test_ready_is_503_when_the_database_is_unreachable(tmp_path):
    """A PostgreSQL nobody listens on: /ready answers 503 with Retry-After and says the database is down."""
    app = _standalone(tmp_path, DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:9/absent")
    response = app.test_client().get("/ready")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.json["checks"]["database"] == "unreachable"
    assert response.json["status"] == "not ready"
    assert app.test_client().get("/health").status_code == 200  # alive, just not ready


def test_ready_is_503_when_migrations_are_behind(tmp_path):
    """Tables made without the migrations (no alembic_version at head): /ready answers 503, migrations behind."""
    from flexmail.extensions import db

    app = _standalone(tmp_path)
    with app.app_context():
        db.create_all()
    response = app.test_client().get("/ready")
    assert response.status_code == 503
    assert response.json["checks"] == {"database": "ok", "migrations": "behind", "broker": "ok"}


def test_ready_is_503_when_the_redis_broker_is_unreachable(tmp_path):
    """A Redis broker nobody listens on: /ready answers 503 and names the broker."""
    app = _migrated(tmp_path, BROKER_URL="redis://127.0.0.1:9/0", RATELIMIT_STORAGE_URL="memory://")
    response = app.test_client().get("/ready")
    assert response.status_code == 503
    assert response.json["checks"]["broker"] == "unreachable"
    assert response.json["checks"]["database"] == "ok"


def _series(body: str) -> dict[str, float]:
    """``name{labels}`` -> value, for every sample line."""
    samples = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


def _unsubscribes(client, method: str) -> float:
    return _series(client.get("/metrics").get_data(as_text=True)).get(
        f'flexmail_unsubscribes_total{{method="{method}"}}', 0.0)


def test_metrics_expose_the_named_series_without_tokens_or_addresses(app, client, account, create_list, subscribe,
                                                                     worker, maildir):
    """After a signup, a confirm and a one-click unsubscribe, /metrics has requests by route rule, the
    unsubscribe counter for one-click (+1), outbox, queue and spool gauges, and no token, address or IP."""
    list_id = create_list()["id"]
    sub_id = confirm_signup(client, subscribe, worker, maildir, list_id, email="Metric.Reader@Example.com")
    path = unsubscribe_path(client, account, sub_id)
    before = _unsubscribes(client, "one-click")
    assert client.post(path, data=ONE_CLICK, content_type="application/x-www-form-urlencoded",
                       environ_base={"REMOTE_ADDR": "198.51.100.23"}).status_code == 200

    body = client.get("/metrics").get_data(as_text=True)
    samples = _series(body)
    assert samples['flexmail_unsubscribes_total{method="one-click"}'] == before + 1
    assert samples['flexmail_unsubscribes_total{method="mailto"}'] >= 0
    assert samples['flexmail_http_request_duration_seconds_count{method="POST",route="/unsubscribe/<token>",'
                   'status="200"}'] >= 1
    assert samples['flexmail_http_request_duration_seconds_count{method="POST",route="/confirm/<token>",'
                   'status="200"}'] >= 1
    assert samples["flexmail_outbox_depth"] == 0  # the worker sent the confirmation
    assert samples["flexmail_spool_pending_lines"] == 0
    assert samples["flexmail_database_up"] == 1
    assert samples["flexmail_ledger_unsealed_events"] >= 0  # the ledger's sealer marks unsealed rows (seq NULL)
    assert samples["flexmail_ledger_sealing_lag_seconds"] >= 0

    token = token_of(path)
    assert token not in body
    assert "/unsubscribe/" + token not in body
    for label in re.findall(r'route="([^"]*)"', body):  # every route label is a rule or "<unmatched>"
        assert label == "<unmatched>" or label.startswith("/"), label
        assert len(label) < 80 and token[:12] not in label
    for secret in ("example.com", "Example.com", "example.org", "@", "198.51.100.23", "203.0.113.7", account.key):
        assert secret not in body, secret


def test_metrics_count_the_outbox_and_the_queue(app, client, create_list, subscribe):
    """With no worker running, one signup leaves one outbox row and one queued message: both gauges say 1."""
    list_id = create_list()["id"]
    samples = _series(client.get("/metrics").get_data(as_text=True))
    assert samples["flexmail_outbox_depth"] == 0
    assert samples.get('flexmail_queue_depth{queue="mail"}', 0) == 0
    assert subscribe(list_id, email="waiting@example.org").status_code == 202
    samples = _series(client.get("/metrics").get_data(as_text=True))
    assert samples["flexmail_outbox_depth"] == 1
    assert samples["flexmail_outbox_oldest_due_age_seconds"] >= 0
    assert samples['flexmail_queue_depth{queue="mail"}'] == 1
    assert samples['flexmail_queue_lag_seconds{queue="mail"}'] >= 0


def test_unmatched_paths_are_one_label_not_their_path(client):
    """A request to a path no route matches is counted under "<unmatched>": the path never becomes a label."""
    client.get("/no-such-page/secret-looking-token-0123456789")
    body = client.get("/metrics").get_data(as_text=True)
    assert 'route="<unmatched>"' in body
    assert "secret-looking-token" not in body


def test_metrics_are_refused_to_remote_clients_without_the_token(make_app, app_config):
    """/metrics answers 403 to a non-loopback client, 403 with a wrong bearer token, 200 with the right one."""
    app = make_app({**app_config, "METRICS_TOKEN": "scrape-secret-0123"})
    client = app.test_client()
    remote = {"REMOTE_ADDR": "203.0.113.50"}
    assert client.get("/metrics").status_code == 200  # loopback
    assert client.get("/metrics", environ_base=remote).status_code == 403
    assert client.get("/metrics", environ_base=remote, headers={"Authorization": "Bearer wrong"}).status_code == 403
    ok = client.get("/metrics", environ_base=remote, headers={"Authorization": "Bearer scrape-secret-0123"})
    assert ok.status_code == 200
    assert "scrape-secret" not in ok.get_data(as_text=True)


def test_metrics_behind_a_proxy_judge_the_forwarded_client(make_app, app_config):
    """Behind a trusted proxy on loopback, the client it forwards decides: an outside client gets 403."""
    app = make_app({**app_config, "TRUSTED_PROXIES": 1})
    client = app.test_client()
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


def test_loopback_access_can_be_turned_off(make_app, app_config):
    """With METRICS_LOOPBACK off, even loopback needs the token."""
    app = make_app({**app_config, "METRICS_LOOPBACK": "false"})
    assert app.test_client().get("/metrics").status_code == 403


def test_worker_metrics_add_dramatiqs_prometheus_middleware(make_app, app_config):
    """FLEXMAIL_WORKER_METRICS adds dramatiq's Prometheus middleware to the broker; without it there is none."""
    from dramatiq.middleware.prometheus import Prometheus

    plain = make_app(app_config)
    assert not any(isinstance(m, Prometheus) for m in plain.extensions["dramatiq"].middleware)
    workers = make_app({**app_config, "WORKER_METRICS": "1"})
    assert any(isinstance(m, Prometheus) for m in workers.extensions["dramatiq"].middleware)
