"""/api/v1/lists"""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from flexmail.api.auth import current_principal, require_scope
from flexmail.api.schemas import DeliverabilityOut, DeliverabilityQuery, ListIn, ListOut, ListPatch
from flexmail.services.marketer import lists
from flexmail.services.suppression import deliverability

blp = Blueprint("lists", __name__, url_prefix="/api/v1/lists", description="Mailing lists")


@blp.route("")
class Lists(MethodView):
    decorators = [require_scope("marketer")]

    @blp.response(200, ListOut(many=True))
    def get(self):
        """All lists of the calling account."""
        return lists.list_lists(current_principal().account_id)

    @blp.arguments(ListIn)
    @blp.response(201, ListOut)
    def post(self, data):
        """Create a list with its sender and default consent wording."""
        return lists.create_list(current_principal().account_id, **data)


@blp.route("/<int:list_id>")
class OneList(MethodView):
    decorators = [require_scope("marketer")]

    @blp.response(200, ListOut)
    def get(self, list_id):
        """One list; another account's list is 404."""
        return lists.get_list(current_principal().account_id, list_id)

    @blp.arguments(ListPatch)
    @blp.response(200, ListOut)
    def patch(self, data, list_id):
        """Change the list's language, branding and forward mode; omitted fields stay, null clears one."""
        return lists.update_branding(current_principal().account_id, list_id, **data)


@blp.route("/<int:list_id>/deliverability")
class ListDeliverability(MethodView):
    decorators = [require_scope("marketer")]

    @blp.arguments(DeliverabilityQuery, location="query")
    @blp.response(200, DeliverabilityOut)
    def get(self, query, list_id):
        """Bounce and complaint results of the list by class and reason, per day (UTC), for
        the last ``days`` days; ``sender`` counts are the sending side's problems."""
        return deliverability.list_deliverability(current_principal().account_id, list_id, days=query["days"])
