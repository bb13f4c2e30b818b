"""/brand/<list_id>/logo and /brand/<list_id>.css: a list's logo and accent, served by us.

Both are public (pages and mails show them without a token) and immutable per version:
the URLs carry a hash or the colour, so they may be cached for long.
"""

from __future__ import annotations

from flask import abort, make_response

from flexmail.public import bp
from flexmail.services.consent import branding

LONG_CACHE = "public, max-age=31536000, immutable"


@bp.get("/brand/<int:list_id>/logo")
def brand_logo(list_id):
    logo = branding.get_logo(list_id)
    if logo is None:
        abort(404)
    data, content_type, sha = logo
    response = make_response(data)
    response.headers["Content-Type"] = content_type
    response.headers["Cache-Control"] = LONG_CACHE
    response.headers["ETag"] = f'"{sha[:32]}"'
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.get("/brand/<int:list_id>.css")
def brand_css(list_id):
    css = branding.accent_css(list_id)
    if css is None:
        abort(404)
    response = make_response(css)
    response.headers["Content-Type"] = "text/css; charset=utf-8"
    response.headers["Cache-Control"] = LONG_CACHE
    return response
