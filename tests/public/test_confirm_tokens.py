"""Bad confirmation links get a clear page and change nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from flexmail import clock
from flexmail.domain.tokens import Purpose, Signer
from tests.conftest import SECRET
from tests.helpers import link_from, token_of


@pytest.fixture
def pending(client, account, create_list, subscribe, worker, maildir):
    lst = create_list()
    sub = subscribe(lst["id"]).json["subscription"]
    worker.drain()
    return sub, maildir()[-1]


def _status(client, account, sub_id):
    return client.get(f"/api/v1/subscriptions/{sub_id}", headers=account.headers).json["status"]


@pytest.mark.parametrize("method", ["get", "post"])
def test_tampered_token_gets_404_page_and_changes_nothing(client, account, pending, method):
    """A changed signature answers a friendly 404 page, on GET and POST, and confirms nothing."""
    sub, mail = pending
    token = token_of(link_from(mail, "confirm"))
    bad = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = getattr(client, method)(f"/confirm/{bad}")
    assert response.status_code == 404
    assert b"This link is not valid" in response.data
    assert response.headers["Content-Type"].startswith("text/html")
    assert _status(client, account, sub["id"]) == "pending"


def test_wrong_purpose_token_is_refused(client, account, pending):
    """The "not me" token of the same mail cannot confirm."""
    sub, mail = pending
    cancel_token = token_of(link_from(mail, "not-me"))
    assert client.post(f"/confirm/{cancel_token}").status_code == 404
    confirm_token = token_of(link_from(mail, "confirm"))
    assert client.post(f"/not-me/{confirm_token}").status_code == 404
    assert _status(client, account, sub["id"]) == "pending"


def test_expired_token_gets_410_and_offers_a_fresh_link(app, client, account, pending, worker, maildir):
    """After FLEXMAIL_CONFIRM_MAX_AGE the link answers 410, confirms nothing, and can ask for a new mail."""
    sub, mail = pending
    token = token_of(link_from(mail, "confirm"))
    clock.freeze(clock.now() + dt.timedelta(seconds=app.config["CONFIRM_MAX_AGE"] + 5))
    old = token
    response = client.post(f"/confirm/{old}", data={"method": "button"})
    assert response.status_code == 410
    assert b"expired" in response.data and b"Send me a new link" in response.data
    assert client.get(f"/confirm/{old}").status_code == 410
    assert _status(client, account, sub["id"]) == "pending"
    renewed = client.post(f"/confirm/{old}/renew")
    assert renewed.status_code == 200
    worker.drain()
    assert len(maildir()) == 2
    fresh = token_of(link_from(maildir()[-1], "confirm"))
    assert client.post(f"/confirm/{fresh}", data={"method": "button"}).status_code == 200
    assert _status(client, account, sub["id"]) == "subscribed"


def test_renewal_answers_the_same_for_garbage(client):
    """Asking a new link with an invalid token answers like any other renewal, sending nothing."""
    assert client.post("/confirm/garbage/renew").status_code == 200


def test_rotated_key_still_verifies_links_already_sent(make_app, app_config, tmp_path, account, pending):
    """After rotating FLEXMAIL_SECRET_KEYS to "new,old", links mailed before still confirm."""
    sub, mail = pending
    token = token_of(link_from(mail, "confirm"))
    rotated = make_app({**app_config, "SECRET_KEYS": ["brand-new-key", SECRET]})
    client = rotated.test_client()
    assert client.post(f"/confirm/{token}", data={"method": "button"}).status_code == 200
    assert client.get(f"/api/v1/subscriptions/{sub['id']}", headers=account.headers).json["status"] == "subscribed"


def test_dropped_key_no_longer_verifies(make_app, app_config, account, pending):
    """Once the old key is removed from the list, its links are invalid."""
    sub, mail = pending
    token = token_of(link_from(mail, "confirm"))
    rotated = make_app({**app_config, "SECRET_KEYS": ["brand-new-key"]})
    assert rotated.test_client().post(f"/confirm/{token}").status_code == 404


def test_token_for_another_subscriptions_mail_is_invalid(app, client, account, create_list, subscribe, worker,
                                                         maildir):
    """A validly signed token pairing one subscription with another's mail is refused."""
    lst = create_list()
    a = subscribe(lst["id"], email="a@example.com").json["subscription"]
    subscribe(lst["id"], email="b@example.com")
    worker.drain()
    forged = Signer(tuple(app.config["SECRET_KEYS"])).dumps(Purpose.CONFIRM, [a["id"], 2])
    assert client.post(f"/confirm/{forged}").status_code == 404
    assert _status(client, account, a["id"]) == "pending"


@pytest.mark.parametrize("path", ["/confirm/{t}/", "/not-me/{t}/"])
def test_token_urls_never_redirect(client, pending, path):
    """No public token URL answers 3xx (Werkzeug's trailing-slash redirect, standards K2)."""
    _, mail = pending
    token = token_of(link_from(mail, "confirm"))
    for method in ("get", "post", "head"):
        response = getattr(client, method)(path.format(t=token))
        assert response.status_code < 300 or response.status_code >= 400
        assert "Location" not in response.headers
