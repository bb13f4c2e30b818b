"""Marshmallow schemas: what comes in, what goes out. No queries here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import marshmallow as ma
from flask import current_app
from marshmallow import fields, validate

from flexmail.clock import iso
from flexmail.domain import text
from flexmail.domain.consent import EventType, Status
from flexmail.domain.forwarding import FORWARD_MODES
from flexmail.domain.languages import SUPPORTED as LANGUAGES
from flexmail.domain.text import control_character_fields


def _no_breaks(value: str) -> None:
    if any(c in value for c in "\r\n\0"):
        raise ma.ValidationError("Line breaks and NUL are not allowed.")


#: Integers we take in must fit our INTEGER columns (32-bit on PostgreSQL).
INT_RANGE = validate.Range(-(2**31), 2**31 - 1)


class StrictSchema(ma.Schema):
    """Every input schema: unknown fields refused, no control characters in any text
    (PostgreSQL cannot store NUL), every integer within the range of our columns."""

    class Meta:
        unknown = ma.RAISE

    def on_bind_field(self, field_name, field_obj):
        if isinstance(field_obj, fields.Integer):
            field_obj.validators = [*field_obj.validators, INT_RANGE]
        super().on_bind_field(field_name, field_obj)

    @ma.pre_load
    def _refuse_control_characters(self, data, **kwargs):
        items = data.items() if isinstance(data, Mapping) else [("_schema", data)]
        bad = control_character_fields(items)
        if bad:
            raise ma.ValidationError({name: [text.MESSAGE] for name in bad})
        return data


class Out(ma.Schema):
    """An answer: the OpenAPI description marks every field of it as always present."""


class UTC(fields.Field):
    """An aware datetime as ISO 8601 UTC (documented as ``date-time``)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return iso(value)


def _email(**kw):
    return {"format": "email", **kw}


def _uri(**kw):
    return {"format": "uri", **kw}


DATE_TIME = {"format": "date-time"}
#: Our id columns are INTEGER, 32-bit signed on PostgreSQL: no id is larger.
MAX_ID = 2**31 - 1
ID_RANGE = validate.Range(1, MAX_ID)
SCOPES = ["marketer", "compliance", "admin"]
STATUSES = [s.value for s in Status]


_FORWARD_MODE = ("How subscribers forward a campaign to friends: `server`, Flexmail sends each friend a mail; "
                 "`client`, the forward page opens the subscriber's own mail program with the message prepared, "
                 "so no friend's address reaches Flexmail (German courts treat server-sent recommendations as "
                 "the sender's advertising). Forwards are counted alike in both.")


class ListIn(StrictSchema):
    name = fields.String(required=True, validate=[validate.Length(1, 200), _no_breaks])
    sender_name = fields.String(required=True, validate=[validate.Length(1, 200), _no_breaks])
    sender_email = fields.String(required=True, validate=validate.Length(3, 254), metadata=_email())
    consent_text = fields.String(required=True, validate=validate.Length(1, 10_000))
    language = fields.String(load_default="en", validate=validate.OneOf(LANGUAGES))
    confirm_redirect_url = fields.Url(load_default=None, allow_none=True, schemes={"https", "http"},
                                      require_tld=False, validate=validate.Length(max=2000))
    logo_url = fields.Url(load_default=None, allow_none=True, schemes={"https"}, validate=validate.Length(max=2000),
                          metadata={"description": "https URL of a PNG, JPEG, GIF or WebP logo (at most 256 KiB), "
                                                   "fetched once and served by Flexmail."})
    accent_color = fields.String(allow_none=True, validate=validate.Regexp(r"^#[0-9a-fA-F]{6}$"),
                                 metadata={"description": "#rrggbb, at least 4.5:1 contrast against white."})
    postal_address = fields.String(allow_none=True, validate=validate.Length(max=500))
    contact_email = fields.String(allow_none=True, validate=validate.Length(max=254), metadata=_email())
    privacy_url = fields.Url(allow_none=True, schemes={"https"}, validate=validate.Length(max=2000))
    forward_mode = fields.String(load_default="server", validate=validate.OneOf(FORWARD_MODES),
                                 metadata={"description": _FORWARD_MODE})


