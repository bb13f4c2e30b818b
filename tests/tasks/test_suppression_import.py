"""Suppression file imports: a dramatiq job with progress that reports every bad line by number
and reason, imports the rest, resumes after a crash, and keeps no copy of the file."""

from __future__ import annotations

import io

import pytest

from flexmail.domain.suppression_files import FORMULA_PROBLEM
from tests.suppression_support import check

#: A Mailchimp-style export with problems on known lines (numbers are physical lines).
MALFORMED = (
    '"Email Address","First Name","Last Name","UNSUB_TIME"\r\n'  # 1 header
    '"good.one@example.com","Good","One","2026-01-01"\r\n'  # 2
    '"no-at-sign.example.com","No","At","2026-01-01"\r\n'  # 3
    '"=cmd|\' /C calc\'!A0","Formula","Line","2026-01-01"\r\n'  # 4
    '"","Empty","Cell","2026-01-01"\r\n'  # 5
    '\r\n'  # 6 blank: skipped, not an error
    '"Good.Two@Example.COM","Good","Two","2026-01-01"\r\n'  # 7
    '"' + "x" * 65 + '@example.com","Long","Local","2026-01-01"\r\n'  # 8
    '"good.one@example.com","Repeat","One","2026-01-01"\r\n'  # 9 repeat: existing, not an error
    '"+SUM(1+1)*cmd|\' /C calc\'!A0","Formula","Two","2026-01-01"\r\n'  # 10
    '"user@localhost","Special","Use","2026-01-01"\r\n'  # 11
    '"good.three@bücher.de","Good","Three","2026-01-01"\r\n'  # 12
).encode() + b'"bad\xff\xfe@example.com","Bad","Bytes","2026-01-01"\r\n'  # 13


def _upload(client, acct, content: bytes, **query):
    return client.post("/api/v1/suppressions/imports", data=content, query_string=query,
                       headers={**acct.headers, "Content-Type": "text/csv"})


def _job(client, acct, job_id):
    response = client.get(f"/api/v1/suppressions/imports/{job_id}", headers=acct.headers)
    assert response.status_code == 200
    return response.json


def test_malformed_file_reports_each_bad_line_and_imports_the_rest(app, client, account, worker):
    """Each unusable line is listed with its number and a reason that does not repeat it; every
    good line is imported (repeats counted), and the stored file is deleted when done."""
    response = _upload(client, account, MALFORMED, reason="unsubscribed")
    assert response.status_code == 202
    queued = response.json
    # The running worker may pick the job up before the 202 answer is serialised.
    assert queued["total_rows"] == 11 and queued["status"] in {"queued", "running", "done"}
    worker.drain()
    job = _job(client, account, queued["id"])
    assert (job["status"], job["rows_done"], job["imported"], job["existing"], job["rejected"]) == (
        "done", 11, 3, 1, 7)
    assert [e["line"] for e in job["errors"]] == [3, 4, 5, 8, 10, 11, 13]
    reasons = dict((e["line"], e["reason"]) for e in job["errors"])
    assert reasons[4] == reasons[10] == FORMULA_PROBLEM
    assert reasons[5] == "No address in the email column."
    assert "too long" in reasons[8] and "period" in reasons[11]
    for text in (e["reason"] for e in job["errors"]):
        assert "no-at-sign" not in text and "calc" not in text and "xxxxx" not in text and "localhost" not in text
    results = check(client, account, ["good.one@example.com", "good.two@example.com", "good.three@BÜCHER.de",
                                      "no-at-sign.example.com"])
    assert [r["reason"] for r in results] == ["unsubscribed", "unsubscribed", "unsubscribed", None]
    with app.app_context():
        from flexmail.extensions import db
        from flexmail.models import Suppression, SuppressionImport

        assert db.session.get(SuppressionImport, queued["id"]).content is None
        sources = {s.source for s in db.session.query(Suppression).all()}
        assert sources == {f"import:{queued['id']}"}


