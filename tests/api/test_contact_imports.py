"""POST /api/v1/lists/<id>/imports: rows with proof are subscribed with that proof, signups
the marketer's form took get a confirmation mail within the flood limits, anything else is
refused, suppressed rows are skipped, and importing the same file twice changes nothing."""

from __future__ import annotations

import json

from sqlalchemy import select

HEADER = "email,signup_at,signup_ip,confirmed_at,confirm_ip,source,consent_text,user_agent,form_url\n"
PROOF = "proof@example.com,2024-03-01T10:00:00Z,203.0.113.7,2024-03-01T10:05:00Z,198.51.100.9,shop,Send me news.,,\n"


def signup(email="signup@example.com", ip="203.0.113.8"):
    from flexmail import clock

    at = clock.now().isoformat()
    return f"{email},{at},{ip},,,,,Mozilla/5.0 (form),https://acme.example/signup\n"


def run(client, account, list_id, body: str, worker, content_type="text/csv"):
    answer = client.post(f"/api/v1/lists/{list_id}/imports", data=body.encode(), headers={
        **account.headers, "Content-Type": content_type})
    assert answer.status_code == 202, answer.json
    worker.drain()
    job = client.get(f"/api/v1/lists/{list_id}/imports/{answer.json['id']}", headers=account.headers)
    assert job.status_code == 200
    return job.json


def events_of(app, email):
    from flexmail.extensions import db
    from flexmail.models import ConsentEvent, Subscription

    with app.app_context():
        sub = db.session.scalar(select(Subscription).where(Subscription.email == email))
        if sub is None:
            return None, []
        events = db.session.scalars(select(ConsentEvent).where(ConsentEvent.subscription_id == sub.id)
                                    .order_by(ConsentEvent.seq)).all()
        return sub.status.value, [(e.type.value, e.source, e.ip, e.details) for e in events]


def test_proof_rows_are_subscribed_with_their_imported_proof(app, client, account, create_list, worker, maildir):
    """A row with signup and confirmation time and IP, source and wording becomes subscribed,
    its events say import:<id> and keep the original times and IPs; no mail is sent."""
    lst = create_list()
    job = run(client, account, lst["id"], HEADER + PROOF, worker)
    assert (job["status"], job["subscribed"], job["rows_done"], job["total_rows"]) == ("done", 1, 1, 1)
    status, events = events_of(app, "proof@example.com")
    assert status == "subscribed"
    assert [(t, s, ip) for t, s, ip, _ in events] == [
        ("subscribe_requested", f"import:{job['id']}", "203.0.113.7"),
        ("confirmed", f"import:{job['id']}", "198.51.100.9")]
    assert events[0][3]["signup_at"] == "2024-03-01T10:00:00Z" and events[0][3]["imported_proof"] is True
    assert events[0][3]["consent_text"] == "Send me news." and events[0][3]["form_source"] == "shop"
    assert events[1][3]["confirmed_at"] == "2024-03-01T10:05:00Z"
    assert maildir() == []
    proof = client.get("/api/v1/proof", query_string={"email": "proof@example.com"}, headers=account.headers).json
    assert proof["chain"]["verified"] is True and len(proof["subscriptions"][0]["events"]) == 2


def test_signup_rows_get_a_confirmation_mail(app, client, account, create_list, worker, maildir):
    """A signup the form took (time, IP, user agent, form URL) is pending and gets one
    confirmation mail; the event carries the form's facts and the import as source."""
    lst = create_list()
    job = run(client, account, lst["id"], HEADER + signup(), worker)
    assert job["pending"] == 1 and job["rejected"] == 0
    status, events = events_of(app, "signup@example.com")
    assert status == "pending"
    assert events[0][:3] == ("subscribe_requested", f"import:{job['id']}", "203.0.113.8")
    assert events[0][3]["form_source"] == "https://acme.example/signup"
    mails = maildir()
    assert len(mails) == 1 and mails[0]["To"] == "signup@example.com"


