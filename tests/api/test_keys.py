"""API keys: create, list, rotate, revoke through the API (admin) and the operator's CLI."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def admin(create_account):
    return create_account("Keys Inc", scopes=("marketer", "admin"))


def _bearer(key):
    return {"Authorization": f"Bearer {key}"}


def test_admin_creates_lists_and_uses_a_key_shown_once(client, admin):
    """POST /keys answers the secret once; GET lists the key by prefix, never the secret."""
    created = client.post("/api/v1/keys", json={"name": "shop backend", "scopes": ["marketer"]}, headers=admin.headers)
    assert created.status_code == 201, created.json
    secret = created.json["secret"]
    assert secret.startswith("fm_") and created.json["scopes"] == ["marketer"] and created.json["active"]
    listed = client.get("/api/v1/keys", headers=admin.headers).json
    assert [k["name"] for k in listed] == [None, "shop backend"]
    assert all("secret" not in k for k in listed) and secret not in json.dumps(listed)
    assert client.get("/api/v1/lists", headers=_bearer(secret)).status_code == 200
    assert client.post("/api/v1/keys", json={"scopes": ["root"]}, headers=admin.headers).status_code == 422


def test_revoked_key_stops_working_at_once(client, admin):
    """After DELETE /keys/<id>, the very next request with that key is 401, in every process
    that reads the database (no cache outlives a revocation)."""
    created = client.post("/api/v1/keys", json={"scopes": ["marketer"]}, headers=admin.headers).json
    key = _bearer(created["secret"])
    assert client.get("/api/v1/lists", headers=key).status_code == 200
    revoked = client.delete(f"/api/v1/keys/{created['id']}", headers=admin.headers)
    assert revoked.status_code == 200 and revoked.json["active"] is False and revoked.json["revoked_at"]
    assert client.get("/api/v1/lists", headers=key).status_code == 401
    again = client.delete(f"/api/v1/keys/{created['id']}", headers=admin.headers)
    assert again.status_code == 200 and again.json["revoked_at"] == revoked.json["revoked_at"]
    assert [k["id"] for k in client.get("/api/v1/keys", headers=admin.headers).json] == [1]
    assert created["id"] in [k["id"] for k in client.get("/api/v1/keys?include_revoked=true",
                                                         headers=admin.headers).json]


def test_rotation_replaces_the_key_with_an_optional_grace_period(app, client, admin):
    """Rotating answers a new key with the same name and scopes; the old one stops at once, or
    after grace_seconds."""
    from flexmail import clock

    first = client.post("/api/v1/keys", json={"name": "cron", "scopes": ["compliance"]}, headers=admin.headers).json
    rotated = client.post(f"/api/v1/keys/{first['id']}/rotate", json={}, headers=admin.headers)
    assert rotated.status_code == 201
    assert rotated.json["name"] == "cron" and rotated.json["scopes"] == ["compliance"]
    assert rotated.json["rotated_from_id"] == first["id"]
    assert client.get("/api/v1/proof/head", headers=_bearer(first["secret"])).status_code == 401
    second = rotated.json
    assert client.get("/api/v1/proof/head", headers=_bearer(second["secret"])).status_code == 200

    graced = client.post(f"/api/v1/keys/{second['id']}/rotate", json={"grace_seconds": 3600},
                         headers=admin.headers).json
    assert client.get("/api/v1/proof/head", headers=_bearer(second["secret"])).status_code == 200
    assert client.get("/api/v1/proof/head", headers=_bearer(graced["secret"])).status_code == 200
    clock.freeze(clock.now() + __import__("datetime").timedelta(seconds=3601))
    assert client.get("/api/v1/proof/head", headers=_bearer(second["secret"])).status_code == 401
    assert client.get("/api/v1/proof/head", headers=_bearer(graced["secret"])).status_code == 200
    assert client.post(f"/api/v1/keys/{first['id']}/rotate", json={}, headers=admin.headers).status_code == 404


def test_keys_need_admin_and_stay_in_their_account(client, admin, account, create_account):
    """Without admin: 403. Another account's key ids: 404. The last admin key cannot revoke
    itself through the API (409)."""
    assert client.get("/api/v1/keys", headers=account.headers).status_code == 403
    other = create_account("Other", scopes=("admin",))
    other_keys = client.get("/api/v1/keys", headers=other.headers).json
    assert client.get(f"/api/v1/keys/{other_keys[0]['id']}", headers=admin.headers).status_code == 404
    assert client.delete(f"/api/v1/keys/{other_keys[0]['id']}", headers=admin.headers).status_code == 404
    own = client.get("/api/v1/keys", headers=admin.headers).json[0]
    last = client.delete(f"/api/v1/keys/{own['id']}", headers=admin.headers)
    assert last.status_code == 409 and last.json["error"]["code"] == "last_admin_key"


def test_last_used_is_recorded(app, client, admin):
    """A key's use sets last_used_at (written at most once a minute per key and process)."""
    created = client.post("/api/v1/keys", json={"scopes": ["marketer"]}, headers=admin.headers).json
    assert created["last_used_at"] is None
    client.get("/api/v1/lists", headers=_bearer(created["secret"]))
    seen = client.get(f"/api/v1/keys/{created['id']}", headers=admin.headers).json
    assert seen["last_used_at"] is not None


def test_operator_cli_manages_any_account(app, runner, admin, account):
    """`accounts keys create|list|rotate|revoke --account N` works on any account; the secret
    is printed once and a revoked key is refused at once."""
    client = app.test_client()
    out = runner.invoke(args=["accounts", "keys", "create", "--account", str(account.id), "--scopes",
                              "marketer,compliance", "--name", "ops"])
    assert out.exit_code == 0, out.output
    made = json.loads(out.output)
    assert client.get("/api/v1/lists", headers=_bearer(made["api_key"])).status_code == 200
    listed = runner.invoke(args=["accounts", "keys", "list", "--account", str(account.id)])
    assert made["api_key"] not in listed.output and '"name": "ops"' in listed.output
    rotated = json.loads(runner.invoke(args=["accounts", "keys", "rotate", str(made["id"]), "--account",
                                             str(account.id)]).output)
    assert client.get("/api/v1/lists", headers=_bearer(made["api_key"])).status_code == 401
    revoke = runner.invoke(args=["accounts", "keys", "revoke", str(rotated["id"]), "--account", str(account.id)])
    assert revoke.exit_code == 0
    assert client.get("/api/v1/lists", headers=_bearer(rotated["api_key"])).status_code == 401
    wrong = runner.invoke(args=["accounts", "keys", "revoke", str(rotated["id"]), "--account", str(admin.id)])
    assert wrong.exit_code != 0 and "No such API key" in wrong.output
