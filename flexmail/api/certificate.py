"""The consent certificate: a person's proof as a page or a PDF a lawyer can attach.

Rendering only; the facts come from services.proof.consent_history.
"""

from __future__ import annotations

import os

from flask import render_template
from fpdf import FPDF

FONT_CANDIDATES = (
    os.environ.get("FLEXMAIL_PDF_FONT", ""),
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)


def render_html(proof: dict) -> str:
    return render_template("proof/certificate.html", proof=proof)


def render_pdf(proof: dict) -> bytes:
    """A plain, printable PDF (A4) with every event of every subscription."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    font = next((f for f in FONT_CANDIDATES if f and os.path.exists(f)), None)
    if font:
        pdf.add_font("body", fname=font)
        family = "body"
    else:  # core font: Latin-1 only, other characters become "?"
        family = "Helvetica"
    pdf.add_page()
    pdf.set_title("Consent certificate")

    def text(value, size=10, bold=False, gap=1.5):
        pdf.set_font(family, size=size + (2 if bold else 0))
        value = "" if value is None else str(value)
        if family == "Helvetica":
            value = value.encode("latin-1", "replace").decode("latin-1")
        pdf.multi_cell(0, size * 0.5, value, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    text("Consent certificate", size=16, bold=True, gap=3)
    text(f"Person: {proof['email']}")
    text(f"Account: {proof['account_id']}    Generated (UTC): {proof['generated_at']}")
    chain = proof["chain"]
    text(f"Ledger verification of these events: {'passed' if chain['verified'] else 'FAILED'} "
         f"({chain['events_checked']} events); account chain head {chain['head']['head_hash']} "
         f"at entry {chain['head']['count']}, signed {chain['head']['signature'][:24]}...", size=8, gap=4)
    if not proof["subscriptions"]:
        text("No subscription of this address is held by the account.")
    for sub in proof["subscriptions"]:
        text(f"List: {sub['list_name']} (id {sub['list_id']}), sender {sub['sender']['name']} "
             f"<{sub['sender']['email']}>", size=11, bold=True)
        text(f"Status: {sub['status']}    Signed up: {sub['created_at']}    Confirmed: {sub['confirmed_at'] or '-'}")
        text(f"Consent wording shown: {sub['consent_text']}")
        for mail in sub["confirmation_mails"]:
            text(f"Confirmation mail {mail['message_id']}: sent {mail['sent_at'] or '-'}, subject "
                 f"\"{mail['subject'] or '-'}\", template {mail['template_version'] or '-'}, "
                 f"text SHA-256 {mail['text_sha256'] or '-'}", size=8)
        for event in sub["events"]:
            method = (event["details"] or {}).get("method")
            text(f"#{event['seq']}  {event['at'] or '(deleted)'}  {event['type'] or '(deleted)'}"
                 f"{' (' + method + ')' if method else ''}   source: {event['source'] or '-'}   "
                 f"IP: {event['ip'] or '-'}", size=8, gap=0.2)
            text(f"      user agent: {event['user_agent'] or '-'}   entry hash: {event['entry_hash']}", size=7, gap=1)
        pdf.ln(3)
    return bytes(pdf.output())
