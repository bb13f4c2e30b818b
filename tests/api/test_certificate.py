"""The consent certificate: controller, signed tree head, offline verification, numbering, PDF/A-2b tagged."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import CI
from tests.helpers import link_from, token_of

CONTROLLER = {"legal_name": "Acme Outdoor BV", "postal_address": "Veldstraat 1\n9000 Gent\nBelgium"}


def _need_qpdf() -> str:
    path = shutil.which("qpdf")
    if path is None:
        message = "qpdf is not installed (./dev test installs it)"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def confirmed(client, account, create_list, subscribe, worker, maildir):
    assert client.put("/api/v1/proof/controller", json=CONTROLLER, headers=account.headers).status_code == 200
    lst = create_list()
    subscribe(lst["id"], email="ann@example.com")
    worker.drain()
    client.post("/confirm/" + token_of(link_from(maildir()[-1], "confirm")), data={"method": "button"})
    return lst


def _pdf_text(qdf: bytes) -> str:
    """The text of a QDF-normalised fpdf2 PDF: hex glyph strings mapped back through its ToUnicode CMap."""
    cmap = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", qdf, re.S):
        for gid, uni in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            cmap[gid.decode().lower()] = bytes.fromhex(uni.decode()).decode("utf-16-be")
    lines = []
    for hexstring in re.findall(rb"<([0-9A-Fa-f]+)>\s*Tj", qdf):
        h = hexstring.decode().lower()
        lines.append("".join(cmap.get(h[i:i + 4], "?") for i in range(0, len(h), 4)))
    return "\n".join(lines)


def test_pdf_certificate_is_pdfa_2b_tagged_and_complete(client, account, confirmed, tmp_path):
    """The PDF passes qpdf --check, declares PDF/A-2b (XMP pdfaid, sRGB OutputIntent), is tagged (StructTreeRoot,
    MarkInfo, Lang), and names the controller, the full head signature and key id, how to verify offline, the
    numbering, and page numbers."""
    qpdf = _need_qpdf()
    response = client.get("/api/v1/proof?email=ann@example.com&format=pdf", headers=account.headers)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    path, qdf_path = tmp_path / "c.pdf", tmp_path / "c.qdf.pdf"
    path.write_bytes(response.data)
    check = subprocess.run([qpdf, "--check", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    normalised = subprocess.run([qpdf, "--qdf", "--object-streams=disable", str(path), str(qdf_path)],
                                capture_output=True, text=True)
    assert normalised.returncode == 0, normalised.stderr  # also no warnings (exit code 3)
    qdf = qdf_path.read_bytes()
    assert b"<pdfaid:part>2</pdfaid:part>" in qdf and b"<pdfaid:conformance>B</pdfaid:conformance>" in qdf
    assert re.search(rb"/OutputIntents \[\s*<<\s*/DestOutputProfile \d+ 0 R", qdf) and b"/S /GTS_PDFA1" in qdf
    assert b"/OutputConditionIdentifier (sRGB)" in qdf
    assert re.search(rb"/StructTreeRoot \d+ 0 R", qdf) and re.search(rb"/MarkInfo <<\s*/Marked true", qdf)
    assert b"/Lang (en)" in qdf and b"/S /H1" in qdf and b"/S /P" in qdf
    assert b"/FontFile2" in qdf  # the font is embedded
    pages = int(subprocess.run([qpdf, "--show-npages", str(path)], capture_output=True, text=True).stdout)
    proof = client.get("/api/v1/proof?email=ann@example.com", headers=account.headers).json
    head = proof["chain"]["head"]
    text = _pdf_text(qdf)
    flat = text.replace("\n", "")
    assert "Acme Outdoor BV" in text and "Veldstraat 1, 9000 Gent, Belgium" in text
    assert head["signature"] in flat and f"key id {head['key_id']}" in flat
    assert "flask proof verify" in flat and "http://flexmail.test/proof/key" in flat
    assert proof["verification"]["public_key"] in flat
    assert "leaf index n-1" in flat and "(leaf 0)" in flat
    assert all(f"page {n} of {pages}" in flat for n in range(1, pages + 1))


def test_long_consent_wording_spans_pages_with_balanced_tags(client, account, create_list, subscribe, tmp_path):
    """A wording longer than a page is split per page, so every page's marked content is balanced
    (qpdf reads every content stream without warnings) and every page is numbered."""
    qpdf = _need_qpdf()
    lst = create_list(consent_text="I agree to receive mail. " * 400)
    subscribe(lst["id"], email="long@example.com")
    data = client.get("/api/v1/proof?email=long@example.com&format=pdf", headers=account.headers).data
    path, qdf_path = tmp_path / "c.pdf", tmp_path / "c.qdf.pdf"
    path.write_bytes(data)
    assert subprocess.run([qpdf, "--check", str(path)], capture_output=True).returncode == 0
    assert subprocess.run([qpdf, "--qdf", "--object-streams=disable", str(path), str(qdf_path)],
                          capture_output=True).returncode == 0
    qdf = qdf_path.read_bytes()
    pages = int(subprocess.run([qpdf, "--show-npages", str(path)], capture_output=True, text=True).stdout)
    assert pages >= 2
    for stream in re.findall(rb"stream\n(.*?)endstream", qdf, re.S):
        if b" Tj" in stream:
            assert stream.count(b"BDC") + stream.count(b"BMC") == stream.count(b"EMC")
    assert f"page {pages} of {pages}" in _pdf_text(qdf).replace("\n", "")


def test_html_certificate_names_controller_signature_and_verification(client, account, confirmed):
    """The HTML certificate shows the controller, the full signature with the key id, and how to verify."""
    page = client.get("/api/v1/proof?email=ann@example.com&format=html", headers=account.headers)
    text = page.get_data(as_text=True)
    head = client.get("/api/v1/proof/head", headers=account.headers).json
    assert "Acme Outdoor BV" in text and "Veldstraat 1" in text
    assert head["signature"] in text and head["key_id"] in text
    assert "flask proof verify" in text and "leaf index n-1" in text


def test_controller_is_settable_by_api_and_cli_and_validated(app, client, runner, account):
    """PUT /proof/controller and `flask accounts set-controller` set the controller; bad input is 422, unchanged."""
    assert client.get("/api/v1/proof/controller", headers=account.headers).json["legal_name"] is None
    bad = client.put("/api/v1/proof/controller", json={"legal_name": "x" * 201, "postal_address": "A"},
                     headers=account.headers)
    assert bad.status_code == 422 and "fields" in bad.json["error"]
    control = client.put("/api/v1/proof/controller", json={"legal_name": "Bad\x07", "postal_address": "A"},
                         headers=account.headers)
    assert control.status_code == 422
    assert client.get("/api/v1/proof/controller", headers=account.headers).json["legal_name"] is None
    result = runner.invoke(args=["accounts", "set-controller", str(account.id), "--legal-name", "Acme NV",
                                 "--address", "Kerkstraat 2\\n2000 Antwerpen"])
    assert result.exit_code == 0, result.output
    body = client.get("/api/v1/proof/controller", headers=account.headers).json
    assert body["legal_name"] == "Acme NV" and body["postal_address"] == "Kerkstraat 2\n2000 Antwerpen"
