"""Security headers on every response, whatever route family or error produced it; cookie flags."""

from __future__ import annotations

import datetime as dt

import pytest

from flexmail import clock
from tests.helpers import link_from, token_of

HTTPS = "https://flexmail.example"


def _assert_secured(response, *, hsts: bool) -> None:
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp, (response.request.path, csp)
    assert "default-src 'none'" in csp
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert headers.get("X-Frame-Options") == "DENY"
    assert headers.get("Referrer-Policy") == "no-referrer"
    if hsts:
        assert headers.get("Strict-Transport-Security", "").startswith("max-age=")
    else:
        assert "Strict-Transport-Security" not in headers


def _families(client, account, list_id):
    """One request of every route family: (name, response)."""
    auth = account.headers
    yield "api json", client.get("/api/v1/lists", headers=auth)
    yield "api 401", client.get("/api/v1/lists")
    yield "api 404", client.get("/api/v1/lists/99999999999999999999", headers=auth)
    yield "api 405", client.delete("/api/v1/proof", headers=auth)
    yield "api 422", client.post("/api/v1/lists", json={"name": "\x00"}, headers=auth)
    yield "openapi.json", client.get("/api/openapi.json")
    yield "api docs", client.get("/api/docs")
    yield "static", client.get("/static/flexmail.css")
    yield "health", client.get("/health")
    yield "html 404", client.get("/no/such/page")
    yield "html 404 (huge id)", client.get("/subscribe/99999999999999999999")
    yield "hosted form", client.get(f"/subscribe/{list_id}")
    yield "bad token page", client.get("/confirm/not-a-token")
    yield "unsubscribe page", client.get("/unsubscribe/not-a-token")
    yield "forward page", client.get("/forward/not-a-token")
    yield "head", client.head("/health")


@pytest.mark.parametrize("public_url", ["http://flexmail.test", HTTPS])
def test_every_route_family_carries_the_security_headers(make_app, app_config, public_url):
    """API (success and errors), OpenAPI, docs, static, health, HTML pages and errors all carry
    CSP with frame-ancestors 'none', nosniff, DENY, no-referrer; HSTS exactly when https."""
    from tests.conftest import _Account

    app = make_app({**app_config, "PUBLIC_URL": public_url})
    from flexmail.services.marketer import accounts, lists

    with app.app_context():
        account_id, key = accounts.create_account("A", scopes=["marketer", "compliance"])
        list_id = lists.create_list(account_id, name="L", sender_name="S", sender_email="s@example.com",
                                    consent_text="C").id
    client = app.test_client()
    seen = set()
    for name, response in _families(client, _Account(account_id, key), list_id):
        with response:
            seen.add(response.status_code)
            _assert_secured(response, hsts=public_url.startswith("https"))
            assert response.status_code < 500, name
    assert {200, 401, 404, 405, 422} <= seen


def test_an_unexpected_error_page_carries_the_security_headers(client, account, monkeypatch):
    """A 500 (an exception nobody expected) still has every header, on the API and on a page."""
    from flexmail.services.marketer import lists

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(lists, "list_lists", boom)
    monkeypatch.setattr(lists, "get_public_list", boom)
    for response in (client.get("/api/v1/lists", headers=account.headers), client.get("/subscribe/1")):
        assert response.status_code == 500
        _assert_secured(response, hsts=False)


def test_a_redirect_carries_the_security_headers(client, create_list, subscribe, worker, maildir, app):
    """The 303 from a confirmation to the list's thank-you page carries the headers too."""
    clock.freeze(clock.now())
    lst = create_list(confirm_redirect_url="https://thanks.example/welcome")
    assert subscribe(lst["id"]).status_code == 202
    worker.drain()
    token = token_of(link_from(maildir()[-1], "confirm"))
    clock.freeze(clock.now() + dt.timedelta(seconds=app.config["CONFIRM_CLICK_GATE"] + 1))
    response = client.post(f"/confirm/{token}", data={"method": "button"})
    assert response.status_code == 303
    assert response.headers["Location"] == "https://thanks.example/welcome"
    _assert_secured(response, hsts=False)


@pytest.mark.parametrize("public_url, secure", [("http://flexmail.test", False), (HTTPS, True)])
def test_the_session_cookie_is_httponly_lax_and_secure_behind_https(make_app, app_config, public_url, secure):
    """The session cookie (CSRF of the hosted form) is HttpOnly and SameSite=Lax, and Secure with https."""
    app = make_app({**app_config, "PUBLIC_URL": public_url})
    from flexmail.services.marketer import accounts, lists

    with app.app_context():
        account_id, _ = accounts.create_account("A", scopes=["marketer"])
        list_id = lists.create_list(account_id, name="L", sender_name="S", sender_email="s@example.com",
                                    consent_text="C").id
    response = app.test_client().get(f"/subscribe/{list_id}")
    assert response.status_code == 200
    cookies = [v for k, v in response.headers.items() if k.lower() == "set-cookie"]
    session = [c for c in cookies if c.startswith(app.config["SESSION_COOKIE_NAME"] + "=")]
    assert session, cookies
    flags = {part.strip().lower() for part in session[0].split(";")[1:]}
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert ("secure" in flags) is secure
