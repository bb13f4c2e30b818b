"""The read-only dashboard at /dashboard: a list's consent funnel for its marketer.

Sign in with an API key (form POST, rate limited per client, the same answer for every
refused key), then a session: Flask's signed cookie (HttpOnly, SameSite=Lax, Secure behind
https; ``config._set_cookie_flags``) holds a random session secret, never the key, and the
database row behind it can be ended (``services.marketer.dashboard_sessions``). Every form carries
a CSRF token (Flask-WTF's ``CSRFProtect`` checks each POST); the range filter is a GET and
changes nothing. Views parse, call one service and render; the figures come from
``services.marketer.funnel``.
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, g, render_template, session

from flexmail.services.marketer import dashboard_sessions

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

#: The key of the session secret in Flask's signed cookie.
SESSION_KEY = "dashboard"


def current_principal():
    return g.dashboard_principal


def signed_in(view):
    """The view needs a live dashboard session; without one, the sign-in page (401)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        secret = session.get(SESSION_KEY)
        principal = dashboard_sessions.session_principal(secret)
        if principal is None:
            session.pop(SESSION_KEY, None)
            return render_template("dashboard/sign_in.html", failed=False, ended=secret is not None), 401
        g.dashboard_principal = principal
        return view(*args, **kwargs)

    return wrapper


def needs_scope(scope: str):
    """The signed-in key must have ``scope`` (``admin`` implies every scope); otherwise 403."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            scopes = current_principal().scopes
            if scope not in scopes and "admin" not in scopes:
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorator


@bp.after_request
def _private(response):
    # Figures of one account: never kept by a shared cache, never indexed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def init_app(app) -> None:
    from flexmail.dashboard import views  # noqa: F401  (routes)

    app.register_blueprint(bp)
