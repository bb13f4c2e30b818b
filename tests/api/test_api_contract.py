"""The API's contract: auth, scopes, tenant isolation, error envelope, validation."""

from __future__ import annotations

import pytest


def _error(response, status, code):
    assert response.status_code == status, response.data
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json["error"]
    assert body["code"] == code and body["message"]
    return body


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer "}, {"Authorization": "Bearer fm_not-a-key"},
    {"Authorization": "Basic Zm9vOmJhcg=="}, {"Authorization": "Bearer " + "x" * 5000},
])
def test_missing_or_wrong_key_is_401_json(client, headers):
    """No valid key: 401 with the JSON envelope and a WWW-Authenticate challenge."""
    response = client.get("/api/v1/lists", headers=headers)
    _error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_key_sees_only_its_own_account(client, account, create_account, create_list, subscribe):
    """Another tenant's list and subscription ids answer 404, and its lists are not listed."""
    mine = create_list()
    sub = subscribe(mine["id"]).json["subscription"]
    other = create_account("Globex", scopes=("marketer", "compliance"))
    _error(client.get(f"/api/v1/lists/{mine['id']}", headers=other.headers), 404, "not_found")
    _error(client.get(f"/api/v1/subscriptions/{sub['id']}", headers=other.headers), 404, "not_found")
    _error(subscribe(mine["id"], acct=other), 404, "not_found")
    _error(client.get(f"/api/v1/lists/{mine['id']}/subscriptions", headers=other.headers), 404, "not_found")
    assert client.get("/api/v1/lists", headers=other.headers).json == []
    proof = client.get("/api/v1/proof", query_string={"email": "reader@example.com"}, headers=other.headers)
    assert proof.status_code == 200 and proof.json["subscriptions"] == []


def test_scopes_are_enforced(client, create_account, account, create_list, subscribe):
    """A marketer-only key cannot read proof; a compliance-only key cannot create lists."""
    marketer = create_account("M", scopes=("marketer",))
    compliance = create_account("C", scopes=("compliance",))
    body = _error(client.get("/api/v1/proof?email=a@example.com", headers=marketer.headers), 403, "forbidden")
    assert "compliance" in body["message"]
    _error(client.post("/api/v1/lists", json={}, headers=compliance.headers), 403, "forbidden")


