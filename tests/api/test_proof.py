"""Proof for compliance: per person (JSON, HTML, PDF), signed head, streamed export, offline verify."""

from __future__ import annotations

import csv
import io
import json

import pytest

from flexmail.extensions import db
from tests.helpers import link_from, token_of


@pytest.fixture
def history(client, account, create_list, subscribe, worker, maildir):
    """Three people on two lists; one confirmed, one cancelled, one pending."""
    news, offers = create_list(), create_list(name="Offers", consent_text="=HYPERLINK(\"http://x\")")
    for lst, email in ((news, "ann@example.com"), (offers, "+bob@example.com"), (news, "-cy@example.com")):
        subscribe(lst["id"], email=email, user_agent="@UA=1+1")
    worker.drain()
    mails = {m["To"].addresses[0].addr_spec: m for m in maildir()}
    client.post("/confirm/" + token_of(link_from(mails["ann@example.com"], "confirm")), data={"method": "button"},
                environ_base={"REMOTE_ADDR": "198.51.100.4"})
    client.post("/not-me/" + token_of(link_from(mails["+bob@example.com"], "not-me")))
    return news, offers


def _export(client, account, fmt="csv", **query):
    response = client.get("/api/v1/proof/export", query_string={"format": fmt, **query}, headers=account.headers)
    assert response.status_code == 200, response.data[:500]
    return response


def _verify(runner, tmp_path, body: bytes, name="export.csv", head=None):
    path = tmp_path / name
    path.write_bytes(body)
    args = ["proof", "verify", str(path)] + (["--head", json.dumps(head)] if head else [])
    return runner.invoke(args=args)


def test_person_proof_has_wording_mail_ips_times_and_verification(client, account, history):
    """GET /proof gives the wording, the confirmation mail as sent, both IPs and the chain check."""
    proof = client.get("/api/v1/proof?email=ANN@example.com", headers=account.headers).json
    (sub,) = proof["subscriptions"]
    assert sub["status"] == "subscribed" and sub["consent_text"].startswith("Send me the weekly")
    (mail,) = sub["confirmation_mails"]
    assert mail["message_id"].startswith("<") and mail["template_version"].startswith("confirm@")
    assert len(mail["text_sha256"]) == 64 and mail["subject"].startswith("Please confirm")
    ips = {e["type"]: e["ip"] for e in sub["events"]}
    assert ips["subscribe_requested"] == "203.0.113.7" and ips["confirmed"] == "198.51.100.4"
    assert proof["chain"]["verified"] is True and proof["chain"]["events_checked"] == len(sub["events"])
    assert proof["chain"]["head"]["signature"]


def test_person_proof_as_html_and_pdf_certificate(client, account, history):
    """The certificate renders as a page and as a PDF."""
    html = client.get("/api/v1/proof?email=ann@example.com&format=html", headers=account.headers)
    assert html.status_code == 200 and html.mimetype == "text/html"
    page = html.get_data(as_text=True)
    assert "Consent certificate" in page and "ann@example.com" in page and "198.51.100.4" in page
    assert "passed" in page
    pdf = client.get("/api/v1/proof?email=ann@example.com&format=pdf", headers=account.headers)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF-") and pdf.data.rstrip().endswith(b"%%EOF") and len(pdf.data) > 2000


