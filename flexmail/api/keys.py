"""/api/v1/keys: the calling account's API keys (admin scope)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from flexmail.api.auth import current_principal, require_scope
from flexmail.api.schemas import SCOPES, UTC, Out, StrictSchema
from flexmail.services.marketer import api_keys

blp = Blueprint("keys", __name__, url_prefix="/api/v1/keys", description="API keys of the account")


class KeyIn(StrictSchema):
    #: What the key is for ("shop backend").
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200),
                         metadata={"example": "shop backend"})
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPES)), required=True,
                         validate=validate.Length(1, 3), metadata={"example": ["marketer"]})


class RotateIn(StrictSchema):
    #: How long the old key keeps working (0: it stops at once; at most 7 days).
    grace_seconds = fields.Integer(load_default=0, validate=validate.Range(0, 7 * 24 * 3600))


class KeyQuery(StrictSchema):
    include_revoked = fields.Boolean(load_default=False)


class KeyOut(Out):
    id = fields.Integer()
    name = fields.String(allow_none=True)
    #: The first characters of the key, to recognise it; the key itself is never shown again.
    prefix = fields.String(metadata={"example": "fm_Xb3k9Qz"})
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPES)))
    created_at = UTC()
    #: Rough (updated at most once a minute); null for a key never used.
    last_used_at = UTC(allow_none=True)
    #: When the key stopped (or, during a rotation's grace period, will stop) working.
    revoked_at = UTC(allow_none=True)
    active = fields.Boolean()
    #: The key this one replaced by a rotation.
    rotated_from_id = fields.Integer(allow_none=True)


class KeyCreatedOut(KeyOut):
    #: The key, shown this once: store it now.
    secret = fields.String(metadata={"example": "fm_Xb3k9Qz..."})


@blp.route("")
class Keys(MethodView):
    decorators = [require_scope("admin")]

    @blp.arguments(KeyQuery, location="query")
    @blp.response(200, KeyOut(many=True))
    def get(self, query):
        """The account's keys, oldest first (``include_revoked`` for revoked ones too)."""
        return api_keys.list_keys(current_principal().account_id, include_revoked=query["include_revoked"])

    @blp.arguments(KeyIn, example={"name": "shop backend", "scopes": ["marketer"]})
    @blp.response(201, KeyCreatedOut)
    def post(self, data):
        """Create a key for this account; its ``secret`` is in this answer only."""
        return api_keys.create_key(current_principal().account_id, scopes=data["scopes"], name=data["name"])


@blp.route("/<int:key_id>")
class OneKey(MethodView):
    decorators = [require_scope("admin")]

    @blp.response(200, KeyOut)
    def get(self, key_id):
        """One key of this account (never its secret)."""
        return api_keys.get_key(current_principal().account_id, key_id)

    @blp.response(200, KeyOut)
    @blp.alt_response(409, description="The account's last admin key cannot be revoked through the API")
    def delete(self, key_id):
        """Revoke a key: its next request is refused (401). Revoking twice changes nothing."""
        principal = current_principal()
        return api_keys.revoke_key(principal.account_id, key_id, by_key_id=principal.key_id)


@blp.route("/<int:key_id>/rotate")
class RotateKey(MethodView):
    decorators = [require_scope("admin")]

    @blp.arguments(RotateIn)
    @blp.response(201, KeyCreatedOut)
    def post(self, data, key_id):
        """Replace a key by a new one with the same name and scopes; the old one stops after
        ``grace_seconds``. The new ``secret`` is in this answer only."""
        return api_keys.rotate_key(current_principal().account_id, key_id, grace_seconds=data["grace_seconds"])