class ListPatch(StrictSchema):
    """Language, branding and forward mode of a list; omitted fields stay, ``null`` clears one."""

    language = fields.String(validate=validate.OneOf(LANGUAGES))
    forward_mode = fields.String(validate=validate.OneOf(FORWARD_MODES), metadata={"description": _FORWARD_MODE})
    logo_url = fields.Url(allow_none=True, schemes={"https"}, validate=validate.Length(max=2000))
    accent_color = fields.String(allow_none=True, validate=validate.Regexp(r"^#[0-9a-fA-F]{6}$"))
    postal_address = fields.String(allow_none=True, validate=validate.Length(max=500))
    contact_email = fields.String(allow_none=True, validate=validate.Length(max=254), metadata=_email())
    privacy_url = fields.Url(allow_none=True, schemes={"https"}, validate=validate.Length(max=2000))


class ListOut(Out):
    id = fields.Integer()
    name = fields.String()
    sender_name = fields.String()
    sender_email = fields.String(metadata=_email())
    consent_text = fields.String()
    language = fields.String(validate=validate.OneOf(LANGUAGES))
    confirm_redirect_url = fields.String(allow_none=True, metadata=_uri())
    accent_color = fields.String(allow_none=True)
    postal_address = fields.String(allow_none=True)
    contact_email = fields.String(allow_none=True, metadata=_email())
    privacy_url = fields.String(allow_none=True, metadata=_uri())
    forward_mode = fields.String(validate=validate.OneOf(FORWARD_MODES), metadata={"description": _FORWARD_MODE})
    #: Our URL of the stored logo (never the marketer's source URL), or null.
    logo_url = fields.Function(
        lambda obj: f"{current_app.config['PUBLIC_URL']}{obj.logo_path}" if obj.logo_path else None, allow_none=True,
        metadata=_uri(type="string", description="Flexmail's copy of the list's logo, or null."))
    created_at = UTC()
    #: The hosted signup form, for marketers without a backend.
    subscribe_url = fields.Function(lambda obj: f"{current_app.config['PUBLIC_URL']}/subscribe/{obj.id}",
                                    metadata=_uri(type="string", description="The hosted signup form."))


class SubscribeIn(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(1, 320), metadata=_email())
    #: The subscriber's IP as your backend saw it (IPv4 or IPv6): signup evidence.
    ip = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=45),
                       metadata={"description": "The subscriber's IPv4 or IPv6 address, as your backend saw it.",
                                 "example": "203.0.113.7"})
    user_agent = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    consent_text = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=10_000))
    source = fields.String(load_default=None, allow_none=True, validate=[validate.Length(max=200), _no_breaks])


class EventOut(ma.Schema):
    id = fields.Integer()
    #: Place in the account's Merkle tree: leaf_index + 1 (null until the sealer ran).
    seq = fields.Integer(allow_none=True)
    leaf_index = fields.Integer(allow_none=True)
    content_hash = fields.String()
    #: RFC 9162 audit path (hex, bottom-up) against the head given with the proof.
    inclusion_proof = fields.List(fields.String(), allow_none=True)
    #: The old hash chain, for events written before the tree (else null).
    entry_hash = fields.String(allow_none=True)
    prev_hash = fields.String(allow_none=True)
    redacted = fields.List(fields.String())
    tombstone = fields.Boolean()
    #: Null for a tombstone (an event deleted by retention).
    type = fields.String(allow_none=True, validate=validate.OneOf([t.value for t in EventType]))
    at = fields.String(allow_none=True, metadata=DATE_TIME)
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    details = fields.Dict()


class SubscriptionOut(Out):
    id = fields.Integer()
    list_id = fields.Integer()
    #: Null after an erasure.
    email = fields.String(allow_none=True, metadata=_email())
    status = fields.Enum(Status, by_value=True)
    source = fields.String(allow_none=True)
    consent_text = fields.String()
    created_at = UTC()
    requested_at = UTC()
    confirmed_at = UTC(allow_none=True)
    unsubscribed_at = UTC(allow_none=True)


