"""Routes of the dashboard: sign-in, sign-out, the account's lists, one list's funnel, exports."""

from __future__ import annotations

import datetime as dt

from flask import (
    Response,
    current_app,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_babel import format_percent, format_timedelta, gettext, lazy_gettext

from flexmail.api import certificate
from flexmail.dashboard import SESSION_KEY, bp, current_principal, needs_scope, signed_in
from flexmail.dashboard.charts import line_chart
from flexmail.domain.languages import NATIVE_NAMES, SUPPORTED
from flexmail.guards import limiter
from flexmail.i18n import page_lang
from flexmail.services.evidence import export, proof
from flexmail.services.marketer import dashboard_sessions, funnel, lists
from flexmail.services.platform.errors import ValidationFailed

EXPORT_FORMATS = ("csv", "jsonl")
CERTIFICATE_FORMATS = ("html", "pdf")
#: Labels of the series and groups the service names by key.
LABELS = {
    "signups": lazy_gettext("Signups"), "confirmations": lazy_gettext("Confirmations"),
    "scanner_hits": lazy_gettext("Scanner hits (not counted)"),
    "one-click": lazy_gettext("One-click (mail program)"), "page": lazy_gettext("Unsubscribe page"),
    "mailto": lazy_gettext("Reply by mail"), "api": lazy_gettext("Marketer (API)"),
    "erasure": lazy_gettext("Erasure request"), "other": lazy_gettext("Other"),
    "recipient": lazy_gettext("The person's choice"), "bounce": lazy_gettext("Bounces"),
    "complaint": lazy_gettext("Spam complaints"), "marketer": lazy_gettext("Added by the marketer"),
    "platform": lazy_gettext("Platform-wide"),
    "too_many": lazy_gettext("Too many emails"), "not_relevant": lazy_gettext("The content is not relevant to me"),
    "never_signed_up": lazy_gettext("I never signed up"), "none": lazy_gettext("No reason given"),
    "unsubscribed": lazy_gettext("Unsubscribed from all lists"), "hard_bounce": lazy_gettext("Address does not exist"),
    "soft_bounce": lazy_gettext("Repeated temporary failures"), "opt_out": lazy_gettext("Opt-out report"),
    "not_me": lazy_gettext("“This was not me”"), "manual": lazy_gettext("Added by hand"),
    "button": lazy_gettext("Button"), "auto": lazy_gettext("After the click gate (automatic)"),
}


def label(key: str) -> str:
    return str(LABELS[key]) if key in LABELS else key


def _form_limit() -> str:
    return current_app.config["DASHBOARD_SIGNIN_RATE_LIMIT"]


def _lang_links(**args) -> list:
    """The language switch: the same page in each language (GET pages only)."""
    shown = page_lang()
    return [(code, NATIVE_NAMES[code], url_for(request.endpoint, **request.view_args, **args, lang=code),
             code == shown) for code in SUPPORTED]


def _lang_arg() -> dict:
    """Keep a language the person chose on the page (``?lang=``) across forms and redirects."""
    lang = request.args.get("lang")
    return {"lang": lang} if lang in SUPPORTED else {}


@bp.get("")
def home():
    principal = dashboard_sessions.session_principal(session.get(SESSION_KEY))
    if principal is None:
        return render_template("dashboard/sign_in.html", failed=False, ended=False, lang_links=_lang_links())
    return render_template("dashboard/home.html", lists=lists.list_lists(principal.account_id),
                           principal=principal, lang_links=_lang_links())


@bp.post("/sign-in")
@limiter.limit(_form_limit, methods=["POST"])
def sign_in():
    """The same page and status for every refused key (unknown, revoked, malformed, empty)."""
    opened = dashboard_sessions.sign_in(request.form.get("api_key", ""))
    if opened is None:
        return render_template("dashboard/sign_in.html", failed=True, ended=False), 401
    session.clear()  # a new session, and with it a new CSRF token (no fixation)
    session[SESSION_KEY] = opened.secret
    return redirect(url_for("dashboard.home", **_lang_arg()), 303)


@bp.post("/sign-out")
def sign_out():
    dashboard_sessions.sign_out(session.get(SESSION_KEY))
    session.clear()
    return redirect(url_for("dashboard.home", **_lang_arg()), 303)


def _days() -> int:
    raw = request.values.get("days", str(funnel.DEFAULT_DAYS))
    return funnel.date_range(raw).days  # ValidationFailed (422 page) for anything not offered


@bp.get("/lists/<int:list_id>")
@signed_in
def list_funnel(list_id):
    principal = current_principal()
    figures = funnel.list_funnel(principal.account_id, list_id, days=_days())
    return render_template("dashboard/list.html", f=figures, charts=_charts(figures), label=label,
                           principal=principal, ranges=list(funnel.RANGES),
                           can_export="compliance" in principal.scopes or "admin" in principal.scopes,
                           duration=_duration, format_percent=format_percent,
                           lang_links=_lang_links(days=figures.range.days))


def _duration(seconds: float) -> str:
    """A time span in the page's language ("3 minutes", "2 days")."""
    return format_timedelta(dt.timedelta(seconds=seconds), threshold=1)


def _charts(f: funnel.Funnel) -> list:
    buckets, per = f.range.buckets, (gettext("per day") if f.range.width == 1 else gettext("per week"))
    charts = [line_chart(
        "chart-funnel", gettext("Signups and confirmations, %(per)s", per=per),
        gettext("%(signups)s signups, %(confirmations)s confirmations and %(scanner)s scanner hits in the last "
                "%(days)s days. Scanner hits are link fetches before the click gate; they are not confirmations.",
                signups=f.signups, confirmations=f.confirmations, scanner=f.scanner_hits, days=f.range.days),
        buckets, [(k, label(k), v) for k, v in f.funnel_series.items()])]
    charts.append(line_chart(
        "chart-unsubscribes", gettext("Unsubscribes by method, %(per)s", per=per),
        gettext("%(n)s unsubscribes in the last %(days)s days, one line per method.", n=f.unsubscribes,
                days=f.range.days),
        buckets, [(k, label(k), v) for k, v in f.unsubscribe_series.items()]))
    charts.append(line_chart(
        "chart-suppressions", gettext("Suppressions by class, %(per)s", per=per),
        gettext("%(n)s suppressions in the last %(days)s days, one line per class.", n=f.suppressions,
                days=f.range.days),
        buckets, [(k, label(k), v) for k, v in f.suppression_series.items()]))
    charts.append(line_chart(
        "chart-forwards", gettext("Forwards per campaign, %(per)s", per=per),
        gettext("Forwards of %(n)s campaigns in the last %(days)s days, one line per campaign.",
                n=len(f.forwards), days=f.range.days),
        buckets, [(str(c.campaign_id), c.subject, c.series) for c in f.forwards]))
    return charts


@bp.post("/lists/<int:list_id>/export")
@signed_in
@needs_scope("compliance")
def export_proof(list_id):
    """The list's proof export (as ``GET /api/v1/proof/export``) for the range shown."""
    principal = current_principal()
    fmt = request.form.get("format", "")
    if fmt not in EXPORT_FORMATS:
        raise ValidationFailed("Unknown export format.", fields={"format": list(EXPORT_FORMATS)})
    lists.get_list(principal.account_id, list_id)
    rng = funnel.date_range(request.form.get("days", funnel.DEFAULT_DAYS))
    job = export.ExportRequest(principal.account_id, list_id, rng.since, rng.until, fmt)
    chunks = export.start_export(job, principal=principal)
    mimetype = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    name = f"flexmail-proof-{principal.account_id}-list-{list_id}.{fmt}"
    return Response(stream_with_context(chunks), content_type=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.post("/lists/<int:list_id>/certificate")
@signed_in
@needs_scope("compliance")
def consent_certificate(list_id):
    """One person's consent certificate on this list (as ``GET /api/v1/proof?format=``); the
    address travels in the POST body, never in a URL or a log line."""
    principal = current_principal()
    fmt = request.form.get("format", "")
    if fmt not in CERTIFICATE_FORMATS:
        raise ValidationFailed("Unknown certificate format.", fields={"format": list(CERTIFICATE_FORMATS)})
    lists.get_list(principal.account_id, list_id)
    result = proof.consent_history(principal.account_id, request.form.get("email", ""), list_id=list_id,
                                   principal=principal)
    if fmt == "pdf":
        return Response(certificate.render_pdf(result), mimetype="application/pdf",
                        headers={"Content-Disposition": 'attachment; filename="consent-certificate.pdf"'})
    return Response(certificate.render_html(result), mimetype="text/html")