def test_head_is_signed_and_checks_with_the_public_key(app, client, account, history):
    """The tree head names size and root; its Ed25519 signature verifies with the key published without auth."""
    head = client.get("/api/v1/proof/head", headers=account.headers).json
    key = client.get("/proof/key").json
    with app.app_context():
        from flexmail.services.evidence import signing

        assert signing.verify(head, key["public_key"])
        assert not signing.verify({**head, "tree_size": head["tree_size"] - 1}, key["public_key"])
        assert not signing.verify({**head, "root_hash": "0" * 64}, key["public_key"])
    assert head["tree_size"] > 5 and len(head["root_hash"]) == 64 and head["key_id"] == key["key_id"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_real_export_verifies_offline(client, runner, tmp_path, account, history, fmt):
    """A fresh export of the whole chain verifies, also against the signed head."""
    body = _export(client, account, fmt).data
    head = client.get("/api/v1/proof/head", headers=account.headers).json
    result = _verify(runner, tmp_path, body, f"e.{fmt}", head=head)
    assert result.exit_code == 0, result.output
    assert f"{head['tree_size']} entries verified" in result.output


def _csv_rows(body: bytes):
    return list(csv.reader(io.StringIO(body.decode())))


def _csv_body(rows) -> bytes:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


@pytest.mark.parametrize("column", ["type", "at", "ip", "user_agent", "email", "details", "source"])
def test_editing_any_field_fails_naming_the_row(client, runner, tmp_path, account, history, column):
    """Changing one field of data row 3 fails verification at row 3."""
    rows = _csv_rows(_export(client, account).data)
    index = rows[0].index(column)
    target = 3 if rows[3][index] else next(i for i in range(1, len(rows) - 1) if rows[i][index])
    rows[target][index] = {"type": "unsubscribed", "at": "2020-01-01T00:00:00Z", "ip": "192.0.2.99",
                           "user_agent": "Forged/1", "email": "someone@example.net",
                           "details": '{"method": "auto"}', "source": "forged"}[column]
    result = _verify(runner, tmp_path, _csv_body(rows))
    assert result.exit_code != 0
    assert f"row {target}" in result.output, result.output


def test_dropping_swapping_and_truncating_rows_fail(client, runner, tmp_path, account, history):
    """A removed row, two swapped rows, and a cut tail (against the head) all fail."""
    rows = _csv_rows(_export(client, account).data)
    head = client.get("/api/v1/proof/head", headers=account.headers).json
    dropped = rows[:3] + rows[4:]
    out = _verify(runner, tmp_path, _csv_body(dropped)).output
    assert "FAILED at row 3" in out and "missing" in out
    swapped = rows[:2] + [rows[3], rows[2]] + rows[4:]
    assert "FAILED at row 3" in _verify(runner, tmp_path, _csv_body(swapped)).output
    no_manifest_tail = rows[:-3]
    assert "manifest is missing" in _verify(runner, tmp_path, _csv_body(no_manifest_tail)).output
    tail_cut_kept_manifest = rows[:-3] + rows[-1:]
    assert "removed" in _verify(runner, tmp_path, _csv_body(tail_cut_kept_manifest)).output
    # A consistent but older export (made before more events) is cut against a newer head.
    older = _export(client, account).data
    client.get("/api/v1/proof?email=ann@example.com", headers=account.headers)
    from tests.conftest import BACKEND  # noqa: F401
    assert _verify(runner, tmp_path, older, head=head).exit_code == 0
    newer_head = dict(head, tree_size=head["tree_size"] + 1)
    assert "signature" in _verify(runner, tmp_path, older, head=newer_head).output
    forged_manifest = rows[:-1] + [["manifest", rows[-1][1].replace('"count": ', '"count": 1')]
                                   + rows[-1][2:]]
    assert "FAILED" in _verify(runner, tmp_path, _csv_body(forged_manifest)).output


def test_tail_cut_against_the_head_after_new_events(client, runner, tmp_path, account, history, subscribe):
    """An export that stops before the head (events added since, or rows cut) fails with --head."""
    body = _export(client, account).data
    news, _ = history
    subscribe(news["id"], email="late@example.com")
    head = client.get("/api/v1/proof/head", headers=account.headers).json
    result = _verify(runner, tmp_path, body, head=head)
    assert result.exit_code != 0 and "tail is missing" in result.output


def test_filtered_export_verifies_and_detects_removed_rows(client, runner, tmp_path, account, history):
    """An export of one list verifies; removing one of its rows fails through the signed digest."""
    news, _ = history
    body = _export(client, account, list_id=news["id"]).data
    rows = _csv_rows(body)
    assert {r[rows[0].index("list_id")] for r in rows[1:-1]} == {str(news["id"])}
    assert _verify(runner, tmp_path, body).exit_code == 0
    out = _verify(runner, tmp_path, _csv_body(rows[:2] + rows[3:])).output
    assert "FAILED" in out and "removed" in out


def test_csv_escapes_formulas_in_every_user_controlled_column(client, account, history):
    """Cells starting with = + - @ get a leading quote; the raw formula never starts a cell."""
    rows = _csv_rows(_export(client, account).data)
    cells = [c for r in rows[1:-1] for c in r]
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert "'+bob@example.com" in cells and "'-cy@example.com" in cells and "'@UA=1+1" in cells
    details = [c for c in cells if "HYPERLINK" in c]
    assert details and all(not c.startswith("=") for c in details)


def test_export_headers_and_audit(client, account, history):
    """The export is an attachment of type text/csv; the export is in the audit log."""
    response = _export(client, account)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    audit = client.get("/api/v1/audit", headers=account.headers).json["items"]
    assert any(a["action"] == "proof.export" and a["params"]["format"] == "csv" for a in audit)
    assert "example.com" not in json.dumps(audit)


def test_marketer_keys_get_403(client, create_account, history):
    """Only the compliance scope may read or export proof, people or audit."""
    marketer = create_account("M", scopes=("marketer",))
    for path in ("/api/v1/proof?email=ann@example.com", "/api/v1/proof/export", "/api/v1/proof/head",
                 "/api/v1/people?email=ann@example.com", "/api/v1/audit"):
        assert client.get(path, headers=marketer.headers).status_code == 403, path


def test_people_report_is_complete_and_audited(client, account, history):
    """GET /people returns subscriptions, events, suppressions and mails, and is audited."""
    report = client.get("/api/v1/people?email=%2Bbob@example.com", headers=account.headers).json
    assert report["email"] == "+bob@example.com"
    assert report["subscriptions"][0]["status"] == "cancelled"
    assert {s["reason"] for s in report["suppressions"]} == {"not_me"}
    assert report["mails"][0]["message_id"].startswith("<")
    audit = client.get("/api/v1/audit", headers=account.headers).json["items"]
    assert [a["action"] for a in audit].count("people.access") == 1


def test_bad_export_queries(client, account):
    """Unknown formats and reversed ranges are 422."""
    for query in ({"format": "xlsx"}, {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
                  {"since": "yesterday"}):
        response = client.get("/api/v1/proof/export", query_string=query, headers=account.headers)
        assert response.status_code == 422, query


def test_export_from_another_tenant_is_empty(client, create_account, history):
    """Another account's export holds none of this account's rows."""
    other = create_account("Globex", scopes=("compliance",))
    rows = _csv_rows(_export(client, other).data)
    assert len(rows) == 2  # header and manifest
    assert db is not None


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_of_one_account_holds_none_of_another_accounts_events(client, create_account, create_list,
                                                                     subscribe, account, history, fmt):
    """With events in both accounts, each account's export holds only its own events and people."""
    other = create_account("Globex", scopes=("compliance", "marketer"))
    subscribe(create_list(acct=other)["id"], acct=other, email="zed@example.org")
    for acct, mine, theirs in ((account, b"ann@example.com", b"zed@example.org"),
                               (other, b"zed@example.org", b"ann@example.com")):
        body = _export(client, acct, fmt).data
        assert mine in body and theirs not in body
        if fmt == "csv":
            rows = _csv_rows(body)
            ids = {r[rows[0].index("account_id")] for r in rows[1:-1]}
        else:
            ids = {str(json.loads(line)["account_id"]) for line in body.decode().splitlines()[:-1]}
        assert ids == {str(acct.id)}


def test_erasure_and_lifted_suppressions_are_audited(client, account, history):
    """Erasing a person and lifting a suppression each leave an audit entry without the address."""
    assert client.post("/api/v1/erasures", json={"email": "ann@example.com"}, headers=account.headers
                       ).status_code == 200
    added = client.post("/api/v1/suppressions", json={"email": "dan@example.com", "reason": "manual"},
                        headers=account.headers)
    assert added.status_code in (200, 201), added.json
    entries = client.get("/api/v1/suppressions", headers=account.headers).json["items"]
    target = next(e for e in entries if e.get("reason") == "manual")
    assert client.delete(f"/api/v1/suppressions/{target['id']}", headers=account.headers).status_code in (200, 204)
    audit = client.get("/api/v1/audit", headers=account.headers).json["items"]
    actions = [a["action"] for a in audit]
    assert "erasure" in actions and "suppression.lift" in actions
    text = json.dumps(audit)
    assert "ann@example.com" not in text and "dan@example.com" not in text
    assert all(a["key_prefix"] == account.key[:10] for a in audit if a["action"] in ("erasure", "suppression.lift"))


def test_chain_still_verifies_after_an_erasure(client, runner, tmp_path, account, history, subscribe):
    """Erasing a person (also one whose address sits in event details) leaves the chain verifiable."""
    news, _ = history
    subscribe(news["id"], email="eve@example.com", source="landing?ref=eve@example.com")
    for email in ("ann@example.com", "eve@example.com"):
        assert client.post("/api/v1/erasures", json={"email": email}, headers=account.headers).status_code == 200
    body = _export(client, account).data
    assert b"ann@example.com" not in body and b"eve@example.com" not in body
    head = client.get("/api/v1/proof/head", headers=account.headers).json
    result = _verify(runner, tmp_path, body, head=head)
    assert result.exit_code == 0, result.output
    proof = client.get("/api/v1/proof?email=eve@example.com", headers=account.headers).json
    assert proof["chain"]["verified"] is True
    assert any("details" in e["redacted"] for s in proof["subscriptions"] for e in s["events"])


def test_verify_against_an_earlier_head_detects_rewritten_history(app, client, runner, tmp_path, account, history,
                                                                   subscribe):
    """An export checked against an earlier head verifies when that head's tree is its prefix, and fails
    when the earlier head (validly signed) has another root over those first leaves."""
    early = client.get("/api/v1/proof/head", headers=account.headers).json
    news, _ = history
    subscribe(news["id"], email="later@example.com")
    body = _export(client, account).data
    assert _verify(runner, tmp_path, body, head=early).exit_code == 0
    with app.app_context():
        from flexmail.services.evidence import signing

        forged = signing.sign({k: v for k, v in early.items() if k not in ("signature", "key_id")}
                              | {"root_hash": "ab" * 32})
    result = _verify(runner, tmp_path, body, head=forged)
    assert result.exit_code != 0 and "rewritten" in result.output, result.output


def test_rows_edited_with_recomputed_hashes_fail(client, runner, tmp_path, account, history):
    """A row whose content and content hash were both rewritten still fails (the signed digest and root)."""
    from flexmail.domain import ledger as ledger_rules

    rows = _csv_rows(_export(client, account).data)
    header, target = rows[0], rows[2]
    row = dict(zip(header, target, strict=True))
    content = {"account_id": int(row["account_id"]), "seq": int(row["seq"]),
               "subscription_id": int(row["subscription_id"]), "list_id": int(row["list_id"]),
               "type": "unsubscribed", "at": row["at"], "source": row["source"].lstrip("'") or None,
               "details_hash": row["details_hash"], "commitments": json.loads(row["commitments"]),
               "prev_hash": row["prev_hash"] or None}
    target[header.index("type")] = "unsubscribed"
    target[header.index("content_hash")] = ledger_rules.content_hash(content)
    result = _verify(runner, tmp_path, _csv_body(rows))
    assert result.exit_code != 0 and "digest" in result.output, result.output