def test_formula_cells_are_refused_and_escaped_addresses_are_kept(client, account, worker):
    """One address a line: formula-looking cells are refused as such; a quote-escaped address
    (as our exports write '=x@...') and a valid address starting with '=' are imported."""
    content = b"=cmd|'/C calc'!A0\n@SUM(1+1)\n-2+3\n'=x@example.com\n=1+1@example.com\nplain@example.com\n"
    job_id = _upload(client, account, content).json["id"]
    worker.drain()
    job = _job(client, account, job_id)
    assert [(e["line"], e["reason"]) for e in job["errors"]] == [(1, FORMULA_PROBLEM), (2, FORMULA_PROBLEM),
                                                                (3, FORMULA_PROBLEM)]
    assert job["imported"] == 3
    assert all(r["suppressed"] for r in check(client, account, ["=x@example.com", "=1+1@example.com",
                                                                "plain@example.com"]))


def test_sendgrid_style_csv_and_multipart_upload(client, account, worker):
    """A lower-case 'email' header CSV sent as a multipart file part works the same."""
    content = b"email,created\r\nsg1@example.com,1700000000\r\nsg2@example.com,1700000001\r\n"
    response = client.post("/api/v1/suppressions/imports", data={"file": (io.BytesIO(content), "export.csv")},
                           query_string={"reason": "hard_bounce"}, headers=account.headers,
                           content_type="multipart/form-data")
    assert response.status_code == 202
    worker.drain()
    assert _job(client, account, response.json["id"])["imported"] == 2
    assert check(client, account, ["sg2@example.com"])[0]["reason"] == "hard_bounce"


def test_empty_file_and_global_scope_without_admin_are_refused(client, account):
    """An empty body is 422; a platform-wide import needs the admin scope (403)."""
    assert _upload(client, account, b"  \n").status_code == 422
    assert _upload(client, account, b"a@example.com\n", scope="global").status_code == 403


def test_a_crashed_import_resumes_without_counting_twice(app, account, monkeypatch):
    """A worker dying after the first batch leaves that batch committed; the retry does the rest."""
    from flexmail.services.suppression import imports, suppressions
    from flexmail.services.suppression.suppressions import Actor

    monkeypatch.setattr(imports, "BATCH", 4)
    content = "\n".join(f"r{i}@example.com" for i in range(10)).encode() + b"\nbroken\n"
    real = imports.add_entries
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker died")
        return real(*args, **kwargs)

    with app.app_context():
        job = imports.create_import(account.id, content, actor=Actor("test"), enqueue=False)
        monkeypatch.setattr(imports, "add_entries", flaky)
        with pytest.raises(RuntimeError):
            imports.run_import(job.id)
        partial = imports.get_import(account.id, job.id)
        assert (partial.status, partial.rows_done, partial.imported, partial.last_error) == (
            "running", 4, 4, "RuntimeError")
        seen = []
        assert imports.run_import(job.id, progress=seen.append) == "done"
        done = imports.get_import(account.id, job.id)
        assert (done.rows_done, done.imported, done.existing, done.rejected) == (11, 10, 0, 1)
        assert seen == [4, 3]  # the two batches left after the crash
        assert suppressions.suppressed_addresses(account.id, [f"r{i}@example.com" for i in range(10)]) == {
            f"r{i}@example.com" for i in range(10)}
        assert imports.run_import(job.id) == "done"  # a late duplicate message does nothing


def test_cli_import_shows_progress_and_rejected_lines(app, runner, account, tmp_path):
    """`flask suppressions import FILE --account ID` imports with a progress bar and lists bad lines."""
    path = tmp_path / "unsubscribed.csv"
    path.write_bytes(MALFORMED)
    result = runner.invoke(args=["suppressions", "import", str(path), "--account", str(account.id),
                                 "--reason", "unsubscribed"])
    assert result.exit_code == 0, result.output
    assert "11 rows, 3 imported, 1 already suppressed, 7 rejected" in result.stdout
    assert "line 4: " + FORMULA_PROBLEM in result.stdout and "line 13: " in result.stdout
    assert "Importing" in result.stderr
    assert "no-at-sign" not in result.output
    missing = runner.invoke(args=["suppressions", "import", str(path), "--account", "999"])
    assert missing.exit_code != 0 and "No such account" in missing.output
