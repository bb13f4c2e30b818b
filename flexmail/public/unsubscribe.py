"""/unsubscribe/<token>: the page (GET, HEAD), the unsubscribe itself (POST) and its undo.

One URL serves the person and the mailbox provider (RFC 8058): GET shows a page with a
button and changes nothing, any POST unsubscribes at once and answers 200, without a
redirect, cookie, session or CSRF token (standards A2-A6, K2, K3). The body is not needed
and not trusted: providers send urlencoded or multipart ``List-Unsubscribe=One-Click``,
some send nothing, and RFC 8058's own printed multipart example does not even parse. Our
page's form is told apart by its ``via=page`` field, which only it sends; everything else
is recorded as ``one-click``. The page's form needs no CSRF token either: the signed token
in the URL is the capability, exactly as for a provider, and a cookie-bound token would
only lose opt-outs of people whose browsers refuse cookies.

No per-IP rate limit guards the unsubscribe POST: the requests of a provider come from a
few shared addresses (A13). The undo sends mail, so it has the hosted form's limit and the
confirmation flood limits.
"""

from __future__ import annotations

from flask import current_app, render_template, request
from werkzeug.exceptions import HTTPException

from flexmail.guards import csrf, limiter
from flexmail.public import bp, request_meta
from flexmail.services.optout import spool, unsubscribe
from flexmail.services.platform.context import RequestMeta
from flexmail.services.platform.errors import BadToken, ValidationFailed

#: Form values and labels for "why are you leaving?" (optional).
REASON_LABELS = (
    ("too_many", "Too many emails"),
    ("not_relevant", "The content is not relevant to me"),
    ("never_signed_up", "I never signed up"),
    ("other", "Another reason"),
)
FORM_MIMETYPE = "application/x-www-form-urlencoded"


def _meta() -> RequestMeta:
    """Request facts; an unparsable forwarded IP is dropped rather than failing an opt-out."""
    try:
        return request_meta()
    except ValidationFailed:
        return RequestMeta.checked(None, request.headers.get("User-Agent"))


def _page_form():
    """The fields of our page's form, or ``None`` for any other POST (a provider's one-click).

    Only a urlencoded body is parsed at all, so no multipart (well-formed or not), no
    oversized body and no odd content type can make the unsubscribe fail.
    """
    if request.mimetype != FORM_MIMETYPE:
        return None
    try:
        form = request.form
    except HTTPException:  # e.g. 413: larger than MAX_CONTENT_LENGTH
        return None
    return form if form.get("via") == "page" else None


def _bad_link(exc: BadToken):
    return render_template("public/unsubscribe_bad_link.html"), exc.status


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token):
    try:
        link = spool.view_unsubscribe_link(token)
    except BadToken as exc:
        return _bad_link(exc)
    if link is None:  # the database is down: the form still works (its POST is spooled)
        return render_template("public/unsubscribe_offline.html", token=token, reasons=REASON_LABELS)
    return render_template("public/unsubscribe.html", link=link, token=token, reasons=REASON_LABELS)


@bp.post("/unsubscribe/<token>")
@csrf.exempt
def unsubscribe_submit(token):
    form = _page_form()
    try:
        if form is None:
            link = spool.unsubscribe_by_token(token, meta=_meta(), method="one-click")
        else:
            link = spool.unsubscribe_by_token(
                token, meta=_meta(), method="page", all_lists=form.get("all_lists") == "1",
                reason=form.get("reason") or None,
            )
    except BadToken as exc:
        return _bad_link(exc)
    if isinstance(link, spool.Spooled):  # the database is down: recorded, applied when it is back
        return render_template("public/unsubscribe_recorded.html", spooled=link), 202
    if form is None:  # a provider's one-click POST: the outcome, no page for a person
        return render_template("public/unsubscribed_one_click.html", link=link)
    return render_template("public/unsubscribed.html", link=link, token=token)


def _form_limit() -> str:
    return current_app.config["FORM_RATE_LIMIT"]


@bp.post("/unsubscribe/<token>/undo")
@csrf.exempt
@limiter.limit(_form_limit, methods=["POST"])
def unsubscribe_undo(token):
    """Subscribe again: always through a fresh confirmation mail (a new double opt-in)."""
    try:
        result = unsubscribe.undo_unsubscribe(token, meta=_meta())
    except BadToken as exc:
        return _bad_link(exc)
    status = 429 if result.outcome == "rate_limited" else 200
    headers = {"Retry-After": str(result.retry_after)} if result.retry_after else {}
    return render_template("public/unsubscribe_undo.html", link=result.link, outcome=result.outcome), status, headers
