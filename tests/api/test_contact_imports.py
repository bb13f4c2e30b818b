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


def test_upload_is_stored_in_bounded_parts_and_read_back_as_one_stream(app, client, account, create_list, worker,
                                                                        monkeypatch):
    """The body is not kept in the job row: it is stored in parts of at most PART_BYTES,
    which the worker reads back as one stream (a row, even a quoted cell with a line break,
    may straddle two parts), and the parts are deleted when the job is done."""
    from flexmail.extensions import db
    from flexmail.models import ContactImport, ContactImportPart, Subscription
    from flexmail.services.marketer import contact_imports
    from flexmail.services.platform import jobs

    held = []
    enqueue = jobs.enqueue
    monkeypatch.setattr(jobs, "enqueue", lambda actor, job_id: held.append((actor, job_id)))  # look first
    monkeypatch.setattr(contact_imports, "PART_BYTES", 50)
    monkeypatch.setattr(contact_imports, "BATCH", 3)
    lst = create_list()
    rows = [PROOF.replace("proof@", f"p{i}@") for i in range(7)]
    rows[3] = rows[3].replace("Send me news.", '"Send me\nnews."')
    body = HEADER + "".join(rows)
    answer = client.post(f"/api/v1/lists/{lst['id']}/imports", data=body.encode(),
                         headers={**account.headers, "Content-Type": "text/csv"})
    assert answer.status_code == 202 and answer.json["total_rows"] == 7
    with app.app_context():
        assert "content" not in ContactImport.__table__.c
        parts = db.session.scalars(select(ContactImportPart.data).where(
            ContactImportPart.import_id == answer.json["id"]).order_by(ContactImportPart.part)).all()
        assert len(parts) == -(-len(body.encode()) // 50) and max(map(len, parts)) == 50
        assert b"".join(parts) == body.encode()
    assert held == [("import_contacts", answer.json["id"])]
    enqueue(*held[0])
    worker.drain()
    job = client.get(f"/api/v1/lists/{lst['id']}/imports/{answer.json['id']}", headers=account.headers).json
    assert (job["status"], job["subscribed"], job["rejected"], job["rows_done"]) == ("done", 7, 0, 7)
    with app.app_context():
        assert db.session.query(ContactImportPart).count() == 0
        assert db.session.scalar(select(Subscription.consent_text).where(Subscription.email == "p3@example.com")
                                 ) == "Send me\nnews."


def test_a_body_over_the_limit_is_413_and_stores_nothing(app, client, account, create_list):
    """Over CONTACT_IMPORT_MAX_BYTES the answer is 413 in the API's error envelope, whether
    the client announced the size or the service finds out while reading the stream, and no
    job or part is stored."""
    import io

    from flexmail.extensions import db
    from flexmail.models import ContactImport, ContactImportPart
    from flexmail.services.marketer import contact_imports
    from flexmail.services.platform.errors import TooLarge

    lst = create_list()
    app.config["CONTACT_IMPORT_MAX_BYTES"] = 100
    body = (HEADER + PROOF).encode()
    answer = client.post(f"/api/v1/lists/{lst['id']}/imports", data=body,
                         headers={**account.headers, "Content-Type": "text/csv"})
    assert answer.status_code == 413 and answer.json["error"]["code"] == "payload_too_large"
    with app.app_context():
        try:
            contact_imports.create_import(account.id, lst["id"], io.BytesIO(body), max_bytes=100)
        except TooLarge as exc:
            assert exc.status == 413
        else:
            raise AssertionError("no TooLarge")
        assert (db.session.query(ContactImport).count(), db.session.query(ContactImportPart).count()) == (0, 0)


def test_an_address_taken_meanwhile_is_left_alone(app, client, account, create_list, worker, monkeypatch):
    """A signup that takes an address between the batch's check and its bulk insert wins:
    the imported row counts as existing, the batch does not fail, and the signup's
    subscription keeps its state."""
    from flexmail.extensions import db
    from flexmail.models import Subscription
    from flexmail.services.marketer import contact_imports
    from flexmail.services.platform import bulk

    lst = create_list()
    insert_new = bulk.insert_new

    def racing(session, table, columns, rows, **kwargs):
        other = dict(rows[0], status="pending", confirmed_at=None, email=rows[0]["email"])
        insert_new(session, table, columns, [other], **kwargs)
        return insert_new(session, table, columns, rows, **kwargs)

    monkeypatch.setattr(contact_imports.bulk, "insert_new", racing)
    job = run(client, account, lst["id"], HEADER + PROOF + PROOF.replace("proof@", "second@"), worker)
    assert (job["status"], job["subscribed"], job["existing"]) == ("done", 1, 1)
    with app.app_context():
        statuses = dict(db.session.execute(select(Subscription.email, Subscription.status)).all())
    assert {k: v.value for k, v in statuses.items()} == {"proof@example.com": "pending",
                                                         "second@example.com": "subscribed"}


def test_imported_proof_rows_send_their_webhooks(app, client, account, create_list, worker):
    """Each imported subscription's two events reach an endpoint that asked for them, written in
    the batch's transaction, numbered in the order they happened."""
    from flexmail.extensions import db
    from flexmail.models import Subscription, WebhookDelivery

    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    hook = client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": [
        "subscription.requested", "subscription.confirmed"]}, headers=account.headers).json
    lst = create_list()
    run(client, account, lst["id"], HEADER + PROOF + PROOF.replace("proof@", "two@"), worker)
    with app.app_context():
        subs = dict(db.session.execute(select(Subscription.email, Subscription.id)).all())
        rows = db.session.execute(select(WebhookDelivery.sequence, WebhookDelivery.event_type, WebhookDelivery.data,
                                         WebhookDelivery.email).where(WebhookDelivery.endpoint_id == hook["id"])).all()
    got = sorted((data["subscription_id"], number, kind, data["status"], email) for number, kind, data, email in rows)
    assert [(sid, kind, status, email) for sid, _, kind, status, email in got] == [
        (subs["proof@example.com"], "subscription.requested", "subscribed", "proof@example.com"),
        (subs["proof@example.com"], "subscription.confirmed", "subscribed", "proof@example.com"),
        (subs["two@example.com"], "subscription.requested", "subscribed", "two@example.com"),
        (subs["two@example.com"], "subscription.confirmed", "subscribed", "two@example.com")]
