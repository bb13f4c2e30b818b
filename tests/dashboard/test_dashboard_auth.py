"""The dashboard's door: sign-in with an API key, the session cookie, CSRF, sign-out, scopes,
account isolation, input checks, rate limit and log lines."""

from __future__ import annotations

import base64
import re

import pytest

from tests.dashboard_support import csrf_of, session_cookie, sign_in
from tests.forward_support import own_client_ip


@pytest.fixture
def lst(create_list):
    return create_list(name="Trail News")


def _payload(cookie_value: str) -> str:
    """What Flask's signed session cookie carries, decoded (itsdangerous signs, it does not hide)."""
    data = cookie_value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    if cookie_value.startswith("."):
        import zlib

        raw = zlib.decompress(raw)
    return raw.decode()


def _without_csrf(html: bytes) -> bytes:
    return re.sub(rb'name="csrf_token" value="[^"]+"', b"", html)


def test_sign_in_opens_a_session_whose_cookie_holds_no_key(client, account, lst):
    """A valid key signs in (303 to the dashboard), the lists show, and the cookie is HttpOnly,
    SameSite=Lax, not Secure on http, and carries neither the key nor its hash."""
    answer = sign_in(client, account.key)
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/dashboard")
    set_cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Secure" not in set_cookie
    payload = _payload(session_cookie(client).value)
    assert account.key not in payload and account.key[3:20] not in payload
    import hashlib

    assert hashlib.sha256(account.key.encode()).hexdigest() not in payload
    home = client.get("/dashboard")
    assert home.status_code == 200 and b"Trail News" in home.data
    assert home.headers["Cache-Control"] == "no-store"
    page = client.get(f"/dashboard/lists/{lst['id']}")
    assert page.status_code == 200 and b"Trail News" in page.data


def test_the_cookie_is_secure_behind_https(make_app, app_config, account):
    """With an https public URL the session cookie is marked Secure."""
    app_config["PUBLIC_URL"] = "https://flexmail.test"
    app = make_app(app_config)
    client = app.test_client()
    from flexmail.services.marketer import accounts

    with app.app_context():
        _, key = accounts.create_account("Secure Co", scopes=["marketer"])
    answer = sign_in(client, key)
    assert answer.status_code == 303
    assert "Secure" in answer.headers["Set-Cookie"] and "HttpOnly" in answer.headers["Set-Cookie"]


def test_refused_keys_all_get_the_same_answer(app, client, account, create_account, lst):
    """An unknown key, a revoked key, a malformed one and an empty one each get the same 401 page,
    and none of them opens a session."""
    from flexmail.services.marketer import api_keys

    other = create_account("Revoked Co", scopes=["marketer", "admin"])
    with app.app_context():
        key_id = api_keys.list_keys(other.id)[0].id
        api_keys.revoke_key(other.id, key_id)
    bodies = set()
    for key in ("fm_" + "x" * 43, other.key, "not a key", ""):
        answer = sign_in(client, key)
        assert answer.status_code == 401, key
        assert b"That key cannot sign in" in answer.data
        bodies.add(_without_csrf(answer.data))
        assert client.get(f"/dashboard/lists/{lst['id']}").status_code == 401
    assert len(bodies) == 1


@pytest.mark.parametrize("token", [None, "wrong", "other-session"])
def test_sign_in_without_a_valid_csrf_token_is_refused(client, account, make_app, app_config, token):
    """A sign-in POST without the CSRF token, with a made-up one or with one of another session
    is refused (400) and opens no session."""
    client.get("/dashboard")
    data = {"api_key": account.key}
    if token == "wrong":
        data["csrf_token"] = "IjAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OSI.aaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbb"
    elif token == "other-session":
        stranger = client.application.test_client()
        data["csrf_token"] = csrf_of(stranger.get("/dashboard").data)
    answer = client.post("/dashboard/sign-in", data=data)
    assert answer.status_code == 400
    assert client.get("/dashboard").data.count(b'name="api_key"') == 1  # still the sign-in page


