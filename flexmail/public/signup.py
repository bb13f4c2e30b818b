"""Hosted signup form for marketers without a backend: /subscribe/<list_id>."""

from __future__ import annotations

import logging

from flask import current_app, render_template
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from flexmail.guards import limiter
from flexmail.public import bp, request_meta
from flexmail.services.consent import subscriptions
from flexmail.services.marketer import lists
from flexmail.services.platform.errors import FlexmailError

log = logging.getLogger(__name__)


class SignupForm(FlaskForm):
    email = StringField("Email address", validators=[DataRequired(), Length(max=320)])
    #: Honeypot: hidden from people by CSS, filled in by naive bots.
    website = StringField("Leave this empty")


def _form_limit() -> str:
    return current_app.config["FORM_RATE_LIMIT"]


@bp.get("/subscribe/<int:list_id>")
def subscribe_form(list_id):
    lst = lists.get_public_list(list_id)
    return render_template("public/subscribe.html", list=lst, form=SignupForm(), error=None)


@bp.post("/subscribe/<int:list_id>")
@limiter.limit(_form_limit, methods=["POST"])
def subscribe_submit(list_id):
    """Answers with the same page whether the address was new, pending, subscribed,
    suppressed or rate limited, so the form reveals nobody's membership."""
    lst = lists.get_public_list(list_id)
    form = SignupForm()
    if not form.validate_on_submit():
        return render_template("public/subscribe.html", list=lst, form=form,
                               error="Please enter your email address."), 400
    if form.website.data:
        log.info("hosted form on list %s: honeypot filled, dropped", list_id)
        return render_template("public/check_inbox.html", list=lst)
    try:
        subscriptions.request_subscription(
            lst.account_id, lst.id, email=form.email.data, meta=request_meta(),
            source=f"hosted-form:/subscribe/{lst.id}", channel="form",
        )
    except FlexmailError as exc:
        if exc.code == "validation_error" and "email" in exc.fields:
            return render_template("public/subscribe.html", list=lst, form=form,
                                   error="That does not look like an email address we can write to."), 422
        log.info("hosted form on list %s: %s (answered neutrally)", list_id, exc.code)
    return render_template("public/check_inbox.html", list=lst)
