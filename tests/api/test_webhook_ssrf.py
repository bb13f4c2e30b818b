"""Webhook endpoints may not point into our own network (SSRF): refused at registration and
checked again at every delivery, so a name that later resolves to loopback gets nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from flexmail.domain.webhook_urls import RefusedUrl, check_addresses, is_global, parse_url
from tests.webhook_support import receiver

EVENTS = ["subscription.requested"]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data",
    "http://[::1]:8080/hook", "http://localhost:8080/hook", "http://192.168.0.10/hook", "http://0.0.0.0/hook",
    "http://100.64.0.1/hook", "http://[fe80::1]/hook",
])
def test_non_global_addresses_are_refused(client, account, url):
    """Loopback, private, link-local, shared and unspecified addresses (literal or a name that
    resolves to one, like localhost) are 422 and register nothing."""
    answer = client.post("/api/v1/webhooks", json={"url": url, "events": EVENTS}, headers=account.headers)
    assert answer.status_code == 422, url
    assert answer.json["error"]["code"] == "validation_error"
    assert "non-global" in answer.json["error"]["fields"]["url"][0]
    assert client.get("/api/v1/webhooks", headers=account.headers).json == []


def test_a_name_that_does_not_resolve_is_refused(client, account):
    """A host without an address cannot be checked, so it is refused too."""
    answer = client.post("/api/v1/webhooks", json={"url": "https://no-such-host.invalid/hook", "events": EVENTS},
                         headers=account.headers)
    assert answer.status_code == 422 and "does not resolve" in answer.json["error"]["fields"]["url"][0]


def test_checked_again_at_delivery_time(app, client, account, create_list, subscribe, worker):
    """An endpoint registered while private addresses were allowed gets no request once they
    are not: the attempt fails with the reason logged and the receiver sees nothing."""
    from flexmail.extensions import db
    from flexmail.models import WebhookDelivery

    lst = create_list()
    with receiver() as rx:
        app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
        hook = client.post("/api/v1/webhooks", json={"url": rx.url.replace("127.0.0.1", "localhost"),
                                                     "events": EVENTS}, headers=account.headers)
        assert hook.status_code == 201
        app.config["WEBHOOKS_ALLOW_PRIVATE"] = False  # as if the name now resolved to loopback
        subscribe(lst["id"])
        worker.drain()
        assert rx.requests == []
    with app.app_context():
        (row,) = db.session.scalars(select(WebhookDelivery)).all()
        assert row.status == "pending" and row.attempts == 1 and row.last_error.startswith("refused")


def test_address_rule():
    """The rule itself: global unicast passes; IPv4 inside IPv6 is judged as IPv4; schemes,
    user info and empty resolutions are refused unless the operator allows private ones."""
    assert is_global("93.184.216.34") and is_global("2606:2800:220:1:248:1893:25c8:1946")
    for address in ("127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "::1", "fe80::1",
                    "fc00::1", "::ffff:10.0.0.1", "2002:7f00:0001::1", "224.0.0.1", "0.0.0.0", "not-an-ip"):
        assert not is_global(address), address
    with pytest.raises(RefusedUrl):
        check_addresses(["93.184.216.34", "127.0.0.1"], allow_private=False)
    check_addresses(["127.0.0.1"], allow_private=True)
    with pytest.raises(RefusedUrl):
        check_addresses([], allow_private=True)
    assert parse_url("https://hooks.example:8443/x?y=1") == ("https", "hooks.example", 8443)
    for url in ("ftp://a.example/", "http://u:p@a.example/", "http:///x", "http://a.example:99999/"):
        with pytest.raises(RefusedUrl):
            parse_url(url)
