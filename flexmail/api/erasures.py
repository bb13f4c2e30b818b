"""/api/v1/erasures: erase a person's data from the account (GDPR Art. 17), compliance scope."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from flexmail.api.auth import current_principal, require_scope
from flexmail.api.schemas import ErasureIn, ErasureOut
from flexmail.services.evidence import privacy
from flexmail.services.suppression.suppressions import Actor

blp = Blueprint("erasures", __name__, url_prefix="/api/v1/erasures", description="Erasure")


@blp.route("")
class Erasures(MethodView):
    decorators = [require_scope("compliance")]

    @blp.arguments(ErasureIn)
    @blp.response(200, ErasureOut)
    def post(self, data):
        """Erase the address, IPs, user agents and personal details of ``email`` from every
        list of this account; the consent events stay as the proof, without them.

        An ``erasure`` suppression (keyed hash only) keeps the address from being mailed:
        the API refuses new signups for it, and only the person's own double opt-in
        through the hosted form ends it. Answers with what was removed, per kind.
        """
        principal = current_principal()
        return privacy.erase_person(principal.account_id, data["email"], actor=Actor.from_principal(principal))
