"""The hosted signup form: CSRF, honeypot, per-IP limit, proxies, and answers that reveal nobody."""

from __future__ import annotations

import re

import pytest


def _csrf(client, list_id):
    page = client.get(f"/subscribe/{list_id}")
    assert page.status_code == 200
    return re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()


def _post(client, list_id, email, **extra):
    data = {"csrf_token": _csrf(client, list_id), "email": email, "website": ""} | extra
    return client.post(f"/subscribe/{list_id}", data=data, headers={"User-Agent": "Browser/1.0"},
                       environ_base={"REMOTE_ADDR": extra.pop("remote_addr", "192.0.2.44")})


def _subs(client, account, list_id):
    return client.get(f"/api/v1/lists/{list_id}/subscriptions", headers=account.headers).json["items"]


def test_form_creates_pending_subscription_with_request_ip_and_agent(client, account, create_list, worker, maildir):
    """A form post is recorded with the request's IP and user agent and the form as source."""
    lst = create_list()
    response = _post(client, lst["id"], "visitor@example.com")
    assert response.status_code == 200 and b"Check your inbox" in response.data
    (sub,) = _subs(client, account, lst["id"])
    events = client.get(f"/api/v1/subscriptions/{sub['id']}", headers=account.headers).json["events"]
    assert events[0]["type"] == "subscribe_requested"
    assert events[0]["ip"] == "192.0.2.44" and events[0]["user_agent"] == "Browser/1.0"
    assert events[0]["source"] == "form"
    assert sub["source"] == f"hosted-form:/subscribe/{lst['id']}"
    worker.drain()
    assert len(maildir()) == 1


def test_form_shows_consent_wording_that_is_then_recorded(client, account, create_list):
    """The wording shown on the form is the wording stored in the proof."""
    lst = create_list(consent_text="Monthly offers from Acme; unsubscribe any time.")
    page = client.get(f"/subscribe/{lst['id']}")
    assert b"Monthly offers from Acme; unsubscribe any time." in page.data
    _post(client, lst["id"], "v@example.com")
    (sub,) = _subs(client, account, lst["id"])
    assert sub["consent_text"] == "Monthly offers from Acme; unsubscribe any time."


def test_missing_csrf_token_is_refused_and_creates_nothing(client, account, create_list):
    """Without the CSRF token the post is a 400 page and no subscription exists."""
    lst = create_list()
    response = client.post(f"/subscribe/{lst['id']}", data={"email": "v@example.com"})
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")
    assert _subs(client, account, lst["id"]) == []


def test_honeypot_answers_the_same_and_creates_nothing(client, account, create_list, worker, maildir):
    """A bot that fills the hidden field sees the normal answer; nothing is stored or sent."""
    lst = create_list()
    normal = _post(client, lst["id"], "a@example.com")
    trapped = _post(client, lst["id"], "b@example.com", website="http://spam.example")
    assert trapped.status_code == normal.status_code == 200
    assert trapped.data == normal.data
    assert [s["email"] for s in _subs(client, account, lst["id"])] == ["a@example.com"]
    worker.drain()
    assert len(maildir()) == 1


def test_answer_never_reveals_membership(client, account, create_list, subscribe, worker, maildir):
    """New, pending, subscribed, suppressed and flood-limited addresses all get the identical page."""
    from tests.helpers import link_from, token_of

    lst = create_list()
    subscribe(lst["id"], email="subscribed@example.com")
    worker.drain()
    client.post("/confirm/" + token_of(link_from(maildir()[-1], "confirm")), data={"method": "button"})
    subscribe(lst["id"], email="pending@example.com")
    worker.drain()
    client.post("/not-me/" + token_of(link_from(maildir()[-1], "not-me")))  # pending@ is now suppressed
    for _ in range(3):
        subscribe(lst["id"], email="limited@example.com")
    answers = {email: _post(client, lst["id"], email)
               for email in ["new@example.com", "subscribed@example.com", "pending@example.com",
                             "limited@example.com"]}
    bodies = {a.data for a in answers.values()}
    statuses = {a.status_code for a in answers.values()}
    assert len(bodies) == 1 and statuses == {200}


def test_malformed_address_is_a_clear_422_that_does_not_echo_markup(client, account, create_list):
    """A malformed address is refused with a message and escaped input, nothing stored."""
    lst = create_list()
    response = _post(client, lst["id"], "<script>x</script>@")
    assert response.status_code == 422
    assert b"<script>x</script>" not in response.data
    assert _subs(client, account, lst["id"]) == []


def test_per_ip_request_limit(app_with_list):
    """Past FLEXMAIL_FORM_RATE_LIMIT posts from one IP get 429; another IP still gets through."""
    _, client, list_id, _ = app_with_list(FORM_RATE_LIMIT="3 per minute")
    codes = [_post(client, list_id, f"p{i}@example.com").status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
    assert _post(client, list_id, "q@example.com", remote_addr="192.0.2.99").status_code == 200


@pytest.mark.parametrize("hops,forwarded,expected", [
    (0, "198.51.100.1", "192.0.2.44"),
    (1, "198.51.100.1", "198.51.100.1"),
    (1, "6.6.6.6, 198.51.100.1", "198.51.100.1"),
    (2, "198.51.100.1, 10.0.0.2", "198.51.100.1"),
])
def test_request_ip_honours_only_trusted_proxy_hops(app_with_list, hops, forwarded, expected):
    """X-Forwarded-For is believed for exactly FLEXMAIL_TRUSTED_PROXIES hops (0 by default)."""
    _, client, list_id, headers = app_with_list(TRUSTED_PROXIES=hops)
    token = _csrf(client, list_id)
    client.post(f"/subscribe/{list_id}", data={"csrf_token": token, "email": "v@example.com"},
                headers={"X-Forwarded-For": forwarded}, environ_base={"REMOTE_ADDR": "192.0.2.44"})
    (sub,) = client.get(f"/api/v1/lists/{list_id}/subscriptions", headers=headers).json["items"]
    events = client.get(f"/api/v1/subscriptions/{sub['id']}", headers=headers).json["events"]
    assert events[0]["ip"] == expected


def test_unknown_list_is_a_404_page(client):
    """A form for a list that does not exist is an HTML 404, not a JSON error or a 500."""
    response = client.get("/subscribe/999999")
    assert response.status_code == 404 and response.headers["Content-Type"].startswith("text/html")
