"""``POST /internal/inbound``: one received message from the fast pipe
(``flexmail/inbound/pipe.py``), processed as ``flask inbound deliver`` would. Enabled only
when ``FLEXMAIL_INBOUND_TOKEN`` is set; the token is the bearer credential. Bind it to the
local network (it is not meant for the internet)."""

from __future__ import annotations

import hmac

from flask import Blueprint, current_app, jsonify, request

from flexmail.api.errors import envelope
from flexmail.inbound import mailto

bp = Blueprint("internal", __name__, url_prefix="/internal")


@bp.post("/inbound", strict_slashes=False)
def inbound():
    """Act on the raw message in the body for its ``recipient`` query values."""
    # A bounce returns the whole message: allow what an MTA accepts, not the API's 1 MiB.
    request.max_content_length = 50 * 1024 * 1024
    token = current_app.config.get("INBOUND_TOKEN")
    given = request.headers.get("Authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return envelope(404 if not token else 401, "not_found" if not token else "unauthorized",
                        "Not enabled." if not token else "Bad or missing token.")
    try:
        result = mailto.deliver(request.get_data(cache=False), request.args.getlist("recipient"))
    except mailto.NoMessage:
        return envelope(400, "no_message", "No message in the body.")
    except mailto.NotOurs:
        return envelope(422, "not_ours", "Not addressed to an address of this service.")
    return jsonify({"recipients": result.recipients}), 200
