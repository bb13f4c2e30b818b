"""Flexmail: the consent side of email marketing."""

from __future__ import annotations

import logging
import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: config, extensions, broker, blueprints, CLI. No business rules here."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    app = Flask(
        __name__,
        instance_path=os.environ.get("FLEXMAIL_INSTANCE_PATH", os.path.join(root, "instance")),
        template_folder=os.path.join(root, "templates"),
        static_folder=os.path.join(root, "static"),
    )
    from flexmail import config, redact

    config.load(app, test_config)
    redact.install(getattr(logging, str(app.config["LOG_LEVEL"]).upper(), logging.INFO))

    if app.config["TRUSTED_PROXIES"] > 0:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    from flexmail import web

    web.init_app(app)  # before any blueprint: every <int:...> rule gets the bounded converter

    from flexmail import broker as broker_module
    from flexmail import database, models  # noqa: F401  (registers tables)
    from flexmail.extensions import db, migrate
    from flexmail.guards import csrf, limiter

    db.init_app(app)
    database.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(root, "migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    broker = broker_module.init_app(app)
    from flexmail import drainer

    drainer.init_app(app, broker)

    from flexmail import api, i18n, observability, public

    i18n.init_app(app)

    api.init_app(app)
    public.init_app(app)
    from flexmail import dashboard

    dashboard.init_app(app)
    observability.init_app(app)  # /ready, /metrics, request timing

    from flexmail import cli

    cli.init_app(app)

    if app.config["BROKER_URL"] == "stub" and app.config["EMBEDDED_WORKER"]:
        broker_module.start_worker_with_first_request(app, broker)
    return app
