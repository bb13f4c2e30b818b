"""Public HTML pages: signup form, confirmation, "this was not me".

GET shows, POST acts. Tokens in the URL are the only authority. Pages never say
whether an address is on a list.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from flexmail.domain.text import control_character_fields
from flexmail.services.platform.context import RequestMeta
from flexmail.web import CSP  # noqa: F401  (strict: scripts only from us, no inline; forms post only to us)

bp = Blueprint("public", __name__)

#: Routes that take an opt-out: it is honoured whatever else the body holds.
OPT_OUT_ENDPOINTS = {"public.unsubscribe_submit"}


def request_meta() -> RequestMeta:
    """The person's IP (ProxyFix applied FLEXMAIL_TRUSTED_PROXIES hops) and user agent."""
    return RequestMeta.checked(request.remote_addr, request.headers.get("User-Agent"))


@bp.before_request
def _refuse_control_characters():
    """A form field holding NUL or another control character (tab and line breaks aside) is
    refused with 422 before any view reads it: PostgreSQL cannot store NUL in text."""
    if request.method != "POST" or request.endpoint in OPT_OUT_ENDPOINTS:
        return None
    if request.mimetype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return None
    if control_character_fields(request.form.items(multi=True)):
        return render_template("public/error.html", status=422,
                               message="The form contains characters that cannot be used."), 422
    return None


@bp.after_request
def _no_store(response):
    # Token URLs must not be kept by caches or listed by search engines (the security
    # headers every response gets are set in flexmail.web); the brand's logo and style
    # sheet set their own long cache.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def init_app(app) -> None:
    from flexmail.public import brand, confirm, forward, rendering, signup, unsubscribe  # noqa: F401  (routes)

    app.register_blueprint(bp)
    rendering.init_app(app)
    from flexmail.services.delivery import dev_mailbox

    if dev_mailbox.available(app.config):  # otherwise no /dev/mail rule exists: a plain 404
        from flexmail.public import dev_mail

        app.register_blueprint(dev_mail.bp)

    @app.get("/health")
    def health():
        return {"status": "ok"}
