"""/api/v1/lists/<id>/imports: bring contacts in, with their proof, as a background job."""

from __future__ import annotations

import io

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from flexmail.api.auth import current_principal, require_scope
from flexmail.api.schemas import UTC, Out
from flexmail.services.marketer import contact_imports

blp = Blueprint("contact_imports", __name__, url_prefix="/api/v1/lists",
                description="Contact imports with proof of consent")

BODY = {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}, "example":
                 "email,signup_at,signup_ip,confirmed_at,confirm_ip,source,consent_text\n"
                 "reader@example.com,2025-03-01T10:00:00Z,203.0.113.7,2025-03-01T10:05:00Z,203.0.113.7,"
                 "https://acme.example/signup,Send me the weekly Acme newsletter.\n"},
    "application/x-ndjson": {"schema": {"type": "string"}}}}


@blp.before_request
def _large_body():
    """Only this blueprint's POST takes files of up to a million rows."""
    if request.method == "POST":
        request.max_content_length = current_app.config["CONTACT_IMPORT_MAX_BYTES"]


def _body():
    """The upload as a stream, read in chunks by the service. With an ``Idempotency-Key`` the
    body was already read (and cached) to fingerprint the request, so it is read from there."""
    if request.headers.get("Idempotency-Key") is not None:
        return io.BytesIO(request.get_data(cache=True))
    return request.stream


class ImportResult(Out):
    line = fields.Integer()
    outcome = fields.String(validate=validate.OneOf(["rejected", "suppressed", "deferred"]))
    #: Why (never the row's content).
    reason = fields.String()


class ContactImportOut(Out):
    id = fields.Integer()
    list_id = fields.Integer()
    status = fields.String(validate=validate.OneOf(["queued", "running", "done"]))
    total_rows = fields.Integer(allow_none=True)
    rows_done = fields.Integer()
    #: Rows with existing proof, now subscribed.
    subscribed = fields.Integer()
    #: Signups your form took: pending, confirmation mail queued.
    pending = fields.Integer()
    #: Already on the list (left as they are) or repeated in the file.
    existing = fields.Integer()
    #: Skipped: suppressed for this account or platform-wide, whatever proof they carry.
    suppressed = fields.Integer()
    #: Refused, or (``deferred``) over a confirmation flood limit: import the file again later.
    rejected = fields.Integer()
    #: Rows not imported, by line (the first 1,000).
    results = fields.List(fields.Nested(ImportResult))
    created_at = UTC()
    started_at = UTC(allow_none=True)
    finished_at = UTC(allow_none=True)


@blp.route("/<int:list_id>/imports")
class ContactImports(MethodView):
    decorators = [require_scope("marketer")]

    @blp.doc(requestBody=BODY)
    @blp.response(202, ContactImportOut)
    def post(self, list_id):
        """Import contacts into the list in the background; poll the job. The body is CSV with
        a header or JSON Lines, up to 1,000,000 rows. A row with proof (``email``,
        ``signup_at``, ``signup_ip``, ``confirmed_at``, ``confirm_ip``, ``source``,
        ``consent_text``; Mailchimp's ``OPTIN_TIME``/``OPTIN_IP``/``CONFIRM_TIME``/``CONFIRM_IP``
        too) is subscribed with that proof, marked imported; a signup your form took
        (``email``, ``signup_at``, ``signup_ip``, ``user_agent``, ``form_url``) becomes
        pending with a confirmation mail; anything else is refused. Suppressed addresses are
        skipped; addresses on the list are left alone, so the same file twice changes nothing."""
        job = contact_imports.create_import(current_principal().account_id, list_id, _body(),
                                            max_bytes=current_app.config["CONTACT_IMPORT_MAX_BYTES"])
        return contact_imports.import_json(job)


@blp.route("/<int:list_id>/imports/<int:import_id>")
class OneContactImport(MethodView):
    decorators = [require_scope("marketer")]

    @blp.response(200, ContactImportOut)
    def get(self, list_id, import_id):
        """Progress and per-row results of an import."""
        job = contact_imports.get_import(current_principal().account_id, list_id, import_id)
        return contact_imports.import_json(job)
