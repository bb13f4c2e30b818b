"""Public HTML pages: signup form, confirmation, "this was not me".

GET shows, POST acts. Tokens in the URL are the only authority. Pages never say
whether an address is on a list.
"""

from __future__ import annotations

from flask import Blueprint, request

from flexmail.services.context import RequestMeta

bp = Blueprint("public", __name__)

#: Strict CSP: scripts only from our own origin (no inline), forms post only to us.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def request_meta() -> RequestMeta:
    """The person's IP (ProxyFix applied FLEXMAIL_TRUSTED_PROXIES hops) and user agent."""
    return RequestMeta.checked(request.remote_addr, request.headers.get("User-Agent"))


@bp.after_request
def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    # Token URLs must not leak through Referer, caches or search engines.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def init_app(app) -> None:
    from flexmail.public import brand, confirm, forward, rendering, signup, unsubscribe  # noqa: F401  (routes)

    app.register_blueprint(bp)
    rendering.init_app(app)

    @app.get("/health")
    def health():
        return {"status": "ok"}
