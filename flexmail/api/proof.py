"""/api/v1/proof: a person's consent history (compliance scope)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from flexmail.api.auth import current_principal, require_scope
from flexmail.api.schemas import ProofOut, ProofQuery
from flexmail.services import proof

blp = Blueprint("proof", __name__, url_prefix="/api/v1/proof", description="Consent proof")


@blp.route("")
class Proof(MethodView):
    decorators = [require_scope("compliance")]

    @blp.arguments(ProofQuery, location="query")
    @blp.response(200, ProofOut)
    def get(self, query):
        """Every subscription of the address in this account with its ordered events."""
        return proof.consent_history(current_principal().account_id, query["email"],
                                     list_id=query["list_id"])