class ConfirmationDeliveryOut(Out):
    """The latest confirmation mail of a subscription and where its delivery stands."""

    #: Null (and ``status`` ``none``) when no confirmation mail was ever queued.
    outbox_id = fields.Integer(allow_none=True)
    message_id = fields.String(allow_none=True)
    #: pending (queued or waiting for its next attempt), sending, sent, skipped (no longer
    #: needed), failed (attempts used up), bounced (refused by the relay with a 5xx), or none.
    status = fields.String(validate=validate.OneOf(["pending", "sending", "sent", "skipped", "failed", "bounced",
                                                    "none"]))
    attempts = fields.Integer()
    queued_at = fields.String(allow_none=True, metadata=DATE_TIME)
    sent_at = fields.String(allow_none=True, metadata=DATE_TIME)
    #: While pending: when the next attempt is due.
    next_attempt_at = fields.String(allow_none=True, metadata=DATE_TIME)
    #: Why the last attempt failed: the relay's reply (without the address) or the error type.
    last_error = fields.String(allow_none=True)
    #: The relay's reply code and enhanced status code (RFC 3463) of the last failure.
    error_code = fields.Integer(allow_none=True)
    error_status = fields.String(allow_none=True)


class SubscriptionDetailOut(SubscriptionOut):
    events = fields.List(fields.Nested(EventOut))
    #: The latest confirmation mail's delivery state.
    confirmation = fields.Nested(ConfirmationDeliveryOut)
    #: The per-recipient one-click URL (never expires) and both header values, ready to
    #: paste into a message to this subscriber (for the campaign given as ``campaign_id``).
    unsubscribe_url = fields.String(metadata=_uri())
    list_unsubscribe = fields.String(metadata={"example": "<https://flexmail.example/unsubscribe/TOKEN>, "
                                                          "<mailto:unsub-TOKEN@flexmail.example?subject=unsubscribe>"})
    list_unsubscribe_post = fields.String(validate=validate.OneOf(["List-Unsubscribe=One-Click"]))
    #: With ``campaign_id``: this subscriber's forward-to-a-friend link for that campaign
    #: (null without one, or for a campaign of another list).
    forward_url = fields.String(allow_none=True, metadata=_uri())


class SubscriptionDetailQuery(StrictSchema):
    campaign_id = fields.Integer(load_default=None, validate=ID_RANGE)


class UnsubscribeReasonsOut(Out):
    list_id = fields.Integer()
    #: Every unsubscribe of the list, whatever the channel.
    unsubscribes = fields.Integer()
    #: too_many, not_relevant, never_signed_up, other: how many people gave each reason.
    reasons = fields.Dict(keys=fields.String(), values=fields.Integer())
    #: Unsubscribes without a reason (one-click, mailto, API, or none chosen on the page).
    no_reason = fields.Integer()


class SubscribeOut(Out):
    subscription = fields.Nested(SubscriptionOut)
    confirmation_queued = fields.Boolean()


class SubscriptionQuery(StrictSchema):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    cursor = fields.Integer(load_default=None, validate=validate.Range(0, MAX_ID))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class SubscriptionPage(Out):
    items = fields.List(fields.Nested(SubscriptionOut))
    next_cursor = fields.Integer(allow_none=True)


class ProofQuery(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(1, 320), metadata=_email())
    list_id = fields.Integer(load_default=None, validate=ID_RANGE)
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "html", "pdf"]))


class ProofSubscription(ma.Schema):
    id = fields.Integer()
    list_id = fields.Integer()
    list_name = fields.String()
    status = fields.String(validate=validate.OneOf(STATUSES))
    email = fields.String(allow_none=True, metadata=_email())
    consent_text = fields.String()
    source = fields.String(allow_none=True)
    created_at = fields.String(metadata=DATE_TIME)
    confirmed_at = fields.String(allow_none=True, metadata=DATE_TIME)
    unsubscribed_at = fields.String(allow_none=True, metadata=DATE_TIME)
    sender = fields.Dict()
    confirmation_mails = fields.List(fields.Dict())
    events = fields.List(fields.Nested(EventOut))


class ChainOut(ma.Schema):
    verified = fields.Boolean()
    events_checked = fields.Integer()
    problems = fields.List(fields.Dict())
    #: Ids of this person's events written after the head was signed (sealed by the next round).
    unsealed = fields.List(fields.Integer())
    head = fields.Dict()


class ProofOut(ma.Schema):
    email = fields.String(metadata=_email())
    account_id = fields.Integer()
    generated_at = fields.String(metadata=DATE_TIME)
    subscriptions = fields.List(fields.Nested(ProofSubscription))
    chain = fields.Nested(ChainOut)
    #: Who controls the personal data: the account's legal name and postal address.
    controller = fields.Dict()
    #: The public key (and where it is published) that verifies the head offline.
    verification = fields.Dict()


