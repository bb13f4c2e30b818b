"""/api/v1/suppressions: the account's suppression list, bulk checks and file imports."""

from __future__ import annotations

from functools import wraps

from flask import current_app, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint

from flexmail.api.auth import current_principal, require_scope
from flexmail.api.schemas import (
    CheckIn,
    CheckOut,
    ImportOut,
    ImportQuery,
    LiftOut,
    LiftQuery,
    SuppressionAddOut,
    SuppressionIn,
    SuppressionOut,
    SuppressionPage,
    SuppressionQuery,
)
from flexmail.services.suppression import imports, suppressions
from flexmail.services.suppression.suppressions import Actor

blp = Blueprint("suppressions", __name__, url_prefix="/api/v1/suppressions", description="Suppression list")


def bulk_body(view):
    """Let this route read bodies up to FLEXMAIL_SUPPRESSION_BULK_MAX_BYTES (100,000 addresses);
    every other route keeps MAX_CONTENT_LENGTH. Must wrap the argument parsing."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        request.max_content_length = current_app.config["SUPPRESSION_BULK_MAX_BYTES"]
        return view(*args, **kwargs)

    wrapper.bulk_body = True
    return wrapper


@blp.before_request
def _bulk_limit_early():
    """Raise the limit before the view too: an Idempotency-Key reads the body before it runs."""
    view_class = getattr(current_app.view_functions.get(request.endpoint), "view_class", None)
    method = getattr(view_class, request.method.lower(), None)
    if getattr(method, "bulk_body", False):
        request.max_content_length = current_app.config["SUPPRESSION_BULK_MAX_BYTES"]


def _actor() -> Actor:
    return Actor.from_principal(current_principal())


def _is_admin() -> bool:
    return "admin" in current_principal().scopes


@blp.route("")
class Suppressions(MethodView):
    decorators = [require_scope("marketer")]

    @blp.arguments(SuppressionQuery, location="query")
    @blp.response(200, SuppressionPage)
    def get(self, query):
        """A page of the account's entries in id order (filter by ``reason``, ``kind``);
        pass ``next_cursor`` back as ``cursor``. ``scope=global`` lists platform-wide
        entries (admin keys only)."""
        items = suppressions.list_suppressions(
            current_principal().account_id, reason=query["reason"], kind=query["kind"], scope=query["scope"],
            admin=_is_admin(), after=query["cursor"], limit=query["limit"],
        )
        return {"items": items, "next_cursor": items[-1].id if len(items) == query["limit"] else None}

    @bulk_body
    @blp.arguments(SuppressionIn)
    @blp.response(201, SuppressionAddOut)
    @blp.alt_response(403, description="scope=global without the admin scope")
    def post(self, data):
        """Suppress one address or domain (``email``, ``domain``) or many (``emails``,
        ``domains``, up to 100,000) with one ``reason``, for this account or (admin)
        platform-wide. Entries that exist are kept and counted; invalid inputs are listed
        by position and reason.
        """
        emails = [data["email"]] if data.get("email") else data.get("emails", [])
        domains = [data["domain"]] if data.get("domain") else data.get("domains", [])
        return suppressions.suppress(current_principal().account_id, emails=emails, domains=domains,
                                     reason=data["reason"], scope=data["scope"], actor=_actor())


@blp.route("/<int:suppression_id>")
class OneSuppression(MethodView):
    decorators = [require_scope("marketer")]

    @blp.response(200, SuppressionOut)
    def get(self, suppression_id):
        """One entry; another account's entry is 404."""
        return suppressions.get_suppression(current_principal().account_id, suppression_id, admin=_is_admin())

    @blp.arguments(LiftQuery, location="query")
    @blp.response(200, LiftOut)
    @blp.alt_response(409, description="An erasure entry: only the person's own double opt-in lifts it")
    def delete(self, query, suppression_id):
        """Lift an entry: the address may be mailed again (after a new double opt-in).
        Kept as a record with who lifted it and ``note`` (why)."""
        return suppressions.unsuppress(current_principal().account_id, suppression_id, actor=_actor(),
                                       note=query["note"])


@blp.route("/check")
class Check(MethodView):
    decorators = [require_scope("marketer")]

    @bulk_body
    @blp.arguments(CheckIn)
    @blp.response(200, CheckOut)
    def post(self, data):
        """Which of up to 100,000 addresses must not be mailed by this account, and why,
        in input order. Platform-wide entries show only as ``scope: global``."""
        results = suppressions.check_many(current_principal().account_id, data["emails"], reveal_global=_is_admin())
        # Already in the output shape; jsonify skips a per-item schema pass over 100,000 rows.
        return jsonify({"results": results})


@blp.route("/imports")
class Imports(MethodView):
    decorators = [require_scope("marketer")]

    @bulk_body
    @blp.arguments(ImportQuery, location="query")
    @blp.doc(requestBody={"required": True, "content": {
        "text/csv": {"schema": {"type": "string"}}, "text/plain": {"schema": {"type": "string"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"}}}}}})
    @blp.response(202, ImportOut)
    def post(self, query):
        """Import a suppression file in the background: the body is the file (``text/csv``
        or ``text/plain``), or ``multipart/form-data`` with a ``file`` part. CSV with an
        email column (Mailchimp, SendGrid... exports) or one address a line. Poll the job."""
        upload = request.files.get("file")
        content = upload.read() if upload is not None else request.get_data(cache=False)
        return imports.create_import(current_principal().account_id, content, reason=query["reason"],
                                     scope=query["scope"], actor=_actor())


@blp.route("/imports/<int:import_id>")
class OneImport(MethodView):
    decorators = [require_scope("marketer")]

    @blp.response(200, ImportOut)
    def get(self, import_id):
        """Progress of an import: rows done, imported, existing, rejected (line and reason)."""
        return imports.get_import(current_principal().account_id, import_id)
