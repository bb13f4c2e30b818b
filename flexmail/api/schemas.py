"""Marshmallow schemas: what comes in, what goes out. No queries here."""

from __future__ import annotations

import datetime as dt

import marshmallow as ma
from flask import current_app
from marshmallow import fields, validate

from flexmail.clock import iso
from flexmail.domain.consent import Status


def _no_breaks(value: str) -> None:
    if any(c in value for c in "\r\n\0"):
        raise ma.ValidationError("Line breaks and NUL are not allowed.")


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class UTC(fields.Field):
    def _serialize(self, value, attr, obj, **kwargs):
        return iso(value)


class EnumValue(fields.Field):
    def _serialize(self, value, attr, obj, **kwargs):
        return getattr(value, "value", value)


class ListIn(StrictSchema):
    name = fields.String(required=True, validate=[validate.Length(1, 200), _no_breaks])
    sender_name = fields.String(required=True, validate=[validate.Length(1, 200), _no_breaks])
    sender_email = fields.String(required=True, validate=validate.Length(3, 254))
    consent_text = fields.String(required=True, validate=validate.Length(1, 10_000))
    language = fields.String(load_default="en", validate=validate.OneOf(["en", "de"]))
    confirm_redirect_url = fields.Url(load_default=None, allow_none=True, schemes={"https", "http"},
                                      require_tld=False, validate=validate.Length(max=2000))


class ListOut(ma.Schema):
    id = fields.Integer()
    name = fields.String()
    sender_name = fields.String()
    sender_email = fields.String()
    consent_text = fields.String()
    language = fields.String()
    confirm_redirect_url = fields.String(allow_none=True)
    created_at = UTC()
    #: The hosted signup form, for marketers without a backend.
    subscribe_url = fields.Function(lambda obj: f"{current_app.config['PUBLIC_URL']}/subscribe/{obj.id}")


class SubscribeIn(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(1, 320))
    ip = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=45))
    user_agent = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    consent_text = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=10_000))
    source = fields.String(load_default=None, allow_none=True, validate=[validate.Length(max=200), _no_breaks])


class EventOut(ma.Schema):
    id = fields.Integer()
    seq = fields.Integer()
    entry_hash = fields.String()
    prev_hash = fields.String()
    redacted = fields.List(fields.String())
    tombstone = fields.Boolean()
    type = fields.String()
    at = fields.String()
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    details = fields.Dict()


class SubscriptionOut(ma.Schema):
    id = fields.Integer()
    list_id = fields.Integer()
    email = fields.String(allow_none=True)
    status = EnumValue()
    source = fields.String(allow_none=True)
    consent_text = fields.String()
    created_at = UTC()
    requested_at = UTC()
    confirmed_at = UTC(allow_none=True)
    unsubscribed_at = UTC(allow_none=True)


class SubscriptionDetailOut(SubscriptionOut):
    events = fields.List(fields.Nested(EventOut))


class SubscribeOut(ma.Schema):
    subscription = fields.Nested(SubscriptionOut)
    confirmation_queued = fields.Boolean()


class SubscriptionQuery(StrictSchema):
    status = fields.String(load_default=None, validate=validate.OneOf([s.value for s in Status]))
    cursor = fields.Integer(load_default=None, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class SubscriptionPage(ma.Schema):
    items = fields.List(fields.Nested(SubscriptionOut))
    next_cursor = fields.Integer(allow_none=True)


class ProofQuery(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(1, 320))
    list_id = fields.Integer(load_default=None)
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "html", "pdf"]))


class ProofSubscription(ma.Schema):
    id = fields.Integer()
    list_id = fields.Integer()
    list_name = fields.String()
    status = fields.String()
    email = fields.String(allow_none=True)
    consent_text = fields.String()
    source = fields.String(allow_none=True)
    created_at = fields.String()
    confirmed_at = fields.String(allow_none=True)
    unsubscribed_at = fields.String(allow_none=True)
    sender = fields.Dict()
    confirmation_mails = fields.List(fields.Dict())
    events = fields.List(fields.Nested(EventOut))


class ChainOut(ma.Schema):
    verified = fields.Boolean()
    events_checked = fields.Integer()
    problems = fields.List(fields.Dict())
    head = fields.Dict()


class ProofOut(ma.Schema):
    email = fields.String()
    account_id = fields.Integer()
    generated_at = fields.String()
    subscriptions = fields.List(fields.Nested(ProofSubscription))
    chain = fields.Nested(ChainOut)


# --- proof (issue 6) ------------------------------------------------------------------

class ExportQuery(StrictSchema):
    list_id = fields.Integer(load_default=None)
    since = fields.AwareDateTime(load_default=None, default_timezone=dt.UTC)
    until = fields.AwareDateTime(load_default=None, default_timezone=dt.UTC)
    format = fields.String(load_default="jsonl", validate=validate.OneOf(["csv", "jsonl"]))


class HeadOut(ma.Schema):
    account_id = fields.Integer()
    count = fields.Integer()
    head_hash = fields.String()
    key_id = fields.String()
    signature = fields.String()


class PeopleQuery(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(1, 320))


class AuditQuery(StrictSchema):
    cursor = fields.Integer(load_default=None, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