class CampaignIn(StrictSchema):
    list_id = fields.Integer(required=True, validate=ID_RANGE)
    subject = fields.String(required=True, validate=[validate.Length(1, 200), _no_breaks])
    web_url = fields.Url(load_default=None, allow_none=True, schemes={"https", "http"}, require_tld=False,
                         validate=validate.Length(max=2000), metadata=_uri())
    #: Sanitised on creation (no script, style element, event handler, non-http(s) link).
    html = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500_000))


class CampaignOut(Out):
    id = fields.Integer()
    list_id = fields.Integer()
    subject = fields.String()
    web_url = fields.String(allow_none=True, metadata=_uri())
    #: The HTML as stored, after sanitising: what friends see in a forward.
    html = fields.String(allow_none=True)
    created_at = UTC()


class CampaignStatsOut(Out):
    #: Forward submissions accepted.
    forwards = fields.Integer()
    #: Friends a forward mail was sent to.
    forwarded_recipients = fields.Integer()


class DeliverabilityQuery(StrictSchema):
    days = fields.Integer(load_default=30, validate=validate.Range(1, 366))


class DeliverabilityDay(ma.Schema):
    date = fields.String()
    #: Results by class: hard, soft, sender, complaint, opt-out, ignore.
    classes = fields.Dict(keys=fields.String(), values=fields.Integer())
    #: Results by reason (Sisimai's vocabulary: userunknown, mailboxfull, blocked...).
    reasons = fields.Dict(keys=fields.String(), values=fields.Integer())


class DeliverabilityOut(ma.Schema):
    list_id = fields.Integer()
    since = fields.String()
    until = fields.String()
    totals = fields.Dict(keys=fields.String(), values=fields.Integer())
    #: class -> reason -> count.
    reasons = fields.Dict(keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Integer()))
    days = fields.List(fields.Nested(DeliverabilityDay))


class BouncePolicyIn(StrictSchema):
    #: Soft bounces (no delivery in between) that suppress an address; null: platform default.
    soft_count = fields.Integer(required=True, allow_none=True, validate=validate.Range(1, 100))
    #: ... spread over at least this many days; null: platform default.
    soft_days = fields.Integer(required=True, allow_none=True, validate=validate.Range(0, 365))


class BouncePolicyOut(ma.Schema):
    soft_count = fields.Integer()
    soft_days = fields.Integer()
    #: True while the account uses the platform defaults.
    default = fields.Boolean()


class HookEndpointIn(StrictSchema):
    provider = fields.String(required=True, validate=validate.OneOf(["ses", "sendgrid", "mailgun", "postmark"]))
    #: Mailgun: HTTP webhook signing key; SendGrid: verification key (base64 DER or PEM);
    #: Postmark: ``user:password`` for basic auth; SES: none (SNS signs with its certificate).
    secret = fields.String(load_default=None, validate=validate.Length(max=4000))
    #: SES: SNS topic ARNs accepted (empty: any topic that reaches the URL).
    topic_arns = fields.List(fields.String(validate=validate.Length(max=256)), load_default=list,
                             validate=validate.Length(max=20))


class HookEndpointOut(ma.Schema):
    id = fields.Integer()
    provider = fields.String()
    created_at = UTC()


class HookEndpointCreated(HookEndpointOut):
    #: The path to give the provider (prefix it with FLEXMAIL_PUBLIC_URL); shown once.
    path = fields.String()


# --- suppressions and erasures ----------------------------------------------------------------

_SUPPRESSION_REASONS = ["unsubscribed", "hard_bounce", "soft_bounce", "complaint", "opt_out", "manual", "erasure",
                        "not_me"]
_MARKETER_REASONS = ["unsubscribed", "hard_bounce", "complaint", "manual"]


class SuppressionOut(Out):
    id = fields.Integer()
    #: ``address`` or ``domain`` (every address at ``domain``).
    kind = fields.String(validate=validate.OneOf(["address", "domain"]))
    #: The address while the account may see it; null after an erasure.
    email = fields.String(allow_none=True, metadata=_email())
    domain = fields.String(allow_none=True)
    reason = fields.String(validate=validate.OneOf(_SUPPRESSION_REASONS))
    #: ``account`` (this account's lists) or ``global`` (the whole platform).
    scope = fields.Function(lambda obj: "global" if obj.account_id is None else "account",
                            metadata={"type": "string", "enum": ["account", "global"]})
    source = fields.String(allow_none=True)
    #: ``api-key:<prefix>``, ``recipient``, ``mail-system``, ``cli``...
    created_by = fields.String(allow_none=True)
    created_at = UTC()
    #: Entries made by a bounce or complaint: the report's summary (``class``, ``reason``,
    #: ``status``, ``diagnostic``, ``action``, ``report`` kind); null otherwise.
    report = fields.Dict(allow_none=True)


