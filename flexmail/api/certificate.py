"""The consent certificate: a person's proof as a page or a PDF a lawyer can attach.

The PDF is PDF/A-2b (fpdf2's ``enforce_compliance``: XMP ``pdfaid`` metadata, an sRGB
output intent, embedded fonts) and tagged (a structure tree with a /Document of headings
and paragraphs, ``/MarkInfo``, the document language); running page numbers are marked
as artifacts. Rendering only; the facts come from services.evidence.proof.consent_history.
"""

from __future__ import annotations

import logging
import os

from flask import render_template
from fpdf import FPDF
from fpdf.enums import MethodReturnValue

# fontTools logs every subsetting step at INFO; the certificate needs none of it.
logging.getLogger("fontTools").setLevel(logging.WARNING)

FONT_CANDIDATES = (
    os.environ.get("FLEXMAIL_PDF_FONT", ""),
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)

NUMBERING = ("Event numbers: each event of the account is a leaf of one append-only Merkle tree "
             "(RFC 9162, as in Certificate Transparency). Event #n is leaf index n-1. Numbers are given "
             "in the order the sealer received the events, a few seconds after they were written, so "
             "they rise with time but say nothing about other people; gaps in one person's numbers are "
             "other people's events.")


def verify_paragraph(proof: dict) -> str:
    head, key = proof["chain"]["head"], proof.get("verification") or {}
    return ("How to verify this offline: ask the controller for the proof export of the account "
            "(GET /api/v1/proof/export) and the signed tree head below as JSON, then run "
            "`flask proof verify EXPORT --head HEAD.json --public-key KEY` with Flexmail, or any RFC 9162 "
            "implementation: hash each event's content (leaf = SHA-256(0x00 || content hash), "
            "node = SHA-256(0x01 || left || right)), recompute the root of the first "
            f"{head['tree_size']} leaves and compare it with {head['root_hash']}, then check the "
            f"Ed25519 signature with the public key {key.get('public_key', '-')} published at "
            f"{key.get('public_key_url', '-')}. Each event below also lists its inclusion proof in the JSON "
            "proof (GET /api/v1/proof), which verifies against the same head.")


def render_html(proof: dict) -> str:
    return render_template("proof/certificate.html", proof=proof, numbering=NUMBERING,
                           verify_paragraph=verify_paragraph(proof))


class _Certificate(FPDF):
    """A4, PDF/A-2b, with page numbers in the footer (marked as artifacts, not content)."""

    def footer(self):
        self._out("/Artifact BMC")
        self.set_y(-12)
        self.set_font(self.body_family, size=8)
        self.cell(0, 5, f"Consent certificate · page {self.page_no()} of {{nb}}", align="C")
        self._out("EMC")

    def tagged(self, struct_type: str, text: str, *, size: float, gap: float, title: str | None = None):
        """Write ``text`` as one or more marked-content sequences (one per page it spans)."""
        self.set_font(self.body_family, size=size)
        height = size * 0.5
        lines = self.multi_cell(0, height, text, dry_run=True, output=MethodReturnValue.LINES) or [""]
        while lines:
            room = int((self.page_break_trigger - self.y - 0.01) // height)
            if room <= 0:
                self.add_page()
                continue
            chunk, lines = lines[:room], lines[room:]
            mcid = self.struct_builder.next_mcid_for_page(self.page)
            self._add_marked_content(struct_type=f"/{struct_type}", mcid=mcid, title=title)
            self._out(f"/{struct_type} <</MCID {mcid}>> BDC")
            self.multi_cell(0, height, "\n".join(chunk), align="L", new_x="LMARGIN", new_y="NEXT")
            self._out("EMC")
        self.ln(gap)


def render_pdf(proof: dict) -> bytes:
    """A printable, archivable PDF with every event of every subscription."""
    font = next((f for f in FONT_CANDIDATES if f and os.path.exists(f)), None)
    if font is None:  # PDF/A needs an embedded font; core fonts cannot be embedded
        raise RuntimeError("No TrueType font for the PDF certificate (install fonts-dejavu-core "
                           "or set FLEXMAIL_PDF_FONT)")
    pdf = _Certificate(format="A4", enforce_compliance="PDF/A-2B")
    pdf.add_font("body", fname=font)
    pdf.body_family = "body"
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_lang("en")
    pdf.set_title("Consent certificate")
    pdf.set_subject(f"Consent proof of one person held by account {proof['account_id']}")
    pdf.set_author((proof.get("controller") or {}).get("legal_name") or "Flexmail")
    pdf.set_creator("Flexmail")
    pdf.add_page()

    def h(text, level=1):
        pdf.tagged(f"H{level}", text, size=16 if level == 1 else 12, gap=2)

    def p(text, size=10, gap=1.5):
        pdf.tagged("P", "" if text is None else str(text), size=size, gap=gap)

    controller = proof.get("controller") or {}
    chain, head = proof["chain"], proof["chain"]["head"]
    h("Consent certificate")
    p(f"Controller: {controller.get('legal_name') or controller.get('name') or '-'}"
      f"{' - ' + controller['postal_address'].replace(chr(10), ', ') if controller.get('postal_address') else ''}")
    p(f"Person: {proof['email']}")
    p(f"Account: {proof['account_id']}    Generated (UTC): {proof['generated_at']}")
    h("Verification", 2)
    p(f"Verification of this person's events against the signed tree head: "
      f"{'passed' if chain['verified'] else 'FAILED'} ({chain['events_checked']} events"
      f"{', ' + str(len(chain.get('unsealed') or [])) + ' not sealed yet' if chain.get('unsealed') else ''}).")
    p(f"Signed tree head: tree size {head['tree_size']}, root {head['root_hash']}, time {head['timestamp']}, "
      f"key id {head['key_id']}.", size=8)
    p(f"Ed25519 signature: {head['signature']}", size=8)
    p(verify_paragraph(proof), size=8)
    p(NUMBERING, size=8, gap=3)
    if not proof["subscriptions"]:
        p("No subscription of this address is held by the account.")
    for sub in proof["subscriptions"]:
        h(f"List: {sub['list_name']} (id {sub['list_id']}), sender {sub['sender']['name']} "
          f"<{sub['sender']['email']}>", 2)
        p(f"Status: {sub['status']}    Signed up: {sub['created_at']}    Confirmed: {sub['confirmed_at'] or '-'}")
        p(f"Consent wording shown: {sub['consent_text']}")
        for mail in sub["confirmation_mails"]:
            p(f"Confirmation mail {mail['message_id']}: sent {mail['sent_at'] or '-'}, subject "
              f"\"{mail['subject'] or '-'}\", template {mail['template_version'] or '-'}, "
              f"text SHA-256 {mail['text_sha256'] or '-'}", size=8)
        for event in sub["events"]:
            method = (event["details"] or {}).get("method")
            number = f"#{event['seq']} (leaf {event['leaf_index']})" if event["seq"] else "(not sealed yet)"
            p(f"{number}  {event['at'] or '(deleted)'}  {event['type'] or '(deleted)'}"
              f"{' (' + method + ')' if method else ''}   source: {event['source'] or '-'}   "
              f"IP: {event['ip'] or '-'}\n      user agent: {event['user_agent'] or '-'}   "
              f"content hash: {event['content_hash']}", size=7, gap=1)
        pdf.ln(3)
    return bytes(pdf.output())
