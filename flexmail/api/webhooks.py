"""/api/v1/webhooks: endpoints that receive signed consent events, their log and replays."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from flexmail.api.auth import current_principal, require_scope
from flexmail.api.schemas import ID_RANGE, MAX_ID, STATUSES, UTC, Out, StrictSchema
from flexmail.services.delivery import webhook_delivery, webhooks

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks",
                description="Webhook endpoints: signed consent events, delivery log, replay")

EVENTS = list(webhooks.EVENTS)
DELIVERY_STATUSES = ["pending", "sending", "delivered", "failed", "cancelled"]


class WebhookIn(StrictSchema):
    #: http(s) URL; refused (422) when its host resolves to a loopback, private, link-local
    #: or otherwise non-global address.
    url = fields.Url(required=True, schemes={"https", "http"}, require_tld=False,
                     validate=validate.Length(max=2000), metadata={"example": "https://acme.example/hooks/flexmail"})
    events = fields.List(fields.String(validate=validate.OneOf(EVENTS)), required=True,
                         validate=validate.Length(1, len(EVENTS)), metadata={"example": ["subscription.unsubscribed"]})


class WebhookOut(Out):
    id = fields.Integer()
    url = fields.String(metadata={"format": "uri"})
    events = fields.List(fields.String(validate=validate.OneOf(EVENTS)))
    created_at = UTC()
    #: The largest event number (``sequence``) delivered or queued for this endpoint (0: none yet).
    last_sequence = fields.Integer()


class WebhookCreatedOut(WebhookOut):
    #: The signing secret (``whsec_...``), shown this once: store it now.
    secret = fields.String(metadata={"example": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})


class DeliveryQuery(StrictSchema):
    status = fields.String(load_default=None, validate=validate.OneOf(DELIVERY_STATUSES))
    cursor = fields.Integer(load_default=None, validate=validate.Range(0, MAX_ID))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class DeliveryData(Out):
    """The event's facts as the receiver gets them in ``data``."""

    subscription_id = fields.Integer(allow_none=True)
    list_id = fields.Integer(allow_none=True)
    #: The subscription's status after the event.
    status = fields.String(allow_none=True, validate=validate.OneOf(STATUSES))
    suppression_id = fields.Integer(allow_none=True)
    kind = fields.String(allow_none=True, validate=validate.OneOf(["address", "domain"]))
    reason = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    domain = fields.String(allow_none=True)
    #: ``account`` (the account's own entry) or ``global`` (a platform-wide entry: its reason
    #: and source are the operator's and are not shown).
    scope = fields.String(allow_none=True, validate=validate.OneOf(["account", "global"]))
    subscription_ids = fields.List(fields.Integer(), allow_none=True)
    #: Only where the account holds the address; never after the person's erasure.
    email = fields.String(allow_none=True, metadata={"format": "email"})


class DeliveryOut(Out):
    id = fields.Integer()
    #: ``webhook-id``: the same on every attempt and replay.
    message_id = fields.String()
    #: The event's number, also in the body: the events of one subscription (and of one
    #: suppression entry) carry increasing numbers in the order they happened; the same
    #: event has the same number at every endpoint. Numbers are shared by all subscriptions
    #: and may skip: order by them, do not count them.
    sequence = fields.Integer()
    event_type = fields.String(validate=validate.OneOf(EVENTS))
    occurred_at = UTC()
    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES))
    attempts = fields.Integer()
    next_attempt_at = UTC(allow_none=True)
    last_attempt_at = UTC(allow_none=True)
    delivered_at = UTC(allow_none=True)
    response_status = fields.Integer(allow_none=True)
    #: The first 300 characters of the receiver's last answer.
    response_body = fields.String(allow_none=True)
    last_error = fields.String(allow_none=True)
    data = fields.Nested(DeliveryData)


class DeliveryPage(Out):
    items = fields.List(fields.Nested(DeliveryOut))
    next_cursor = fields.Integer(allow_none=True)


class ReplayIn(StrictSchema):
    #: One delivery to send again...
    delivery_id = fields.Integer(load_default=None, allow_none=True, validate=ID_RANGE)
    #: ...or every delivery made since this time (up to 10,000).
    since = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=None)


class ReplayOut(Out):
    replayed = fields.Integer()
    delivery_ids = fields.List(fields.Integer())


def _account() -> int:
    return current_principal().account_id


@blp.route("")
class Webhooks(MethodView):
    decorators = [require_scope("marketer")]

    @blp.response(200, WebhookOut(many=True))
    def get(self):
        """The account's webhook endpoints (never their secrets)."""
        return webhooks.list_endpoints(_account())

    @blp.arguments(WebhookIn)
    @blp.response(201, WebhookCreatedOut)
    def post(self, data):
        """Register an endpoint for some events. Deliveries are JSON, signed Standard Webhooks
        style (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) with the
        ``secret`` in this answer, which is not shown again."""
        return webhooks.register_endpoint(_account(), url=data["url"], events=data["events"])


@blp.route("/<int:webhook_id>")
class OneWebhook(MethodView):
    decorators = [require_scope("marketer")]

    @blp.response(200, WebhookOut)
    def get(self, webhook_id):
        """One endpoint of this account; another account's is 404."""
        return webhooks.endpoint_json(webhooks.get_endpoint(_account(), webhook_id))

    @blp.response(200, WebhookOut)
    def delete(self, webhook_id):
        """Delete an endpoint: nothing more is sent to it; pending deliveries are cancelled."""
        return webhooks.delete_endpoint(_account(), webhook_id)


@blp.route("/<int:webhook_id>/deliveries")
class Deliveries(MethodView):
    decorators = [require_scope("marketer")]

    @blp.arguments(DeliveryQuery, location="query")
    @blp.response(200, DeliveryPage)
    def get(self, query, webhook_id):
        """The endpoint's deliveries in id order, with attempts and the receiver's last answer;
        pass ``next_cursor`` back as ``cursor``."""
        return webhook_delivery.list_deliveries(_account(), webhook_id, status=query["status"],
                                                after=query["cursor"], limit=query["limit"])


@blp.route("/<int:webhook_id>/replay")
class Replay(MethodView):
    decorators = [require_scope("marketer")]

    @blp.arguments(ReplayIn)
    @blp.response(202, ReplayOut)
    def post(self, data, webhook_id):
        """Send finished deliveries again, with their original ``webhook-id`` and ``sequence``:
        one (``delivery_id``) or all made since a time (``since``)."""
        return webhook_delivery.replay(_account(), webhook_id, delivery_id=data["delivery_id"], since=data["since"])