class SuppressionQuery(StrictSchema):
    reason = fields.String(load_default=None, validate=validate.OneOf(_SUPPRESSION_REASONS))
    kind = fields.String(load_default=None, validate=validate.OneOf(["address", "domain"]))
    #: ``global`` lists platform-wide entries (admin keys only).
    scope = fields.String(load_default="account", validate=validate.OneOf(["account", "global"]))
    cursor = fields.Integer(load_default=None, validate=validate.Range(0, MAX_ID))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class SuppressionPage(Out):
    items = fields.List(fields.Nested(SuppressionOut))
    next_cursor = fields.Integer(allow_none=True)


class SuppressionIn(StrictSchema):
    """One entry (``email`` or ``domain``) or many (``emails``, ``domains``), one reason."""

    email = fields.String(validate=validate.Length(1, 320), metadata=_email())
    emails = fields.List(fields.String(metadata=_email()), validate=validate.Length(1, 100_000))
    #: ``example.com`` or ``@example.com``: every address at that domain.
    domain = fields.String(validate=validate.Length(1, 260))
    domains = fields.List(fields.String(), validate=validate.Length(1, 10_000))
    reason = fields.String(required=True, validate=validate.OneOf(_MARKETER_REASONS))
    #: ``global`` needs the admin scope.
    scope = fields.String(load_default="account", validate=validate.OneOf(["account", "global"]))

    @ma.validates_schema
    def _something_given(self, data, **kwargs):
        if not any(data.get(k) for k in ("email", "emails", "domain", "domains")):
            raise ma.ValidationError("Give email, emails, domain or domains.", "email")
        for one, many in (("email", "emails"), ("domain", "domains")):
            if one in data and many in data:
                raise ma.ValidationError(f"Give {one} or {many}, not both.", many)


class RejectedOut(Out):
    #: ``emails`` (also for a single ``email``) or ``domains``.
    field = fields.String(validate=validate.OneOf(["emails", "domains"]))
    index = fields.Integer()
    reason = fields.String()


class SuppressionAddOut(Out):
    added = fields.Integer()
    #: Entries that were there already (kept as they are).
    existing = fields.Integer()
    rejected = fields.List(fields.Nested(RejectedOut))
    #: The entries of the valid inputs in input order (null for adds of over 1,000).
    entries = fields.List(fields.Nested(SuppressionOut), allow_none=True)


class LiftQuery(StrictSchema):
    #: Why the entry is lifted; kept with the record of the lift.
    note = fields.String(load_default=None, validate=validate.Length(max=500))


class LiftOut(Out):
    suppression_id = fields.Integer()
    kind = fields.String(validate=validate.OneOf(["address", "domain"]))
    reason = fields.String(validate=validate.OneOf(_SUPPRESSION_REASONS))
    lifted_at = UTC()
    lifted_by = fields.String()
    note = fields.String(allow_none=True)


class CheckIn(StrictSchema):
    emails = fields.List(fields.String(metadata=_email()), required=True, validate=validate.Length(1, 100_000))


class CheckResultOut(Out):
    #: The input, as given.
    email = fields.String()
    #: False for input that is not a mailable address (then never suppressed).
    valid = fields.Boolean()
    suppressed = fields.Boolean()
    #: Null when not suppressed, and for platform-wide entries (unless the key is admin).
    reason = fields.String(allow_none=True, validate=validate.OneOf(_SUPPRESSION_REASONS))
    #: ``account``, ``global`` or null.
    scope = fields.String(allow_none=True, validate=validate.OneOf(["account", "global"]))


class CheckOut(Out):
    results = fields.List(fields.Nested(CheckResultOut))


class ImportQuery(StrictSchema):
    reason = fields.String(load_default="manual", validate=validate.OneOf(_MARKETER_REASONS))
    scope = fields.String(load_default="account", validate=validate.OneOf(["account", "global"]))


class ImportErrorOut(Out):
    line = fields.Integer()
    reason = fields.String()