def test_signing_in_starts_a_new_session(client, account, lst):
    """The CSRF token of the sign-in page stops working once signed in: the session (and its
    token) is new, so a token planted before sign-in is worth nothing afterwards."""
    before = csrf_of(client.get("/dashboard").data)
    assert client.post("/dashboard/sign-in", data={"csrf_token": before, "api_key": account.key}).status_code == 303
    assert client.post("/dashboard/sign-out", data={"csrf_token": before}).status_code == 400
    assert client.get(f"/dashboard/lists/{lst['id']}").status_code == 200


def test_sign_out_needs_csrf_and_ends_the_session_for_good(client, account, lst):
    """Sign-out without a CSRF token is refused and changes nothing; with it, the session ends,
    and a copy of the old cookie no longer opens anything."""
    sign_in(client, account.key)
    path = f"/dashboard/lists/{lst['id']}"
    page = client.get(path)
    assert page.status_code == 200
    assert client.post("/dashboard/sign-out").status_code == 400
    assert client.get(path).status_code == 200
    old = session_cookie(client).value
    out = client.post("/dashboard/sign-out", data={"csrf_token": csrf_of(page.data)})
    assert out.status_code == 303
    assert client.get(path).status_code == 401
    client.set_cookie("session", old)  # replay the cookie from before the sign-out
    answer = client.get(path)
    assert answer.status_code == 401 and b"Your session has ended" in answer.data


def test_revoking_the_key_ends_its_sessions(app, client, account, lst):
    """A key revoked after sign-in no longer opens the dashboard."""
    from flexmail.services.marketer import api_keys

    sign_in(client, account.key)
    path = f"/dashboard/lists/{lst['id']}"
    assert client.get(path).status_code == 200
    with app.app_context():
        key_id = next(k.id for k in api_keys.list_keys(account.id))
        api_keys.revoke_key(account.id, key_id)
    assert client.get(path).status_code == 401


def test_another_accounts_list_is_not_found(client, account, create_account, create_list, lst):
    """A list of another account, or no list at all, is a 404, for the page and the exports."""
    other = create_account("Other Co", scopes=["marketer"])
    theirs = create_list(acct=other, name="Their List")
    sign_in(client, account.key)
    page = client.get(f"/dashboard/lists/{lst['id']}")
    assert client.get(f"/dashboard/lists/{theirs['id']}").status_code == 404
    assert client.get("/dashboard/lists/999999").status_code == 404
    token = csrf_of(page.data)
    answer = client.post(f"/dashboard/lists/{theirs['id']}/export", data={"csrf_token": token, "format": "csv"})
    assert answer.status_code == 404
    assert b"Their List" not in client.get("/dashboard").data


@pytest.mark.parametrize("days", ["7", "abc", "", "30.0", "-30", "9" * 40])
def test_an_unknown_range_is_refused_with_422(client, account, lst, days):
    """The range filter takes 30, 90 or 365; anything else is a 422 page, never a 500."""
    sign_in(client, account.key)
    assert client.get(f"/dashboard/lists/{lst['id']}", query_string={"days": days}).status_code == 422


@pytest.mark.parametrize("days", ["30", "90", "365"])
def test_each_offered_range_renders(client, account, lst, days):
    """Each offered range renders its page with the range selected."""
    sign_in(client, account.key)
    page = client.get(f"/dashboard/lists/{lst['id']}", query_string={"days": days})
    assert page.status_code == 200
    assert f'value="{days}" selected'.encode() in page.data


