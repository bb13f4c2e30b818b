"""/api/docs: Swagger UI served from the service itself, never from a CDN.

The assets come from the pinned ``swagger-ui-bundle`` package (Swagger UI, Apache-2.0; its
licence ships in the package); our own ``static/api-docs.js`` starts it, so the page needs
no inline script. The CSP is the public pages' one plus ``connect-src 'self'`` (the page
fetches /api/openapi.json, and "Try it out" calls this API) and ``data:`` images (Swagger
UI's icons are inlined in its CSS).
"""

from __future__ import annotations

from flask import Blueprint, abort, make_response, render_template, send_from_directory
from swagger_ui_bundle import swagger_ui_path

bp = Blueprint("api_docs", __name__)

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
#: The only files of the bundle the page loads.
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"})


def _secured(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response


@bp.get("/api/docs")
def docs():
    return _secured(make_response(render_template("api/docs.html")))


@bp.get("/api/docs/assets/<name>")
def asset(name: str):
    if name not in ASSETS:
        abort(404)
    response = send_from_directory(str(swagger_ui_path), name, max_age=86400)
    return _secured(response)
