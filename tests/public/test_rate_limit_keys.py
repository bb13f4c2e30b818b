"""The rate limiter's storage (Redis) never holds a client IP in clear: its keys carry a keyed hash."""

from __future__ import annotations

import pytest
import redis

from tests.conftest import REDIS_URL, need_service

CLIENT_IP = "203.0.113.199"


@pytest.fixture
def create_list_for():
    """``create_list_for(app)``: an account and a list in ``app``; returns the list id."""

    def make(app):
        from flexmail.services.marketer import accounts, lists

        with app.app_context():
            account_id, _ = accounts.create_account("A", scopes=["marketer"])
            return lists.create_list(account_id, name="L", sender_name="S", sender_email="s@example.com",
                                     consent_text="C").id

    return make


def test_rate_limit_keys_in_redis_hold_no_client_ip(make_app, app_config, create_list_for):
    """After hosted-form posts from one IP, Redis has limiter keys for it, none with the IP in them."""
    need_service("Redis", "127.0.0.1", 6379)
    app = make_app({**app_config, "RATELIMIT_STORAGE_URL": REDIS_URL, "WTF_CSRF_ENABLED": False})
    list_id = create_list_for(app)
    client = app.test_client()
    for _ in range(3):
        response = client.post(f"/subscribe/{list_id}", data={"email": "reader@example.com"},
                               environ_base={"REMOTE_ADDR": CLIENT_IP})
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Remaining"]  # the limit was counted
    from flexmail.guards import hashed_remote_address

    with app.test_request_context(environ_base={"REMOTE_ADDR": CLIENT_IP}):
        digest = hashed_remote_address()
    with app.test_request_context(environ_base={"REMOTE_ADDR": "203.0.113.200"}):
        assert hashed_remote_address() != digest  # each client keeps its own counter
    store = redis.Redis.from_url(REDIS_URL)
    try:
        ours = [k.decode() for k in store.scan_iter(f"*{digest}*")]
        in_clear = [k.decode() for k in store.scan_iter(f"*{CLIENT_IP}*")]
        values = [store.get(k) for k in ours if store.type(k) == b"string"]
    finally:
        store.close()
    assert ours, "the limiter stored nothing under the client's hashed key"
    assert in_clear == []
    assert all(CLIENT_IP.encode() not in v for v in values if v)


def test_the_rate_limit_still_applies_per_client(make_app, app_config, create_list_for):
    """Hashing the key keeps the limit per client: one IP is limited, another is not."""
    app = make_app({**app_config, "FORM_RATE_LIMIT": "2 per minute", "WTF_CSRF_ENABLED": False})
    list_id = create_list_for(app)
    client = app.test_client()

    def post(ip):
        return client.post(f"/subscribe/{list_id}", data={"email": "reader@example.com"},
                           environ_base={"REMOTE_ADDR": ip}).status_code

    assert [post(CLIENT_IP) for _ in range(3)] == [200, 200, 429]
    assert post("198.51.100.1") == 200
