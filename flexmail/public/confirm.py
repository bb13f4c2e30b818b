"""/confirm/<token> and /not-me/<token>: GET shows a page, POST acts.

Confirm and cancel need no CSRF token: the signed token in the URL is the capability,
and a CSRF cookie would only make people with strict browsers fail.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import make_response, redirect, render_template, request

from flexmail.guards import csrf
from flexmail.public import CSP, bp, request_meta
from flexmail.services.consent import subscriptions
from flexmail.services.platform.errors import BadToken, ConfirmationBlocked


def _bad_token(exc: BadToken, token: str):
    return render_template("public/bad_link.html", kind=exc.kind, token=token,
                           can_renew=exc.kind == "expired" and exc.subscription_id is not None), exc.status


@bp.route("/confirm/<token>", methods=["GET"])
def confirm_page(token):
    try:
        link = subscriptions.view_confirm_link(token, meta=request_meta(), method=request.method)
    except BadToken as exc:
        return _bad_token(exc, token)
    response = make_response(render_template("public/confirm.html", link=link, token=token))
    if link.redirect_url:
        # CSP form-action also governs where the form's answer redirects to (the list's
        # thank-you page), so that one origin is allowed on this page.
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(link.redirect_url))
        response.headers["Content-Security-Policy"] = CSP.replace("form-action 'self'", f"form-action 'self' {origin}")
    return response


@bp.post("/confirm/<token>")
@csrf.exempt
def confirm_submit(token):
    method = request.form.get("method", "button")
    try:
        link = subscriptions.confirm_subscription(token, meta=request_meta(), method=method)
    except BadToken as exc:
        return _bad_token(exc, token)
    except ConfirmationBlocked as exc:
        return render_template("public/confirm_blocked.html"), exc.status
    if link.newly_confirmed and link.redirect_url:
        return redirect(link.redirect_url, 303)
    return render_template("public/confirmed.html", link=link)


@bp.post("/confirm/<token>/renew")
@csrf.exempt
def confirm_renew(token):
    """An expired link asks for a fresh one; the answer never says whether one was sent."""
    subscriptions.renew_confirmation(token, meta=request_meta())
    return render_template("public/renewed.html")


@bp.get("/not-me/<token>")
def not_me_page(token):
    try:
        link = subscriptions.view_cancel_link(token)
    except BadToken as exc:
        return _bad_token(exc, token)
    return render_template("public/not_me.html", link=link, token=token, done=False)


@bp.post("/not-me/<token>")
@csrf.exempt
def not_me_submit(token):
    try:
        link = subscriptions.cancel_subscription(token, meta=request_meta())
    except BadToken as exc:
        return _bad_token(exc, token)
    return render_template("public/not_me.html", link=link, token=token, done=True)
