"""/api/v1/lists/<id>/subscriptions and /api/v1/subscriptions/<id>"""

from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from flexmail.api.auth import current_principal, require_scope
from flexmail.api.schemas import (
    ConfirmationDeliveryOut,
    SubscribeIn,
    SubscribeOut,
    SubscriptionDetailOut,
    SubscriptionDetailQuery,
    SubscriptionOut,
    SubscriptionPage,
    SubscriptionQuery,
)
from flexmail.domain.consent import Status
from flexmail.services.consent import subscriptions
from flexmail.services.delivery import outbox
from flexmail.services.evidence import proof
from flexmail.services.forwards import forwarding
from flexmail.services.optout import unsubscribe
from flexmail.services.platform.context import RequestMeta
from flexmail.services.platform.errors import ValidationFailed

blp = Blueprint("subscriptions", __name__, url_prefix="/api/v1", description="Subscriptions")


@blp.route("/lists/<int:list_id>/subscriptions")
class ListSubscriptions(MethodView):
    decorators = [require_scope("marketer")]

    @blp.arguments(SubscribeIn)
    @blp.response(202, SubscribeOut)
    @blp.alt_response(200, schema=SubscribeOut, description="Already subscribed: nothing sent")
    @blp.alt_response(409, description="The address is suppressed for this account")
    @blp.alt_response(429, description="A flood limit was reached; see Retry-After")
    def post(self, data, list_id):
        """Start double opt-in: pending + confirmation mail queued (202), or 200 if subscribed.

        ``ip`` and ``user_agent`` are the subscriber's, as seen by your backend: they are
        the signup evidence in the proof.
        """
        meta = RequestMeta.checked(data["ip"], data["user_agent"])
        result = subscriptions.request_subscription(
            current_principal().account_id, list_id, email=data["email"], meta=meta,
            consent_text=data["consent_text"], source=data["source"], channel="api",
        )
        status = 200 if result.status == Status.SUBSCRIBED else 202
        return {"subscription": result.subscription, "confirmation_queued": result.queued}, status

    @blp.arguments(SubscriptionQuery, location="query")
    @blp.response(200, SubscriptionPage)
    def get(self, query, list_id):
        """A page of subscriptions in id order; pass ``next_cursor`` back as ``cursor``."""
        items = subscriptions.list_subscriptions(
            current_principal().account_id, list_id, status=query["status"],
            after=query["cursor"], limit=query["limit"],
        )
        next_cursor = items[-1].id if len(items) == query["limit"] else None
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/subscriptions/<int:subscription_id>")
class OneSubscription(MethodView):
    decorators = [require_scope("marketer")]

    @blp.arguments(SubscriptionDetailQuery, location="query")
    @blp.response(200, SubscriptionDetailOut)
    def get(self, query, subscription_id):
        """One subscription with status, timestamps, its ordered consent events, its
        unsubscribe URL and the ``List-Unsubscribe``/``List-Unsubscribe-Post`` values.

        Pass ``campaign_id`` to get links that also name the campaign, and the
        subscriber's ``forward_url`` for it.
        """
        sub = subscriptions.get_subscription(current_principal().account_id, subscription_id)
        events = [proof.event_json(e) for e in proof.subscription_events(sub.id)]
        links = unsubscribe.link_headers(sub.id, campaign_id=query["campaign_id"])
        return {**{name: getattr(sub, name) for name in SubscriptionOut().fields}, "events": events,
                "unsubscribe_url": links.url, "list_unsubscribe": links.list_unsubscribe,
                "list_unsubscribe_post": links.list_unsubscribe_post,
                "forward_url": forwarding.forward_url_for(sub.account_id, sub.id, query["campaign_id"]),
                "confirmation": outbox.confirmation_state(sub.id)}

    @blp.response(200, SubscriptionOut)
    def delete(self, subscription_id):
        """Unsubscribe on your subscriber's behalf (recorded with source ``api``).

        Takes effect at once; repeating it changes nothing. The person can only come back
        through a new double opt-in.
        """
        principal = current_principal()
        try:
            meta = RequestMeta.checked(request.remote_addr, request.headers.get("User-Agent"))
        except ValidationFailed:  # an unparsable forwarded IP must not block an opt-out
            meta = RequestMeta.checked(None, request.headers.get("User-Agent"))
        return unsubscribe.unsubscribe_subscription(principal.account_id, subscription_id, meta=meta,
                                                    api_key_id=principal.key_id)


@blp.route("/subscriptions/<int:subscription_id>/confirmation")
class ConfirmationMail(MethodView):
    decorators = [require_scope("marketer")]

    @blp.response(202, ConfirmationDeliveryOut)
    @blp.alt_response(404, description="No such subscription in your account")
    @blp.alt_response(409, description="Not pending with a failed or refused mail (`nothing_to_resend`), "
                                       "or the address is suppressed (`suppressed`)")
    def post(self, subscription_id):
        """Send the failed (or refused) confirmation mail again, with fresh attempts.

        The same mail goes out while its link is young enough (half the confirmation
        lifetime); after that it is rendered anew with a fresh link.
        """
        return outbox.resend_confirmation(current_principal().account_id, subscription_id)
