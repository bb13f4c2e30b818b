"""/api/v1/campaigns: campaigns for forward counting, their stats and recipient export."""

from __future__ import annotations

import json

from flask import Response, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from flexmail.api.auth import current_principal, require_scope
from flexmail.api.schemas import CampaignIn, CampaignOut, CampaignStatsOut
from flexmail.services.forwards import campaigns

blp = Blueprint("campaigns", __name__, url_prefix="/api/v1/campaigns", description="Campaigns")

JSON_LINES = "application/x-ndjson"


@blp.route("")
class Campaigns(MethodView):
    decorators = [require_scope("marketer")]

    @blp.arguments(CampaignIn)
    @blp.response(201, CampaignOut)
    def post(self, data):
        """Register a campaign of a list (``web_url``, ``html`` or both) to count its forwards.

        ``html`` is sanitised before it is stored: it is what friends see in a forward.
        """
        return campaigns.create_campaign(current_principal().account_id, **data)


@blp.route("/<int:campaign_id>")
class OneCampaign(MethodView):
    decorators = [require_scope("marketer")]

    @blp.response(200, CampaignOut)
    def get(self, campaign_id):
        """One campaign; another account's campaign is 404."""
        return campaigns.get_campaign(current_principal().account_id, campaign_id)


@blp.route("/<int:campaign_id>/stats")
class CampaignStats(MethodView):
    decorators = [require_scope("marketer")]

    @blp.response(200, CampaignStatsOut)
    def get(self, campaign_id):
        """How often the campaign was forwarded, and to how many friends: counts only."""
        return campaigns.campaign_stats(current_principal().account_id, campaign_id)


@blp.route("/<int:campaign_id>/recipients")
class CampaignRecipients(MethodView):
    decorators = [require_scope("marketer")]

    @blp.response(200, description="JSON Lines, one sendable recipient a line", content_type=JSON_LINES,
                  schema={"type": "string"})
    def get(self, campaign_id):
        """Stream the sendable recipients (subscribed, not suppressed) as JSON Lines.

        Each line: ``subscription_id``, ``email``, ``unsubscribe_url``, ``forward_url``,
        ``list_unsubscribe`` and ``list_unsubscribe_post`` (header values ready to paste).
        """
        rows = campaigns.campaign_recipients(current_principal().account_id, campaign_id)
        lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        return Response(stream_with_context(lines), mimetype=JSON_LINES)
