"""/api/v1/lists/<id>/unsubscribe-reasons: why people leave, in aggregate only."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from flexmail.api.auth import current_principal, require_scope
from flexmail.api.schemas import UnsubscribeReasonsOut
from flexmail.services.optout import unsubscribe

blp = Blueprint("unsubscribes", __name__, url_prefix="/api/v1", description="Unsubscribes")


@blp.route("/lists/<int:list_id>/unsubscribe-reasons")
class UnsubscribeReasons(MethodView):
    decorators = [require_scope("marketer")]

    @blp.response(200, UnsubscribeReasonsOut)
    def get(self, list_id):
        """How many unsubscribed from the list, by the optional reason given on the page.

        Counts only: which person gave which reason is never shown.
        """
        return unsubscribe.unsubscribe_reasons(current_principal().account_id, list_id)
