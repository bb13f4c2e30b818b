"""/forward/<token>: a subscriber forwards a campaign to up to five friends.

GET shows the form and counts nothing (standards H4); POST sends and counts. The form has
a CSRF token (it sends mail on the subscriber's behalf, so another site must not be able
to post it), a honeypot, and a per-IP rate limit. The answer to a valid POST is one fixed
page whether every friend was mailed or some were dropped as suppressed, and no page ever
shows an address back: a validation error names the field's position only.

A list in ``client`` forward mode (standards H2) has no form for addresses: the page's one
button posts to /forward/<token>/open, which counts the forward and answers 303 with a
``mailto:`` link that opens the forwarder's own mail program, subject and body prepared, no
recipient. It works without JavaScript, and no friend's address ever reaches us; a post of
addresses to such a list is refused (409) before any field is read.

/forward/<token>/stop is the friend's "never send me forwards" link: GET shows a button
and changes nothing, POST records it (no CSRF token: the sealed token is the capability,
as for an unsubscribe).
"""

from __future__ import annotations

import logging

from flask import current_app, redirect, render_template, request
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField

from flexmail.domain.forwarding import MAX_FRIENDS, MAX_NAME, MAX_NOTE
from flexmail.guards import csrf, limiter
from flexmail.public import bp, request_meta
from flexmail.services.forwards import forwarding
from flexmail.services.platform.errors import BadToken, RateLimited, ValidationFailed, WrongForwardMode
from flexmail.web import CSP

log = logging.getLogger(__name__)


class ForwardForm(FlaskForm):
    """CSRF, name, note and the honeypot; the friends' fields are the repeated ``friend``."""

    sender_name = StringField("Your name")
    note = TextAreaField("A short note")
    #: Honeypot: hidden from people by CSS, filled in by naive bots.
    website = StringField("Leave this empty")


class MailProgramForm(FlaskForm):
    """Client mode: CSRF and the honeypot, nothing else (there is no field for an address)."""

    website = StringField("Leave this empty")


#: The client-mode page's form is answered by a redirect to ``mailto:``, and browsers check a
#: form's redirects against ``form-action`` too: our policy, plus that one scheme.
CLIENT_CSP = CSP.replace("form-action 'self'", "form-action 'self' mailto:")


def _forward_limit() -> str:
    return current_app.config["FORWARD_RATE_LIMIT"]


def _form_page(token, link, form, *, errors=None, status=200):
    if link.mode == "client":
        return render_template("public/forward_client.html", token=token, link=link, form=MailProgramForm(),
                               errors=errors or {}), status, {"Content-Security-Policy": CLIENT_CSP}
    return render_template("public/forward.html", token=token, link=link, form=form, errors=errors or {},
                           slots=range(1, MAX_FRIENDS + 1), max_name=MAX_NAME, max_note=MAX_NOTE), status


def _bad_link(exc: BadToken):
    return render_template("public/forward_bad_link.html", kind=exc.kind), exc.status


@bp.get("/forward/<token>")
def forward_page(token):
    try:
        link = forwarding.view_forward_link(token)
    except BadToken as exc:
        return _bad_link(exc)
    return _form_page(token, link, ForwardForm())


@bp.post("/forward/<token>")
@limiter.limit(_forward_limit, methods=["POST"])
def forward_submit(token):
    form = ForwardForm()
    try:
        if not form.validate_on_submit():  # only the CSRF token is checked here
            return _form_page(token, forwarding.view_forward_link(token), form, status=400, errors={
                "form": ["This form has expired. Please enter the addresses again."]})
        forwarding.forward_to_friends(
            token, friends=request.form.getlist("friend"), sender_name=form.sender_name.data or None,
            note=form.note.data or None, meta=request_meta(), trap=bool(form.website.data),
        )
    except BadToken as exc:
        return _bad_link(exc)
    except ValidationFailed as exc:
        return _form_page(token, forwarding.view_forward_link(token), form, errors=exc.fields, status=422)
    except WrongForwardMode:  # a client-mode list: nothing posted was read
        return _form_page(token, forwarding.view_forward_link(token), form, status=409,
                          errors={"form": ["Please use the button to write from your own mail program."]})
    except RateLimited as exc:
        return render_template("public/forward_limited.html"), 429, {"Retry-After": str(exc.retry_after)}
    return render_template("public/forward_sent.html")


@bp.post("/forward/<token>/open")
@limiter.limit(_forward_limit, methods=["POST"])
def forward_open(token):
    """Client mode: count the forward, then open the person's mail program (303 to ``mailto:``)."""
    form = MailProgramForm()
    try:
        if not form.validate_on_submit():  # only the CSRF token is checked here
            return _form_page(token, forwarding.view_forward_link(token), form, status=400,
                              errors={"form": ["This form has expired. Please try again."]})
        mailto = forwarding.forward_by_mail_program(token, meta=request_meta(), lang=request.args.get("lang"),
                                                    trap=bool(form.website.data))
    except BadToken as exc:
        return _bad_link(exc)
    except WrongForwardMode:
        return _form_page(token, forwarding.view_forward_link(token), ForwardForm(), status=409)
    except RateLimited as exc:
        return render_template("public/forward_limited.html"), 429, {"Retry-After": str(exc.retry_after)}
    return redirect(mailto, code=303)


@bp.get("/forward/<token>/stop")
def forward_stop_page(token):
    try:
        forwarding.view_forward_opt_out(token)
    except BadToken as exc:
        return _bad_link(exc)
    return render_template("public/forward_stop.html", token=token, done=False)


@bp.post("/forward/<token>/stop")
@csrf.exempt
def forward_stop_submit(token):
    try:
        forwarding.stop_forwards(token)
    except BadToken as exc:
        return _bad_link(exc)
    return render_template("public/forward_stop.html", token=token, done=True)