def test_cli_creates_key_shown_once_and_stored_hashed(app, runner):
    """`accounts create --json` prints the key once; the database holds only its hash."""
    import json

    from sqlalchemy import text

    from flexmail.extensions import db

    result = runner.invoke(args=["accounts", "create", "Initech", "--scopes", "marketer,compliance", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert set(printed) == {"account_id", "api_key"}
    with app.app_context():
        rows = db.session.execute(text("SELECT key_hash, scopes FROM api_keys")).all()
    assert all(printed["api_key"] not in r.key_hash for r in rows)
    assert app.test_client().get("/api/v1/lists", headers={"Authorization": f"Bearer {printed['api_key']}"}
                                 ).status_code == 200
    bad = runner.invoke(args=["accounts", "create", "X", "--scopes", "root"])
    assert bad.exit_code != 0 and "Scopes must be" in bad.output


def test_validation_errors_name_the_fields(client, account):
    """Missing and unknown fields are 422 with per-field messages."""
    body = _error(client.post("/api/v1/lists", json={"name": "x", "colour": "red"}, headers=account.headers),
                  422, "validation_error")
    assert {"sender_name", "sender_email", "consent_text", "colour"} <= set(body["fields"])


@pytest.mark.parametrize("field,value", [
    ("sender_name", "Acme\r\nBcc: victim@example.com"),
    ("name", "News\nX-Injected: 1"),
    ("sender_email", "news@example.com\r\nBcc: victim@example.com"),
    ("sender_email", "not-an-address"),
])
def test_header_injection_and_bad_sender_are_refused(client, account, field, value):
    """CR/LF in anything that reaches a mail header is refused with 422 and creates nothing."""
    body = {"name": "N", "sender_name": "S", "sender_email": "s@example.com", "consent_text": "C"}
    body[field] = value
    error = _error(client.post("/api/v1/lists", json=body, headers=account.headers), 422, "validation_error")
    assert field in error["fields"]
    assert value not in str(error)
    assert client.get("/api/v1/lists", headers=account.headers).json == []


@pytest.mark.parametrize("email", [
    "no-at-sign", "a@b@c.com", "a@example.com\r\nBcc: x@example.com", "x" * 300 + "@example.com",
    "me@localhost", "\"quoted\"@example.com", "a@[127.0.0.1]", "", 42,
])
def test_malformed_addresses_are_422_and_change_nothing(client, account, create_list, subscribe, worker, maildir,
                                                         email):
    """Every malformed address gets a 422 naming the email field, never echoing it, and queues nothing."""
    lst = create_list()
    response = subscribe(lst["id"], email=email)
    error = _error(response, 422, "validation_error")
    assert "email" in error["fields"]
    if isinstance(email, str) and len(email) > 3:
        assert email not in response.get_data(as_text=True)
    worker.drain()
    assert maildir() == []
    assert client.get(f"/api/v1/lists/{lst['id']}/subscriptions", headers=account.headers).json["items"] == []


@pytest.mark.parametrize("ip", ["999.1.1.1", "localhost", "1.2.3.4\r\n", "::g"])
def test_bad_subscriber_ip_is_422(client, account, create_list, subscribe, ip):
    """The proof IP must be an IP address."""
    lst = create_list()
    assert "ip" in _error(subscribe(lst["id"], ip=ip), 422, "validation_error")["fields"]


def test_oversized_body_is_413_json(client, account):
    """Bodies over MAX_CONTENT_LENGTH are refused with 413 in the envelope."""
    big = {"name": "x", "sender_name": "y", "sender_email": "a@example.com", "consent_text": "z" * (1024 * 1024 + 10)}
    _error(client.post("/api/v1/lists", json=big, headers=account.headers), 413, "payload_too_large")


def test_malformed_json_is_400_or_422_json(client, account):
    """A body that is not JSON gets the JSON envelope, not an HTML page."""
    response = client.post("/api/v1/lists", data="{not json", headers={**account.headers,
                                                                        "Content-Type": "application/json"})
    assert response.status_code in (400, 422)
    assert response.json["error"]["code"] in ("bad_request", "validation_error")


def test_unknown_route_and_method_are_json(client, account):
    """404 and 405 on the API are JSON; 405 keeps its Allow header."""
    _error(client.get("/api/v1/nothing", headers=account.headers), 404, "not_found")
    response = client.delete("/api/v1/lists", headers=account.headers)
    _error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_unexpected_errors_are_500_json_without_trace(app, client, account, monkeypatch):
    """An internal error answers the envelope, with no stack trace in the body."""
    from flexmail.services.marketer import lists

    def boom(*a, **k):
        raise RuntimeError("secret internals reader@example.com")

    monkeypatch.setattr(lists, "list_lists", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/api/v1/lists", headers=account.headers)
    body = _error(response, 500, "internal_error")
    assert "Traceback" not in response.get_data(as_text=True) and "secret" not in body["message"]


def test_subscription_listing_is_cursor_paginated_and_filtered(client, account, create_list, subscribe):
    """Pages follow next_cursor without gaps or repeats; status filters."""
    lst = create_list()
    for i in range(5):
        assert subscribe(lst["id"], email=f"r{i}@example.com").status_code == 202
    seen, cursor = [], None
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"/api/v1/lists/{lst['id']}/subscriptions", query_string=query, headers=account.headers).json
        seen += [s["email"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"r{i}@example.com" for i in range(5)]
    subscribed = client.get(f"/api/v1/lists/{lst['id']}/subscriptions?status=subscribed", headers=account.headers)
    assert subscribed.json["items"] == []
    _error(client.get(f"/api/v1/lists/{lst['id']}/subscriptions?status=bogus", headers=account.headers),
           422, "validation_error")


def test_openapi_describes_the_contract(client):
    """/api/openapi.json lists the v1 paths with bearer security."""
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    for path in ("/api/v1/lists", "/api/v1/lists/{list_id}/subscriptions", "/api/v1/subscriptions/{subscription_id}",
                 "/api/v1/proof"):
        assert path in spec["paths"], path
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert client.get("/api/docs").status_code == 200