class ImportOut(Out):
    id = fields.Integer()
    #: queued, running, done
    status = fields.String(validate=validate.OneOf(["queued", "running", "done"]))
    reason = fields.String(validate=validate.OneOf(_MARKETER_REASONS))
    scope = fields.String(validate=validate.OneOf(["account", "global"]))
    #: Data lines in the file (header and blank lines not counted).
    total_rows = fields.Integer(allow_none=True)
    rows_done = fields.Integer()
    imported = fields.Integer()
    existing = fields.Integer()
    rejected = fields.Integer()
    #: The first 1,000 rejected lines: line number and reason (never the line's text).
    errors = fields.List(fields.Nested(ImportErrorOut))
    created_at = UTC()
    started_at = UTC(allow_none=True)
    finished_at = UTC(allow_none=True)


class ErasureIn(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(1, 320), metadata=_email())


class ErasureOut(Out):
    #: Subscriptions of the person in this account (all lists).
    subscriptions = fields.Integer()
    #: Of those, active ones that were ended.
    unsubscribed = fields.Integer()
    #: Plain addresses removed (subscriptions and suppression entries).
    addresses = fields.Integer()
    ip_addresses = fields.Integer()
    user_agents = fields.Integer()
    #: Personal values nulled inside consent event details (and the signup source).
    detail_values = fields.Integer()
    #: Notes of lifted suppressions removed.
    notes = fields.Integer()
    #: Confirmation mails still queued that will not be sent.
    pending_mails = fields.Integer()
    #: The erasure entry that keeps blocking the address by its keyed hash.
    suppression_id = fields.Integer()



# --- proof (issue 6) ------------------------------------------------------------------

class ExportQuery(StrictSchema):
    list_id = fields.Integer(load_default=None, validate=ID_RANGE)
    since = fields.AwareDateTime(load_default=None, default_timezone=dt.UTC)
    until = fields.AwareDateTime(load_default=None, default_timezone=dt.UTC)
    format = fields.String(load_default="jsonl", validate=validate.OneOf(["csv", "jsonl"]))


class HeadOut(Out):
    """A signed tree head: Ed25519 over the canonical JSON of every other field."""

    account_id = fields.Integer()
    tree_size = fields.Integer()
    root_hash = fields.String()
    timestamp = fields.String()
    key_id = fields.String()
    signature = fields.String()


class ConsistencyQuery(StrictSchema):
    first = fields.Integer(required=True, validate=validate.Range(1, 2**62))
    second = fields.Integer(load_default=None, validate=validate.Range(1, 2**62))


class ConsistencyOut(Out):
    first = fields.Nested(HeadOut)
    second = fields.Nested(HeadOut)
    #: RFC 9162 consistency proof (hex) that the first tree is a prefix of the second.
    proof = fields.List(fields.String())


class ControllerIn(StrictSchema):
    legal_name = fields.String(required=True, allow_none=True, validate=validate.Length(max=200))
    postal_address = fields.String(required=True, allow_none=True, validate=validate.Length(max=500))


class ControllerOut(Out):
    account_id = fields.Integer()
    name = fields.String()
    legal_name = fields.String(allow_none=True)
    postal_address = fields.String(allow_none=True)


class PeopleQuery(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(1, 320), metadata=_email())


class AuditQuery(StrictSchema):
    cursor = fields.Integer(load_default=None, validate=validate.Range(0, MAX_ID))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class SigningKeyOut(Out):
    algorithm = fields.String(validate=validate.OneOf(["Ed25519"]))
    #: Raw Ed25519 public key, base64url.
    public_key = fields.String()
    key_id = fields.String()


class AuditEntryOut(Out):
    id = fields.Integer()
    at = fields.String(metadata=DATE_TIME)
    #: ``proof.export``, ``people.access``, ``erasure``, ``suppression.lift``, ``retention.run``...
    action = fields.String()
    key_prefix = fields.String(allow_none=True)
    params = fields.Dict()


class AuditPage(Out):
    items = fields.List(fields.Nested(AuditEntryOut))
    next_cursor = fields.Integer(allow_none=True)


class PeopleOut(ma.Schema):
    """What the account holds about one address (GDPR Art. 15/20)."""

    email = fields.String(metadata=_email())
    account_id = fields.Integer()
    generated_at = fields.String(metadata=DATE_TIME)
    subscriptions = fields.List(fields.Nested(ProofSubscription))
    suppressions = fields.List(fields.Dict())
    mails = fields.List(fields.Dict())
    forwarding = fields.String()
    address_hash = fields.String()
