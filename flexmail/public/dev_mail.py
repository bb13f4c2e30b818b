"""/dev/mail: the development mailbox, registered only where ``dev_mailbox.available`` says so.

In any other configuration these rules do not exist, so every path under /dev/mail is the
ordinary 404 page (not a 403 that would tell the route is there). The pages are in English,
a developer's tool; the mails they show keep their own language (``lang`` on each part).
The HTML part is served alone, sanitised, in a sandboxed frame under a CSP that allows no
script, so a mail can neither run code nor reach the mailbox page around it.
"""

from __future__ import annotations

from flask import Blueprint, abort, make_response, render_template
from flask_babel import force_locale

from flexmail.services.delivery import dev_mailbox
from flexmail.services.platform.errors import NotFound
from flexmail.web import CSP

bp = Blueprint("dev_mail", __name__)

#: The message page may frame our own ``/dev/mail/<id>/html`` and nothing else.
PAGE_CSP = CSP + "; frame-src 'self'"
#: The framed HTML part: no script, no form, no plugin, no fetch; inline styles and our own
#: images only; framed only by our own page; links may replace the top page on a click.
FRAME_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; form-action 'none'; "
             "base-uri 'none'; frame-ancestors 'self'; "
             "sandbox allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation")
FRAME_SANDBOX = "allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation"


def _mail(mail_id: str):
    try:
        return dev_mailbox.get_mail(mail_id)
    except NotFound:
        abort(404)


@bp.after_request
def _no_store(response):
    response.headers.setdefault("Cache-Control", "no-store")  # the mails hold live tokens
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


@bp.get("/dev/mail")
def mailbox():
    with force_locale("en"):
        return render_template("dev/mailbox.html", mails=dev_mailbox.list_mails())


@bp.get("/dev/mail/<mail_id>")
def message(mail_id):
    mail = _mail(mail_id)
    with force_locale("en"):
        html = render_template("dev/message.html", mail=mail, sandbox=FRAME_SANDBOX)
    return html, 200, {"Content-Security-Policy": PAGE_CSP}


@bp.get("/dev/mail/<mail_id>/html")
def message_html(mail_id):
    mail = _mail(mail_id)
    if mail.html is None:
        abort(404)
    response = make_response(render_template("dev/message_frame.html", mail=mail))
    response.headers["Content-Security-Policy"] = FRAME_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response
