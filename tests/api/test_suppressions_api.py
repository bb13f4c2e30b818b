"""/api/v1/suppressions: add, list, lift, bulk check, scopes, tenants, body limits, and every
send path that exists refusing a suppressed address."""

from __future__ import annotations

import datetime as dt

import pytest

from flexmail import clock
from tests.helpers import link_from, token_of
from tests.suppression_support import add, check, events, form_post, worker_for


def _error(response, status, code):
    assert response.status_code == status, response.data[:500]
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json["error"]["code"] == code
    return response.json["error"]


@pytest.fixture
def admin(create_account):
    return create_account("Operator", scopes=("admin",))


# --- writing, reading, lifting -----------------------------------------------------------------

def test_add_one_address_and_read_it_back(client, account):
    """POST one address: 201 with the entry (normalised address, scope, who); GET lists and shows it."""
    response = add(client, account, email=" Reader@Example.COM ", reason="hard_bounce")
    assert response.status_code == 201
    assert (response.json["added"], response.json["existing"], response.json["rejected"]) == (1, 0, [])
    (entry,) = response.json["entries"]
    assert entry["email"] == "Reader@example.com" and entry["kind"] == "address" and entry["domain"] is None
    assert (entry["reason"], entry["scope"], entry["source"]) == ("hard_bounce", "account", "api")
    assert entry["created_by"] == "api-key:" + account.key[:10]
    assert client.get(f"/api/v1/suppressions/{entry['id']}", headers=account.headers).json == entry
    assert client.get("/api/v1/suppressions", headers=account.headers).json["items"] == [entry]


def test_add_many_with_rejects_and_existing(client, account):
    """POST emails: valid ones are added, repeats counted, invalid ones listed by position without echo."""
    add(client, account, email="b@example.com")
    response = add(client, account, emails=["a@example.com", "B@example.com", "=cmd|' /C calc'!A0", "c@example.com"],
                   reason="unsubscribed")
    assert response.status_code == 201
    body = response.json
    assert (body["added"], body["existing"]) == (3, 0)  # b@ exists with another reason: a second entry
    assert [r["index"] for r in body["rejected"]] == [2] and body["rejected"][0]["field"] == "emails"
    assert "cmd" not in body["rejected"][0]["reason"]
    again = add(client, account, emails=["a@example.com", "c@example.com"], reason="unsubscribed").json
    assert (again["added"], again["existing"]) == (0, 2)


def test_domain_entry_blocks_the_domain(client, account, create_list, subscribe):
    """POST domain: every address at it is suppressed for the account."""
    response = add(client, account, domain="@Spam-Trap.example", reason="complaint")
    (entry,) = response.json["entries"]
    assert (entry["kind"], entry["domain"], entry["email"]) == ("domain", "spam-trap.example", None)
    assert [r["suppressed"] for r in check(client, account, ["x@spam-trap.example", "x@example.com"])] == [True, False]
    _error(subscribe(create_list()["id"], email="anyone@SPAM-TRAP.example"), 409, "suppressed")


def test_list_is_cursor_paginated_and_filters_by_reason(client, account):
    """Pages in id order with next_cursor; ?reason= filters."""
    add(client, account, emails=[f"p{i}@example.com" for i in range(5)], reason="manual")
    add(client, account, emails=["b1@example.com", "b2@example.com"], reason="hard_bounce")
    first = client.get("/api/v1/suppressions?limit=3", headers=account.headers).json
    second = client.get(f"/api/v1/suppressions?limit=3&cursor={first['next_cursor']}", headers=account.headers).json
    third = client.get(f"/api/v1/suppressions?limit=3&cursor={second['next_cursor']}", headers=account.headers).json
    ids = [e["id"] for e in first["items"] + second["items"] + third["items"]]
    assert len(ids) == 7 and ids == sorted(ids) and third["next_cursor"] is None
    bounces = client.get("/api/v1/suppressions?reason=hard_bounce", headers=account.headers).json["items"]
    assert [e["email"] for e in bounces] == ["b1@example.com", "b2@example.com"]
    _error(client.get("/api/v1/suppressions?reason=whatever", headers=account.headers), 422, "validation_error")


def test_lift_is_recorded_with_who_and_why(app, client, account, create_list, subscribe, worker):
    """DELETE lifts the entry (the address may sign up again), and the proof shows an
    unsuppressed event with the key and the note, after the suppressed one."""
    sub_id = subscribe(create_list()["id"], email="reader@example.com").json["subscription"]["id"]
    entry = add(client, account, email="reader@example.com", reason="manual").json["entries"][0]
    response = client.delete(f"/api/v1/suppressions/{entry['id']}?note=asked+by+phone", headers=account.headers)
    assert response.status_code == 200
    assert response.json["lifted_by"] == "api-key:" + account.key[:10] and response.json["note"] == "asked by phone"
    assert not check(client, account, ["reader@example.com"])[0]["suppressed"]
    _error(client.get(f"/api/v1/suppressions/{entry['id']}", headers=account.headers), 404, "not_found")
    types = [e["type"] for e in events(client, account, sub_id) if e["type"].endswith("suppressed")]
    assert types == ["suppressed", "unsuppressed"]
    lifted = events(client, account, sub_id, "unsuppressed")[0]
    assert lifted["details"]["note"] == "asked by phone" and lifted["details"]["reason"] == "manual"
    with app.app_context():
        from flexmail.extensions import db
        from flexmail.models import SuppressionLift

        (record,) = db.session.query(SuppressionLift).all()
        assert (record.suppression_id, record.reason, record.lifted_by) == (entry["id"], "manual", response.json[
            "lifted_by"])