def test_export_buttons_follow_the_compliance_scope(app, client, account, create_account, create_list, subscribe,
                                                    worker):
    """A compliance key sees the export forms and gets a signed CSV export and a certificate; a
    marketer-only key sees no forms and is refused (403) when posting them anyway."""
    lst = create_list(name="Trail News")
    assert subscribe(lst["id"], email="Walker@Example.com").status_code == 202
    worker.drain()
    sign_in(client, account.key)
    page = client.get(f"/dashboard/lists/{lst['id']}")
    assert b"/export" in page.data and b"/certificate" in page.data
    token = csrf_of(page.data)
    csv = client.post(f"/dashboard/lists/{lst['id']}/export", data={"csrf_token": token, "format": "csv", "days": "30"})
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    lines = csv.data.decode().strip().splitlines()
    assert "subscribe_requested" in csv.data.decode() and "manifest" in lines[-1]
    cert = client.post(f"/dashboard/lists/{lst['id']}/certificate",
                       data={"csrf_token": token, "format": "html", "email": "walker@example.com"})
    assert cert.status_code == 200 and b"subscribe_requested" in cert.data or b"Subscribe" in cert.data
    assert client.post(f"/dashboard/lists/{lst['id']}/export", data={"format": "csv"}).status_code == 400
    assert client.post(f"/dashboard/lists/{lst['id']}/export",
                       data={"csrf_token": token, "format": "xlsx"}).status_code == 422

    marketer = create_account("Acme", scopes=["marketer"])
    mine = client.application.test_client()
    with app.app_context():
        from flexmail.services.marketer import lists

        lists_of_marketer = lists.create_list(marketer.id, name="M", sender_name="M", sender_email="m@acme.example",
                                              consent_text="Yes.")
        list_id = lists_of_marketer.id
    sign_in(mine, marketer.key)
    page = mine.get(f"/dashboard/lists/{list_id}")
    assert page.status_code == 200 and b"/export" not in page.data and b"/certificate" not in page.data
    answer = mine.post(f"/dashboard/lists/{list_id}/export", data={"csrf_token": csrf_of(page.data), "format": "csv"})
    assert answer.status_code == 403


def test_sign_in_attempts_are_rate_limited(client, account):
    """Past the sign-in limit a client gets 429, even with a valid key."""
    own_client_ip(client)
    client.application.config["DASHBOARD_SIGNIN_RATE_LIMIT"] = "3 per minute"
    for _ in range(3):
        assert sign_in(client, "fm_" + "y" * 43).status_code == 401
    assert sign_in(client, account.key).status_code == 429


def test_no_key_or_address_in_any_log_line(client, account, create_list, subscribe, worker, log_text):
    """Signing in (well and badly), browsing, exporting and a certificate leave neither the key nor
    the person's address in the log. (The audit line of the certificate names the key by its
    public 10-character prefix, as for the API: ``ApiKey.prefix``; nothing after it is logged.)"""
    lst = create_list()
    subscribe(lst["id"], email="Walker@Example.com")
    worker.drain()
    sign_in(client, "fm_" + "z" * 43)
    sign_in(client, account.key)
    page = client.get(f"/dashboard/lists/{lst['id']}")
    token = csrf_of(page.data)
    client.post(f"/dashboard/lists/{lst['id']}/certificate",
                data={"csrf_token": token, "format": "html", "email": "Walker@Example.com"})
    client.post("/dashboard/sign-out", data={"csrf_token": token})
    text = log_text()
    assert "dashboard session opened" in text and "dashboard sign-in refused" in text
    for secret in (account.key, account.key[8:20], account.key[-12:], "z" * 20, "walker@example.com"):
        assert secret.lower() not in text.lower(), secret


@pytest.mark.parametrize(("lang", "title"), [
    ("nl", "Aanmelden bij het overzicht"), ("fr", "Se connecter au tableau de bord"),
    ("de", "In die Übersicht einloggen"), ("en", "Sign in to the dashboard")])
def test_the_dashboard_speaks_the_browsers_language(client, lang, title):
    """The sign-in page follows Accept-Language (and ``?lang=``), with ``<html lang>`` to match."""
    page = client.get("/dashboard", headers={"Accept-Language": lang}).get_data(as_text=True)
    assert f'<html lang="{lang}">' in page and title in page
    chosen = client.get("/dashboard", query_string={"lang": lang}, headers={"Accept-Language": "en"})
    assert title in chosen.get_data(as_text=True)