def test_rows_without_proof_formulas_and_suppressed_rows_are_reported(app, client, account, create_list, worker):
    """No proof and no signup facts: refused; a formula cell: refused; incomplete proof and
    bad values: refused with the reason; a suppressed address with full proof: skipped.
    Results name lines and reasons, never the row's content."""
    lst = create_list()
    client.post("/api/v1/suppressions", json={"email": "blocked@example.com", "reason": "manual"},
                headers=account.headers)
    body = (HEADER
            + "bare@example.com,,,,,,,,\n"
            + "=cmd|' /C calc'!A0,2024-03-01T10:00:00Z,203.0.113.7,2024-03-01T10:05:00Z,198.51.100.9,s,w,,\n"
            + "half@example.com,2024-03-01T10:00:00Z,203.0.113.7,2024-03-01T10:05:00Z,,s,w,,\n"
            + "badip@example.com,2024-03-01T10:00:00Z,999.1.1.1,2024-03-01T10:05:00Z,198.51.100.9,s,w,,\n"
            + PROOF.replace("proof@", "blocked@")
            + PROOF)
    job = run(client, account, lst["id"], body, worker)
    assert (job["subscribed"], job["suppressed"], job["rejected"]) == (1, 1, 4)
    by_line = {r["line"]: r for r in job["results"]}
    assert by_line[2]["outcome"] == "rejected" and "Neither existing proof" in by_line[2]["reason"]
    assert "formula" in by_line[3]["reason"]
    assert "confirm_ip" in by_line[4]["reason"]
    assert "signup_ip" in by_line[5]["reason"]
    assert by_line[6]["outcome"] == "suppressed"
    assert "example.com" not in json.dumps(job["results"])
    assert events_of(app, "bare@example.com")[0] is None
    assert events_of(app, "blocked@example.com")[0] is None


def test_importing_the_same_file_again_changes_nothing(app, client, account, create_list, worker, maildir):
    """The second run finds every address on the list: no new event, no new mail."""
    from flexmail.extensions import db
    from flexmail.models import ConsentEvent, OutboxMessage

    lst = create_list()
    body = HEADER + PROOF + signup()
    first = run(client, account, lst["id"], body, worker)
    assert (first["subscribed"], first["pending"]) == (1, 1)
    with app.app_context():
        counts = (db.session.query(ConsentEvent).count(), db.session.query(OutboxMessage).count())
    second = run(client, account, lst["id"], body, worker)
    assert (second["subscribed"], second["pending"], second["existing"]) == (0, 0, 2)
    with app.app_context():
        assert (db.session.query(ConsentEvent).count(), db.session.query(OutboxMessage).count()) == counts


def test_json_lines_and_flood_limits(app, client, account, create_list, worker):
    """JSON Lines work like CSV; signups over the account's confirmation flood limit are
    deferred (reported, not pending) and a later run of the same file takes them."""
    from flexmail import clock

    app.config["CONFIRM_PER_ACCOUNT_PER_HOUR"] = 1
    lst = create_list()
    at = clock.now().isoformat()
    rows = [{"email": f"p{i}@example.com", "signup_at": at, "signup_ip": f"203.0.113.{i}", "user_agent": "UA",
             "form_url": "https://acme.example/f"} for i in (1, 2)]
    body = "\n".join(json.dumps(r) for r in rows) + "\n{not json\n"
    job = run(client, account, lst["id"], body, worker, content_type="application/x-ndjson")
    assert (job["pending"], job["rejected"]) == (1, 2)
    assert sorted((r["line"], r["outcome"]) for r in job["results"]) == [(2, "deferred"), (3, "rejected")]
    app.config["CONFIRM_PER_ACCOUNT_PER_HOUR"] = 10
    again = run(client, account, lst["id"], body, worker, content_type="application/x-ndjson")
    assert (again["pending"], again["existing"]) == (1, 1)


def test_other_tenant_404_missing_scope_403_empty_file_422(client, account, create_list, create_account):
    """Another account's list or import is 404; a key without marketer scope is 403; an empty
    body is 422 and makes no job."""
    lst = create_list()
    other = create_account("Other", scopes=("marketer",))
    url = f"/api/v1/lists/{lst['id']}/imports"
    assert client.post(url, data=(HEADER + PROOF).encode(), headers={**other.headers, "Content-Type": "text/csv"}
                       ).status_code == 404
    job = client.post(url, data=(HEADER + PROOF).encode(), headers={**account.headers, "Content-Type": "text/csv"})
    assert client.get(f"{url}/{job.json['id']}", headers=other.headers).status_code == 404
    compliance = create_account("C", scopes=("compliance",))
    assert client.post(url, data=b"x", headers={**compliance.headers, "Content-Type": "text/csv"}).status_code == 403
    empty = client.post(url, data=b"  \n", headers={**account.headers, "Content-Type": "text/csv"})
    assert empty.status_code == 422 and "file" in empty.json["error"]["fields"]
