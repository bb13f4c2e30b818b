"""/api/v1/people and /api/v1/audit (compliance scope)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from flexmail.api.auth import current_principal, require_scope
from flexmail.api.schemas import AuditPage, AuditQuery, PeopleOut, PeopleQuery
from flexmail.services.evidence import audit, people

blp = Blueprint("people", __name__, url_prefix="/api/v1", description="Data subjects and audit")


@blp.route("/people")
class People(MethodView):
    decorators = [require_scope("compliance")]

    @blp.arguments(PeopleQuery, location="query")
    @blp.response(200, PeopleOut)
    def get(self, query):
        """Everything this account holds about one address, as JSON (GDPR Art. 15/20)."""
        return people.access_report(current_principal(), query["email"])


@blp.route("/audit")
class Audit(MethodView):
    decorators = [require_scope("compliance")]

    @blp.arguments(AuditQuery, location="query")
    @blp.response(200, AuditPage)
    def get(self, query):
        """Compliance actions of this account (exports, access reports, erasures...), oldest first."""
        items = audit.list_entries(current_principal().account_id, after=query["cursor"], limit=query["limit"])
        return {"items": items, "next_cursor": items[-1]["id"] if len(items) == query["limit"] else None}
