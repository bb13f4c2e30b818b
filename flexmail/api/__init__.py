"""The JSON API (flask-smorest): one module per resource, one URL table per blueprint."""

from __future__ import annotations

from flexmail.api.openapi import DocumentedApi

api = DocumentedApi()

SPEC_KWARGS = {
    "info": {"description": "The consent side of email marketing: double opt-in with proof, one-click "
                            "unsubscribe, suppression, proof export. Errors are always "
                            "`{\"error\": {\"code\", \"message\", \"fields\"}}`; POST and DELETE accept an "
                            "`Idempotency-Key`; every answer carries `RateLimit-*` headers."},
    "components": {"securitySchemes": {"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "An API key (`fm_...`). Each operation names the scope it needs (`x-scopes`); "
                       "`admin` implies every scope."}}},
    "security": [{"bearer": []}],
}


def init_app(app) -> None:
    from flexmail.api import (
        campaigns,
        docs,
        erasures,
        hook_endpoints,
        hooks,
        internal,
        keys,
        limits,
        lists,
        openapi,
        people,
        proof,
        subscriptions,
        suppressions,
        unsubscribes,
    )

    api.init_app(app, spec_kwargs=SPEC_KWARGS)
    for module in (lists, subscriptions, proof, people, unsubscribes, campaigns, suppressions, erasures, keys,
                   hook_endpoints):
        app.extensions["csrf"].exempt(module.blp)
        api.register_blueprint(module.blp)
    # ESP events: signed by the provider, not by a session; outside the OpenAPI description.
    app.extensions["csrf"].exempt(hooks.bp)
    app.register_blueprint(hooks.bp)
    app.extensions["csrf"].exempt(internal.bp)
    app.register_blueprint(internal.bp)
    openapi.complete(app, api)
    app.register_blueprint(docs.bp)
    app.register_blueprint(proof.public_bp)
    app.after_request(limits.add_headers)
