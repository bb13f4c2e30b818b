"""The JSON API (flask-smorest): one module per resource, one URL table per blueprint."""

from __future__ import annotations

from flexmail.api.errors import FlexmailApi

api = FlexmailApi()


def init_app(app) -> None:
    from flexmail.api import (
        campaigns,
        erasures,
        hook_endpoints,
        hooks,
        internal,
        lists,
        people,
        proof,
        subscriptions,
        suppressions,
        unsubscribes,
    )

    api.init_app(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"}}}, "security": [{"bearer": []}]})
    for module in (lists, subscriptions, proof, people, unsubscribes, campaigns, suppressions, erasures,
                   hook_endpoints):
        app.extensions["csrf"].exempt(module.blp)
        api.register_blueprint(module.blp)
    # ESP events: signed by the provider, not by a session; outside the OpenAPI description.
    app.extensions["csrf"].exempt(hooks.bp)
    app.register_blueprint(hooks.bp)
    app.extensions["csrf"].exempt(internal.bp)
    app.register_blueprint(internal.bp)
