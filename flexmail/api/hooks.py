"""``POST /hooks/<provider>/<token>``: signed ESP events (SES via SNS, SendGrid, Mailgun,
Postmark). No session, no CSRF, no redirect; errors in the JSON envelope. The rules are in
``services.suppression.hooks``."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from flexmail.services.suppression import hooks

bp = Blueprint("hooks", __name__, url_prefix="/hooks")


@bp.post("/<any(ses, sendgrid, mailgun, postmark):provider>/<token>", strict_slashes=False)
def receive(provider: str, token: str):
    """Verify the provider's signature and apply its events to the endpoint's account."""
    request.max_content_length = 10 * 1024 * 1024  # SendGrid posts batches of events
    result = hooks.receive(provider, token, body=request.get_data(cache=False), headers=request.headers,
                           authorization=request.authorization)
    return jsonify(result), 200