# --- tenants, scopes, limits -----------------------------------------------------------------

def test_wrong_tenant_gets_404(client, account, create_account):
    """Another account's entry and import cannot be read or lifted: 404, and checks do not see it."""
    entry = add(client, account, email="mine@example.com").json["entries"][0]
    other = create_account("Globex")
    _error(client.get(f"/api/v1/suppressions/{entry['id']}", headers=other.headers), 404, "not_found")
    _error(client.delete(f"/api/v1/suppressions/{entry['id']}", headers=other.headers), 404, "not_found")
    assert client.get("/api/v1/suppressions", headers=other.headers).json["items"] == []
    assert not check(client, other, ["mine@example.com"])[0]["suppressed"]
    job = client.post("/api/v1/suppressions/imports", data=b"x@example.com\n",
                      headers={**account.headers, "Content-Type": "text/plain"}).json
    _error(client.get(f"/api/v1/suppressions/imports/{job['id']}", headers=other.headers), 404, "not_found")
    assert is_there(client, account, entry["id"])


def is_there(client, acct, entry_id) -> bool:
    return client.get(f"/api/v1/suppressions/{entry_id}", headers=acct.headers).status_code == 200


def test_missing_scope_is_403(client, create_account):
    """A compliance-only key cannot use the suppression list; a marketer key cannot erase or go global."""
    compliance = create_account("C", scopes=("compliance",))
    marketer = create_account("M", scopes=("marketer",))
    for call in (lambda h: client.get("/api/v1/suppressions", headers=h),
                 lambda h: client.post("/api/v1/suppressions", json={"email": "a@example.com", "reason": "manual"},
                                       headers=h),
                 lambda h: client.post("/api/v1/suppressions/check", json={"emails": ["a@example.com"]}, headers=h),
                 lambda h: client.delete("/api/v1/suppressions/1", headers=h)):
        _error(call(compliance.headers), 403, "forbidden")
    _error(client.post("/api/v1/erasures", json={"email": "a@example.com"}, headers=marketer.headers), 403,
           "forbidden")
    body = _error(add(client, marketer, email="a@example.com", scope="global"), 403, "forbidden")
    assert "admin" in body["message"]
    _error(client.get("/api/v1/suppressions?scope=global", headers=marketer.headers), 403, "forbidden")
    _error(client.post("/api/v1/suppressions", json={"email": "a@example.com", "reason": "manual"}), 401,
           "unauthorized")


def test_global_entries_need_admin_and_show_others_only_their_scope(client, account, admin, create_list,
                                                                   subscribe):
    """An admin writes a platform-wide entry: every account is refused the address and sees only
    'global'; only an admin sees the reason, lists it and can lift it."""
    entry = add(client, admin, email="trap@example.com", reason="complaint", scope="global").json["entries"][0]
    assert entry["scope"] == "global"
    (seen,) = check(client, account, ["trap@example.com"])
    assert (seen["suppressed"], seen["scope"], seen["reason"]) == (True, "global", None)
    assert check(client, admin, ["trap@example.com"])[0]["reason"] == "complaint"
    _error(subscribe(create_list()["id"], email="TRAP@example.com"), 409, "suppressed")
    assert client.get("/api/v1/suppressions", headers=account.headers).json["items"] == []
    assert [e["id"] for e in client.get("/api/v1/suppressions?scope=global", headers=admin.headers).json["items"]
            ] == [entry["id"]]
    _error(client.delete(f"/api/v1/suppressions/{entry['id']}", headers=account.headers), 404, "not_found")
    assert client.delete(f"/api/v1/suppressions/{entry['id']}", headers=admin.headers).status_code == 200
    assert subscribe(create_list()["id"], email="trap@example.com").status_code == 202


def test_check_accepts_a_large_body_that_other_routes_refuse(client, account):
    """The bulk routes take up to 16 MiB; any other route keeps the 1 MiB limit (413, JSON)."""
    emails = [f"someone.with.a.long.name{i:07d}@example.com" for i in range(40_000)]  # about 2 MiB
    response = client.post("/api/v1/suppressions/check", json={"emails": emails}, headers=account.headers)
    assert response.status_code == 200 and len(response.json["results"]) == 40_000
    big = {"name": "x", "sender_name": "x", "sender_email": "a@example.com", "consent_text": "x" * 2_000_000}
    _error(client.post("/api/v1/lists", json=big, headers=account.headers), 413, "payload_too_large")


