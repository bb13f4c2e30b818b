"""/api/v1/hooks: the account's ESP event endpoints (``/hooks/<provider>/<token>``), and
/api/v1/hooks/bounce-policy: the account's soft-bounce rule."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from flexmail.api.auth import current_principal, require_scope
from flexmail.api.schemas import (
    BouncePolicyIn,
    BouncePolicyOut,
    HookEndpointCreated,
    HookEndpointIn,
    HookEndpointOut,
)
from flexmail.services.suppression import bounces, hooks

blp = Blueprint("hook_endpoints", __name__, url_prefix="/api/v1/hooks", description="ESP event endpoints")


@blp.route("")
class HookEndpoints(MethodView):
    decorators = [require_scope("marketer")]

    @blp.response(200, HookEndpointOut(many=True))
    def get(self):
        """The account's ESP endpoints (their tokens are not shown again)."""
        return hooks.list_endpoints(current_principal().account_id)

    @blp.arguments(HookEndpointIn)
    @blp.response(201, HookEndpointCreated)
    def post(self, data):
        """Make an endpoint for ``provider`` with the secret that verifies its events;
        the answer holds the URL path to give the provider, shown once."""
        row, token = hooks.create_endpoint(current_principal().account_id, **data)
        return {"id": row.id, "provider": row.provider, "created_at": row.created_at,
                "path": f"/hooks/{row.provider}/{token}"}


@blp.route("/<int:endpoint_id>")
class OneHookEndpoint(MethodView):
    decorators = [require_scope("marketer")]

    @blp.response(204)
    def delete(self, endpoint_id):
        """Remove an endpoint: its URL stops taking events."""
        hooks.delete_endpoint(current_principal().account_id, endpoint_id)


@blp.route("/bounce-policy")
class BouncePolicy(MethodView):
    decorators = [require_scope("marketer")]

    @blp.response(200, BouncePolicyOut)
    def get(self):
        """The account's soft-bounce rule (suppress after ``soft_count`` soft bounces spread over
        at least ``soft_days`` days with no delivery in between)."""
        return bounces.get_policy(current_principal().account_id)

    @blp.arguments(BouncePolicyIn)
    @blp.response(200, BouncePolicyOut)
    def put(self, data):
        """Set the account's own rule; nulls return to the platform defaults."""
        return bounces.set_policy(current_principal().account_id, **data)
