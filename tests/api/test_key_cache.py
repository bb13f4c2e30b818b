"""The API key lookup is cached per process for API_KEY_CACHE_SECONDS; revocation is seen at
once in the process that forgets the key and within those seconds everywhere else."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from flexmail import clock
from flexmail.extensions import db
from flexmail.models import ApiKey
from flexmail.services.marketer import accounts
from tests.perf.statements import count_statements


def _revoke_in_database(app, account_id):
    """Revoke as another process would: straight in the database, no cache call here."""
    with app.app_context():
        db.session.execute(update(ApiKey).where(ApiKey.account_id == account_id).values(revoked_at=clock.now()))
        db.session.commit()


def test_a_known_key_is_looked_up_once(app, client, account):
    """The second request with the same key sends no api_keys query."""
    assert client.get("/api/v1/lists", headers=account.headers).status_code == 200
    with count_statements(app) as seen:
        assert client.get("/api/v1/lists", headers=account.headers).status_code == 200
    assert not any("api_keys" in s for s in seen)


def test_revocation_is_seen_within_the_cache_lifetime(app, client, account):
    """A key revoked by another process keeps working here for at most API_KEY_CACHE_SECONDS."""
    assert client.get("/api/v1/lists", headers=account.headers).status_code == 200
    _revoke_in_database(app, account.id)
    assert client.get("/api/v1/lists", headers=account.headers).status_code == 200  # still cached
    clock.freeze(clock.now() + dt.timedelta(seconds=app.config["API_KEY_CACHE_SECONDS"] + 1))
    assert client.get("/api/v1/lists", headers=account.headers).status_code == 401


def test_forgetting_a_key_takes_effect_at_once(app, client, account):
    """``forget_cached_keys`` (what a revoke in this process calls) drops the cached key now."""
    assert client.get("/api/v1/lists", headers=account.headers).status_code == 200
    _revoke_in_database(app, account.id)
    accounts.forget_cached_keys(account_id=account.id)
    assert client.get("/api/v1/lists", headers=account.headers).status_code == 401


def test_cache_off(make_app, app_config):
    """With API_KEY_CACHE_SECONDS=0 every request looks the key up: a revoke is seen at once."""
    app = make_app({**app_config, "API_KEY_CACHE_SECONDS": 0})
    with app.app_context():
        account_id, key = accounts.create_account("A", scopes=["marketer"])
    client, headers = app.test_client(), {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/lists", headers=headers).status_code == 200
    _revoke_in_database(app, account_id)
    assert client.get("/api/v1/lists", headers=headers).status_code == 401


def test_unknown_keys_are_not_cached(app, client, account):
    """A wrong key is refused each time and leaves nothing in the cache."""
    before = len(accounts._key_cache._entries)
    for i in range(3):
        assert client.get("/api/v1/lists", headers={"Authorization": f"Bearer fm_wrong{i}"}).status_code == 401
    assert len(accounts._key_cache._entries) == before
