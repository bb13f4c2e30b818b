"""Per-key rate limits with RateLimit-* (IETF draft) and Retry-After headers."""

from __future__ import annotations

import pytest


@pytest.fixture
def app_config(app_config):
    return {**app_config, "API_RATE_LIMIT": "3 per minute;100 per hour"}


def test_each_answer_announces_the_limit_and_the_fourth_is_429(client, account, create_account):
    """Answers carry RateLimit-Limit/Remaining/Reset of the tightest limit; past it, 429 with
    Retry-After and the envelope; another key has its own budget."""
    seen = [client.get("/api/v1/lists", headers=account.headers) for _ in range(3)]
    assert [r.status_code for r in seen] == [200, 200, 200]
    assert [r.headers["RateLimit-Remaining"] for r in seen] == ["2", "1", "0"]
    assert all(r.headers["RateLimit-Limit"] == "3" and 0 < int(r.headers["RateLimit-Reset"]) <= 60 for r in seen)
    over = client.get("/api/v1/lists", headers=account.headers)
    assert over.status_code == 429 and over.json["error"]["code"] == "rate_limited"
    assert 0 < int(over.headers["Retry-After"]) <= 60 and over.headers["RateLimit-Remaining"] == "0"
    other = create_account("Other", scopes=("marketer",))
    assert client.get("/api/v1/lists", headers=other.headers).status_code == 200


def test_errors_count_and_carry_headers_but_bad_keys_do_not(client, account):
    """A 404 counts and carries the headers; a request with an unknown key is 401 without them."""
    missing = client.get("/api/v1/lists/999", headers=account.headers)
    assert missing.status_code == 404 and missing.headers["RateLimit-Remaining"] == "2"
    bad = client.get("/api/v1/lists", headers={"Authorization": "Bearer fm_nope"})
    assert bad.status_code == 401 and "RateLimit-Limit" not in bad.headers


@pytest.mark.redis
def test_limits_live_in_redis_in_production(app, client, account):
    """With the Redis storage (the PostgreSQL backend of the suite uses it), the counter is
    shared by processes: it is found in Redis under the key's id, never the key."""
    from tests.conftest import BACKEND

    if BACKEND != "postgres":
        pytest.skip("the SQLite backend of the suite uses the in-memory storage")
    import redis

    client.get("/api/v1/lists", headers=account.headers)
    store = redis.Redis.from_url(app.config["RATELIMIT_STORAGE_URL"])
    names = [k.decode() for k in store.scan_iter(match="*api-key*")]
    assert names and all(account.key not in n for n in names)
    assert any(app.config["RATELIMIT_KEY_PREFIX"] in n for n in names)
