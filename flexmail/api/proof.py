"""/api/v1/proof: a person's consent history, the signed chain head, bulk export (compliance)."""

from __future__ import annotations

from flask import Blueprint as FlaskBlueprint
from flask import Response, jsonify, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from flexmail.api import certificate
from flexmail.api.auth import current_principal, require_scope
from flexmail.api.schemas import (
    ConsistencyOut,
    ConsistencyQuery,
    ControllerIn,
    ControllerOut,
    ExportQuery,
    HeadOut,
    ProofOut,
    ProofQuery,
    SigningKeyOut,
)
from flexmail.services.evidence import export, ledger, proof, sealing, signing
from flexmail.services.marketer import accounts

blp = Blueprint("proof", __name__, url_prefix="/api/v1/proof", description="Consent proof")


@blp.route("")
class Proof(MethodView):
    decorators = [require_scope("compliance")]

    @blp.arguments(ProofQuery, location="query")
    @blp.response(200, ProofOut)
    @blp.alt_response(200, description="``format=html``: the consent certificate as a page", content_type="text/html",
                      schema={"type": "string"}, success=True)
    @blp.alt_response(200, description="``format=pdf``: the consent certificate as a PDF",
                      content_type="application/pdf", schema={"type": "string", "format": "binary"}, success=True)
    def get(self, query):
        """Every subscription of the address in this account with its ordered events, the
        confirmation mails as sent and the chain verification. ``format=html|pdf`` gives a
        consent certificate."""
        principal = current_principal()
        result = proof.consent_history(principal.account_id, query["email"], list_id=query["list_id"],
                                       principal=principal)
        if query["format"] == "html":
            return Response(certificate.render_html(result), mimetype="text/html")
        if query["format"] == "pdf":
            return Response(certificate.render_pdf(result), mimetype="application/pdf",
                            headers={"Content-Disposition": 'attachment; filename="consent-certificate.pdf"'})
        return result


@blp.route("/head")
class Head(MethodView):
    decorators = [require_scope("compliance")]

    @blp.response(200, HeadOut)
    def get(self):
        """The latest signed tree head of the account (RFC 9162 root over every event, Ed25519),
        after sealing the events written so far. Keep heads: a later one must be consistent."""
        account_id = current_principal().account_id
        return sealing.seal(account_id) or ledger.head(account_id)


@blp.route("/consistency")
class Consistency(MethodView):
    decorators = [require_scope("compliance")]

    @blp.arguments(ConsistencyQuery, location="query")
    @blp.response(200, ConsistencyOut)
    def get(self, query):
        """Two signed heads (tree sizes ``first`` <= ``second``; ``second`` defaults to the
        latest) and the RFC 9162 proof that the first tree is a prefix of the second."""
        account_id = current_principal().account_id
        second = query["second"] or ledger.head(account_id)["tree_size"]
        return ledger.consistency(account_id, query["first"], second)


@blp.route("/controller")
class Controller(MethodView):
    decorators = [require_scope("compliance")]

    @blp.response(200, ControllerOut)
    def get(self):
        """The controller named on consent certificates: the account's legal name and postal address."""
        return accounts.controller(current_principal().account_id)

    @blp.arguments(ControllerIn)
    @blp.response(200, ControllerOut)
    def put(self, body):
        """Set the legal name and postal address of the controller (scope ``compliance``)."""
        return accounts.set_controller(current_principal().account_id, **body)


@blp.route("/key")
class Key(MethodView):
    decorators = [require_scope("compliance")]

    @blp.response(200, SigningKeyOut)
    def get(self):
        """The public key that verifies tree heads, export manifests and certificates (raw Ed25519,
        base64url). The same answer is public, without an API key, at ``/proof/key``."""
        return _key()


def _key() -> dict:
    return {"algorithm": "Ed25519", "public_key": signing.public_key(), "key_id": signing.public_key()[:16]}


#: Outside the API (no key needed): whoever holds a head, an export or a certificate checks it
#: with this public key alone; certificates print this URL.
public_bp = FlaskBlueprint("proof_public", __name__)


@public_bp.get("/proof/key")
def public_key():
    return jsonify(_key())


@blp.route("/export")
class Export(MethodView):
    decorators = [require_scope("compliance")]

    @blp.arguments(ExportQuery, location="query")
    @blp.response(200, description="JSON Lines (``format=jsonl``), streamed, ending in a signed manifest",
                  content_type="application/x-ndjson", schema={"type": "string"})
    @blp.alt_response(200, description="CSV (``format=csv``), streamed, ending in a signed manifest",
                      content_type="text/csv", schema={"type": "string"}, success=True)
    def get(self, query):
        """Stream the account's events (optionally one list, a time range) with a signed manifest."""
        request = export.ExportRequest(current_principal().account_id, query["list_id"], query["since"],
                                       query["until"], query["format"])
        chunks = export.start_export(request, principal=current_principal())
        mimetype = "text/csv; charset=utf-8" if request.fmt == "csv" else "application/x-ndjson"
        name = f"flexmail-proof-{request.account_id}.{request.fmt}"
        return Response(stream_with_context(chunks), content_type=mimetype,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
