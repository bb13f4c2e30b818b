"""Per-list branding through the lists API: validated colours with a contrast check, identity fields, and a
logo fetched once over https (raster only, size-capped, bytes checked), stored, and served from our own URL."""

from __future__ import annotations

import pytest

from flexmail.domain.branding import LOGO_MAX_BYTES
from tests.branding_support import LogoServer, png

LOGO = png()
ROUTES = {
    "/logo.png": (200, "image/png", LOGO, {}),
    "/lies.png": (200, "image/png", b"<html><script>alert(1)</script></html>", {}),
    "/logo.svg": (200, "image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg"/>', {}),
    "/huge.png": (200, "image/png", LOGO + b"\0" * LOGO_MAX_BYTES, {}),
    "/moved.png": (302, "text/plain", b"", {"Location": "/logo.png"}),
    "/gone.png": (404, "text/plain", b"", {}),
}


@pytest.fixture
def logos(tmp_path):
    with LogoServer(tmp_path, ROUTES) as server:
        yield server


@pytest.fixture
def app_config(app_config, logos):
    app_config.update(LOGO_CA_FILE=str(logos.cert), LOGO_FETCH_ALLOW_PRIVATE=True)
    return app_config


BODY = {"name": "Trail News", "sender_name": "Outdoor Co.", "sender_email": "news@outdoor.example",
        "consent_text": "Send me the trail news."}


def _create(client, account, **extra):
    return client.post("/api/v1/lists", json=BODY | extra, headers=account.headers)


def _count_lists(client, account):
    return len(client.get("/api/v1/lists", headers=account.headers).json)


def test_branding_is_stored_and_the_logo_is_fetched_once_and_served_by_us(client, account, logos, subscribe, worker,
                                                                          maildir):
    """A list with logo, accent, address, contact and privacy notice: the logo is fetched once, served from our URL
    with its type, and pages and mails link our copy, never the marketer's host."""
    created = _create(client, account, language="nl", logo_url=logos.url("/logo.png"), accent_color="#1B5E20",
                      postal_address="Outdoor Co.\r\n  Rue de la Loi 16 \n\n1000 Brussels",
                      contact_email="Privacy@Outdoor.example", privacy_url="https://outdoor.example/privacy")
    assert created.status_code == 201, created.json
    body = created.json
    assert body["accent_color"] == "#1b5e20" and body["language"] == "nl"
    assert body["postal_address"] == "Outdoor Co.\nRue de la Loi 16\n1000 Brussels"
    assert body["contact_email"] == "Privacy@outdoor.example"  # the domain is lower-cased, the local part kept
    assert body["logo_url"].startswith(f"http://flexmail.test/brand/{body['id']}/logo?v=")
    path = body["logo_url"].removeprefix("http://flexmail.test")
    for _ in range(3):
        logo = client.get(path)
        assert logo.status_code == 200 and logo.data == LOGO and logo.mimetype == "image/png"
        page = client.get(f"/subscribe/{body['id']}").get_data(as_text=True)
        assert f'src="{path}"' in page.replace("&amp;", "&") and "127.0.0.1:" not in page
    assert subscribe(body["id"]).status_code == 202
    worker.drain()
    html = maildir()[-1].get_body(("html",)).get_content()
    assert f'src="{body["logo_url"]}"' in html.replace("&amp;", "&") and "127.0.0.1:" not in html
    assert "background: #1b5e20" in html  # the accent on the confirm button
    assert logos.hits == {"/logo.png": 1}
    css = client.get(f"/brand/{body['id']}.css")
    assert css.status_code == 200 and css.mimetype == "text/css" and "--accent: #1b5e20" in css.get_data(as_text=True)


@pytest.mark.parametrize(("extra", "field"), [
    ({"accent_color": "#ffff00"}, "accent_color"),      # yellow: white text on it is unreadable (1.1:1)
    ({"accent_color": "#777777"}, "accent_color"),      # 4.48:1, just under AA
    ({"accent_color": "green"}, "accent_color"),
    ({"contact_email": "not an address"}, "contact_email"),
    ({"privacy_url": "http://outdoor.example/privacy"}, "privacy_url"),
    ({"language": "es"}, "language"),
    ({"logo_url": "http://outdoor.example/logo.png"}, "logo_url"),
    ({"logo_url": "/lies.png"}, "logo_url"),            # declared PNG, bytes are HTML
    ({"logo_url": "/logo.svg"}, "logo_url"),            # SVG can carry scripts
    ({"logo_url": "/huge.png"}, "logo_url"),
    ({"logo_url": "/moved.png"}, "logo_url"),           # no redirects: they could lead past the host check
    ({"logo_url": "/gone.png"}, "logo_url"),
])
def test_bad_branding_is_refused_and_creates_nothing(client, account, logos, extra, field):
    """Each unusable branding value is a 422 naming its field, and no list is created."""
    extra = {k: (logos.url(v) if k == "logo_url" and v.startswith("/") else v) for k, v in extra.items()}
    before = _count_lists(client, account)
    response = _create(client, account, **extra)
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["fields"]
    assert _count_lists(client, account) == before


def test_patch_changes_only_what_is_given_and_null_clears(client, account, logos):
    """PATCH sets a field, leaves the others, and ``null`` removes the logo (then 404) or a field."""
    lst = _create(client, account, logo_url=logos.url("/logo.png"), accent_color="#0a66c2",
                  contact_email="hi@outdoor.example").json
    changed = client.patch(f"/api/v1/lists/{lst['id']}", json={"accent_color": "#7b1fa2", "logo_url": None,
                                                               "contact_email": None}, headers=account.headers)
    assert changed.status_code == 200, changed.json
    assert changed.json["accent_color"] == "#7b1fa2" and changed.json["logo_url"] is None
    assert changed.json["contact_email"] is None and changed.json["sender_name"] == "Outdoor Co."
    assert client.get(lst["logo_url"].removeprefix("http://flexmail.test")).status_code == 404
    refused = client.patch(f"/api/v1/lists/{lst['id']}", json={"accent_color": "#eeeeee"}, headers=account.headers)
    assert refused.status_code == 422
    assert client.get(f"/api/v1/lists/{lst['id']}", headers=account.headers).json["accent_color"] == "#7b1fa2"


def test_another_accounts_list_cannot_be_rebranded(client, account, create_account, logos):
    """PATCH on a list of another account is a 404 and changes nothing."""
    lst = _create(client, account).json
    other = create_account()
    response = client.patch(f"/api/v1/lists/{lst['id']}", json={"accent_color": "#000000"}, headers=other.headers)
    assert response.status_code == 404
    assert client.get(f"/api/v1/lists/{lst['id']}", headers=account.headers).json["accent_color"] is None


def test_logo_from_a_private_address_is_refused_by_default(make_app, app_config, logos):
    """Without LOGO_FETCH_ALLOW_PRIVATE the fetcher never connects to a loopback or private address (SSRF)."""
    app = make_app(app_config | {"LOGO_FETCH_ALLOW_PRIVATE": False})
    from flexmail.services.marketer import accounts

    with app.app_context():
        _, key = accounts.create_account("Acme", scopes=["marketer"])
    response = app.test_client().post("/api/v1/lists", json=BODY | {"logo_url": logos.url("/logo.png")},
                                      headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 422 and "logo_url" in response.json["error"]["fields"]
    assert logos.hits == {}