def test_oversized_bulk_body_is_413(client, account):
    """Past 16 MiB even the bulk routes answer 413 with the JSON envelope."""
    blob = b'{"emails": ["' + b"a" * (17 * 1024 * 1024) + b'"]}'
    for path in ("/api/v1/suppressions/check", "/api/v1/suppressions", "/api/v1/suppressions/imports"):
        response = client.post(path, data=blob, headers={**account.headers, "Content-Type": "application/json"})
        _error(response, 413, "payload_too_large")


def test_check_refuses_more_than_100000(client, account):
    """100,001 addresses is a 422 naming the field."""
    response = client.post("/api/v1/suppressions/check", json={"emails": ["a@b.co"] * 100_001},
                           headers=account.headers)
    assert "emails" in _error(response, 422, "validation_error")["fields"]


def test_erasure_entries_cannot_be_lifted_by_the_marketer(client, account):
    """DELETE on an erasure entry is 409: only the person's own double opt-in ends it."""
    client.post("/api/v1/erasures", json={"email": "gone@example.com"}, headers=account.headers)
    (entry,) = client.get("/api/v1/suppressions?reason=erasure", headers=account.headers).json["items"]
    assert entry["email"] is None
    _error(client.delete(f"/api/v1/suppressions/{entry['id']}", headers=account.headers), 409, "not_liftable")
    assert check(client, account, ["gone@example.com"])[0]["reason"] == "erasure"


# --- every send path that exists -----------------------------------------------------------------

@pytest.mark.parametrize("entry", [
    {"email": "READER@example.com"}, {"domain": "example.com"}, {"email": "reader@example.com", "scope": "global"},
])
def test_api_signup_of_a_suppressed_address_is_409_and_sends_nothing(client, account, admin, create_list,
                                                                     subscribe, worker, maildir, entry):
    """Account, domain and platform-wide entries all make the API answer 409 suppressed; no mail, no row."""
    add(client, admin if entry.get("scope") == "global" else account, reason="unsubscribed", **entry)
    lst = create_list()
    body = _error(subscribe(lst["id"], email="Reader@Example.com"), 409, "suppressed")
    assert "reader" not in body["message"].lower()
    worker.drain()
    assert maildir() == []
    assert client.get(f"/api/v1/lists/{lst['id']}/subscriptions", headers=account.headers).json["items"] == []


def test_hosted_form_answers_a_suppressed_address_like_any_other(client, account, create_list, worker, maildir):
    """The form shows the same page as for a new address, and sends and stores nothing."""
    lst = create_list()
    add(client, account, email="blocked@example.com", reason="complaint")
    refused = form_post(client, lst["id"], "Blocked@Example.com")
    accepted = form_post(client, lst["id"], "new@example.com")
    assert refused.status_code == accepted.status_code == 200 and refused.data == accepted.data
    worker.drain()
    assert [m["To"].addresses[0].addr_spec for m in maildir()] == ["new@example.com"]
    emails = [s["email"] for s in client.get(f"/api/v1/lists/{lst['id']}/subscriptions",
                                             headers=account.headers).json["items"]]
    assert emails == ["new@example.com"]


@pytest.mark.parametrize("entry,reason", [
    ({"email": "reader@example.com"}, "unsubscribed"), ({"domain": "example.com"}, "manual"),
    ({"email": "reader@example.com", "scope": "global"}, "complaint"),
])
def test_suppression_added_after_signup_stops_the_confirmation_mail(app, client, account, admin, create_list,
                                                                    subscribe, maildir, entry, reason):
    """A confirmation queued before the entry existed is skipped when the worker gets to it."""
    lst = create_list()
    assert subscribe(lst["id"], email="Reader@Example.com").status_code == 202
    add(client, admin if entry.get("scope") == "global" else account, reason=reason, **entry)
    with worker_for(app):
        pass
    assert maildir() == []
    from flexmail.extensions import db
    from flexmail.models import OutboxMessage

    with app.app_context():
        (row,) = db.session.query(OutboxMessage).all()
        assert (row.status, row.last_error) == ("skipped", "suppressed")


def test_hosted_form_signup_is_stopped_by_a_later_unsubscribe_entry(app, client, account, create_list, maildir):
    """The person-initiated exception covers only entries made before they asked."""
    lst = create_list()
    form_post(client, lst["id"], "reader@example.com")
    add(client, account, email="reader@example.com", reason="unsubscribed")
    with worker_for(app):
        pass
    assert maildir() == []


def test_renewed_confirmation_is_not_sent_to_a_suppressed_address(app, client, account, create_list, subscribe,
                                                                  maildir):
    """Asking a fresh link for an expired one sends nothing once the address is suppressed."""
    lst = create_list()
    subscribe(lst["id"], email="reader@example.com")
    with worker_for(app):
        pass
    token = token_of(link_from(maildir()[-1], "confirm"))
    clock.freeze(clock.now() + dt.timedelta(seconds=app.config["CONFIRM_MAX_AGE"] + 5))
    add(client, account, email="reader@example.com", reason="hard_bounce")
    assert client.post(f"/confirm/{token}/renew").status_code == 200
    with worker_for(app):
        pass
    assert len(maildir()) == 1
