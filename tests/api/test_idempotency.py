"""Idempotency-Key: a retried POST or DELETE does its work once, also when retries race."""

from __future__ import annotations

import datetime as dt
import threading

import httpx
import pytest

LIST = {"name": "News", "sender_name": "Acme", "sender_email": "news@acme.example", "consent_text": "Yes."}


def _lists(client, account):
    return client.get("/api/v1/lists", headers=account.headers).json


def test_sequential_retry_replays_the_first_answer(client, account):
    """The same key and body answer the first response (status, body, Location-like headers)
    marked Idempotent-Replayed, and create one list."""
    headers = {**account.headers, "Idempotency-Key": "create-news-1"}
    first = client.post("/api/v1/lists", json=LIST, headers=headers)
    again = client.post("/api/v1/lists", json=LIST, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Content-Type"] == first.headers["Content-Type"]
    assert "Idempotent-Replayed" not in first.headers and again.headers["Idempotent-Replayed"] == "true"
    assert len(_lists(client, account)) == 1
    client.post("/api/v1/lists", json=LIST, headers=account.headers)  # no key: a new list
    assert len(_lists(client, account)) == 2


def test_same_key_with_another_body_is_422_and_changes_nothing(client, account):
    """Reusing a key for a different body (or path) is 422 idempotency_key_reused."""
    headers = {**account.headers, "Idempotency-Key": "k-1"}
    assert client.post("/api/v1/lists", json=LIST, headers=headers).status_code == 201
    other = client.post("/api/v1/lists", json={**LIST, "name": "Other"}, headers=headers)
    assert other.status_code == 422 and other.json["error"]["code"] == "idempotency_key_reused"
    elsewhere = client.post("/api/v1/campaigns", json=LIST, headers=headers)
    assert elsewhere.status_code == 422 and elsewhere.json["error"]["code"] == "idempotency_key_reused"
    assert [x["name"] for x in _lists(client, account)] == ["News"]
    bad = client.post("/api/v1/lists", json=LIST, headers={**account.headers, "Idempotency-Key": "has space"})
    assert bad.status_code == 422 and "Idempotency-Key" in bad.json["error"]["fields"]


def test_keys_are_per_account_and_errors_replay_too(client, account, create_account, create_list, subscribe):
    """Another account's identical key is independent; a stored 409 is replayed, and a DELETE
    retried with its key answers the first result."""
    other = create_account("Other", scopes=("marketer",))
    for acct in (account, other):
        assert client.post("/api/v1/lists", json=LIST, headers={**acct.headers, "Idempotency-Key": "same"}
                           ).status_code == 201
    assert len(_lists(client, other)) == 1
    lst = create_list()
    sub = subscribe(lst["id"]).json["subscription"]
    delete = {**account.headers, "Idempotency-Key": "unsub-1"}
    first = client.delete(f"/api/v1/subscriptions/{sub['id']}", headers=delete)
    again = client.delete(f"/api/v1/subscriptions/{sub['id']}", headers=delete)
    assert first.status_code == again.status_code == 200 and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_failed_attempt_releases_the_key(app, client, account, create_list, subscribe):
    """A 429 (nothing done) is not stored: the retry with the same key runs again."""
    lst = create_list()
    app.config["CONFIRM_PER_ACCOUNT_PER_HOUR"] = 1
    assert subscribe(lst["id"], email="first@example.com").status_code == 202
    headers = {**account.headers, "Idempotency-Key": "signup-1"}
    body = {"email": "r@example.com", "ip": "203.0.113.9"}
    assert client.post(f"/api/v1/lists/{lst['id']}/subscriptions", json=body, headers=headers).status_code == 429
    app.config["CONFIRM_PER_ACCOUNT_PER_HOUR"] = 1000
    retry = client.post(f"/api/v1/lists/{lst['id']}/subscriptions", json=body, headers=headers)
    assert retry.status_code == 202 and "Idempotent-Replayed" not in retry.headers


def test_concurrent_retries_over_http_create_one_resource(app, live_server, account):
    """Eight threads send the same POST with the same key at once over real HTTP: one list is
    created; every answer is that list (replayed) or 409 idempotency_in_progress."""
    barrier = threading.Barrier(8)
    answers = []

    def send():
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            barrier.wait()
            answers.append(http.post("/api/v1/lists", json=LIST,
                                     headers={**account.headers, "Idempotency-Key": "race-1"}))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert len(answers) == 8
    created = [a for a in answers if a.status_code == 201]
    assert created and {a.json()["id"] for a in created} == {created[0].json()["id"]}
    assert all(a.status_code == 201 or (a.status_code == 409 and a.json()["error"]["code"]
                                        == "idempotency_in_progress") for a in answers)
    assert sum("Idempotent-Replayed" not in a.headers for a in created) == 1
    listed = httpx.get(f"{live_server.url}/api/v1/lists", headers=account.headers).json()
    assert len(listed) == 1


def test_concurrent_without_key_would_create_many(app, live_server, account):
    """Control for the test above: the same race without a key creates one list per request."""
    barrier = threading.Barrier(4)

    def send():
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            barrier.wait()
            http.post("/api/v1/lists", json=LIST, headers=account.headers)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert len(httpx.get(f"{live_server.url}/api/v1/lists", headers=account.headers).json()) == 4


@pytest.mark.parametrize("hours", [23, 25])
def test_keys_live_24_hours_and_retention_purges_them(app, client, account, hours):
    """Within 24 h the key replays; retention deletes keys older than 24 h, after which the
    key is free again."""
    from flexmail import clock
    from flexmail.services.evidence import retention

    headers = {**account.headers, "Idempotency-Key": "daily"}
    start = clock.now()
    clock.freeze(start)
    first = client.post("/api/v1/lists", json=LIST, headers=headers).json
    clock.freeze(start + dt.timedelta(hours=hours))
    with app.app_context():
        counts = retention.run_retention()
    assert counts["idempotency_keys_deleted"] == (1 if hours > 24 else 0)
    again = client.post("/api/v1/lists", json=LIST, headers=headers)
    assert (again.json["id"] == first["id"]) is (hours < 24)


def test_erasure_removes_stored_answers_that_name_the_person(app, client, account, create_list):
    """A stored subscribe answer holds the address: erasing the person deletes it, so no
    replay (and no row) keeps the address for the rest of the 24 h."""
    from sqlalchemy import select

    from flexmail.extensions import db
    from flexmail.models import IdempotencyRecord

    lst = create_list()
    headers = {**account.headers, "Idempotency-Key": "signup-erase"}
    body = {"email": "Erase.Me@example.com", "ip": "203.0.113.9"}
    assert client.post(f"/api/v1/lists/{lst['id']}/subscriptions", json=body, headers=headers).status_code == 202
    client.post("/api/v1/lists", json=LIST, headers={**account.headers, "Idempotency-Key": "unrelated"})
    assert client.post("/api/v1/erasures", json={"email": "erase.me@example.com"},
                       headers=account.headers).status_code == 200
    with app.app_context():
        rows = db.session.execute(select(IdempotencyRecord.key, IdempotencyRecord.response_body)).all()
    assert [r.key for r in rows] == ["unrelated"]
    assert all(b"erase.me" not in (r.response_body or b"").lower() for r in rows)
    again = client.post(f"/api/v1/lists/{lst['id']}/subscriptions", json=body, headers=headers)
    assert again.status_code == 409 and again.json["error"]["code"] == "suppressed"


def test_a_database_failure_between_the_work_and_its_answer_does_the_signup_once(app, client, account, create_list,
                                                                                 monkeypatch):
    """Found by the soak (bench/soak.py): PostgreSQL crashed after a signup's work committed but
    before its answer was stored, so the key stayed in progress; the retry that took it over
    after its lease did the signup again (a second round, a second confirmation mail). The
    work and the answer now commit together: here storing the answer (and freeing the key)
    fails as with the database gone, the client gets 503, and the retry after the lease does
    the signup once."""
    from sqlalchemy import func, select
    from sqlalchemy.exc import OperationalError

    from flexmail import clock
    from flexmail.extensions import db
    from flexmail.models import ConsentEvent, OutboxMessage
    from flexmail.services.marketer import idempotency

    def database_gone(*args, **kwargs):
        raise OperationalError("UPDATE idempotency_keys ...", {}, Exception("server closed the connection"))

    lst = create_list()
    headers = {**account.headers, "Idempotency-Key": "signup-crash"}
    body = {"email": "crash@example.com", "ip": "203.0.113.9"}
    start = clock.now()
    clock.freeze(start)
    monkeypatch.setattr(idempotency, "complete", database_gone)
    monkeypatch.setattr(idempotency, "_delete", database_gone)
    first = client.post(f"/api/v1/lists/{lst['id']}/subscriptions", json=body, headers=headers)
    assert first.status_code == 503 and first.headers["Retry-After"]
    monkeypatch.undo()
    clock.freeze(start + idempotency.LEASE + dt.timedelta(seconds=1))
    retry = client.post(f"/api/v1/lists/{lst['id']}/subscriptions", json=body, headers=headers)
    assert retry.status_code == 202, retry.json
    with app.app_context():
        requested = db.session.scalar(select(func.count()).select_from(ConsentEvent)
                                      .where(ConsentEvent.type == "subscribe_requested"))
        mails = db.session.scalar(select(func.count()).select_from(OutboxMessage))
    assert (requested, mails) == (1, 1)
    assert client.post(f"/api/v1/lists/{lst['id']}/subscriptions", json=body,
                       headers=headers).headers["Idempotent-Replayed"] == "true"
