"""Forward to a friend in ``client`` mode (standards H2): the page opens the forwarder's own mail program with a
prepared mailto: link and counts the forward; no friend's address ever reaches the service."""

from __future__ import annotations

import logging
import re
import urllib.parse

import pytest

from tests.forward_support import (
    FORWARDER,
    FRIENDS,
    create_campaign,
    csrf_token,
    forward_url,
    mails_to,
    post_forward,
    setup_forwarding,
    stats,
)
from tests.helpers import token_of
from tests.tasks.test_forward_privacy import Browser, _assert_absent, _database_text

SUBJECT = "Sale & more = 50% off? #1; a/b [x] grüße"
WEB_URL = "https://acme.example/news/sale?id=7&lang=de#top"
CLIENT = {"forward_mode": "client"}


@pytest.fixture
def fwd(client, account, create_list, subscribe, worker, maildir):
    """A confirmed subscriber's forward link on a client-mode list (German) for a web-link campaign."""
    return setup_forwarding(client, account, create_list, subscribe, worker, maildir,
                            list_overrides={**CLIENT, "language": "de"}, subject=SUBJECT, web_url=WEB_URL)


def _open(client, path, *, website="", query=""):
    page = client.get(path + query)
    assert page.status_code == 200, page.data
    return client.post(f"{path}/open{query}", data={"csrf_token": csrf_token(page.data), "website": website})


def test_lists_take_a_forward_mode_through_the_api(client, account, create_list):
    """forward_mode is server by default, client on request, changed by PATCH, and anything else is a 422."""
    assert create_list()["forward_mode"] == "server"
    lst = create_list(**CLIENT)
    assert lst["forward_mode"] == "client"
    assert client.get(f"/api/v1/lists/{lst['id']}", headers=account.headers).json["forward_mode"] == "client"
    patched = client.patch(f"/api/v1/lists/{lst['id']}", json={"forward_mode": "server"}, headers=account.headers)
    assert patched.status_code == 200 and patched.json["forward_mode"] == "server"
    for bad in ("Client", "both", None, 1):
        body = {"name": "x", "sender_name": "x", "sender_email": "x@acme.example", "consent_text": "x",
                "forward_mode": bad}
        response = client.post("/api/v1/lists", headers=account.headers, json=body)
        assert response.status_code == 422 and "forward_mode" in response.json["error"]["fields"]
    assert len(client.get("/api/v1/lists", headers=account.headers).json) == 2


def test_the_page_has_no_field_for_an_address(client, account, fwd):
    """The client-mode page has one button and no input a friend's address could be typed into; GET counts nothing."""
    for _ in range(3):
        page = client.get(fwd.path)
        assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="friend"' not in html and 'type="email"' not in html and "<textarea" not in html
    inputs = re.findall(r"<input[^>]*>", html)
    assert sorted(re.search(r'name="([^"]+)"', i).group(1) for i in inputs) == ["csrf_token", "website"]
    assert f'action="/forward/{token_of(fwd.forward_url)}/open?lang=de"' in html
    assert 'id="open-mail-button"' in html and "<script" not in html
    # Browsers check the form's redirect against form-action: mailto: (only) is added to our policy.
    csp = page.headers["Content-Security-Policy"]
    assert "form-action 'self' mailto:;" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert stats(client, account, fwd.campaign_id) == {"forwards": 0, "forwarded_recipients": 0}


def test_open_counts_once_and_redirects_to_a_prepared_mailto(client, account, fwd):
    """POST .../open counts one forward and answers 303 to mailto: with no recipient, the subject and body
    percent-encoded as RFC 6068 says (UTF-8, %20 for space, CRLF line breaks, & = ? # ; / [ ] encoded)."""
    response = _open(client, fwd.path)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("mailto:?subject=")  # no "to": the forwarder picks the friends
    query = location.removeprefix("mailto:?")
    assert re.fullmatch(r"subject=[A-Za-z0-9%._~-]+&body=[A-Za-z0-9%._~-]+", query), query
    fields = dict(part.split("=", 1) for part in query.split("&"))
    subject, body = (urllib.parse.unquote(fields[k], errors="strict") for k in ("subject", "body"))
    assert subject == f"WG: {SUBJECT}"
    intro = "Ich dachte, diese Nachricht von Acme News könnte Sie interessieren:"
    assert body == f"{intro}\r\n\r\n{SUBJECT}\r\n{WEB_URL}\r\n"
    assert "%20" in fields["subject"] and "+" not in query and "%0D%0A" in fields["body"]
    for char in "&=?#;/[]%":
        assert urllib.parse.quote(char, safe="") in fields["subject"] + fields["body"], char
    assert stats(client, account, fwd.campaign_id) == {"forwards": 1, "forwarded_recipients": 0}


def test_the_prepared_mail_is_in_the_language_shown(client, fwd):
    """A person who switched the page to French gets the French subject prefix and text."""
    location = _open(client, fwd.path, query="?lang=fr").headers["Location"]
    subject = urllib.parse.unquote(location.split("subject=", 1)[1].split("&", 1)[0])
    assert subject == f"TR\u00a0: {SUBJECT}"


def test_a_campaign_without_web_page_gives_its_first_lines(client, account, create_list, subscribe, worker, maildir):
    """With only HTML, the body carries the campaign's text, cut short enough for any mail program."""
    long_html = "<p>" + " ".join(["word"] * 2000) + "</p>"
    fwd = setup_forwarding(client, account, create_list, subscribe, worker, maildir, list_overrides=CLIENT,
                           web_url=None, html=long_html)
    location = _open(client, fwd.path).headers["Location"]
    body = urllib.parse.unquote(location.split("body=", 1)[1])
    assert body.startswith("I thought you might like this message from Acme News:\r\n") and "word word" in body
    assert len(body) < 1400 and body.rstrip().endswith("…")


def test_client_mode_counts_like_server_mode(client, account, create_list, subscribe, worker, maildir):
    """The same number of forwards gives the same forward count in both modes, under the same daily quota per
    link (the fourth of the day is 429 in both)."""
    server = setup_forwarding(client, account, create_list, subscribe, worker, maildir, email="s@example.com")
    client_mode = setup_forwarding(client, account, create_list, subscribe, worker, maildir, email="c@example.com",
                                   list_overrides=CLIENT)
    for n in range(3):
        assert post_forward(client, server.path, [FRIENDS[n]]).status_code == 200
        assert _open(client, client_mode.path).status_code == 303
    assert post_forward(client, server.path, [FRIENDS[0]]).status_code == 429
    assert _open(client, client_mode.path).status_code == 429
    assert stats(client, account, server.campaign_id)["forwards"] == 3
    assert stats(client, account, client_mode.campaign_id)["forwards"] == 3
    assert _forward_days(client.application, server.campaign_id) == _forward_days(client.application,
                                                                                   client_mode.campaign_id) == [3]


def _forward_days(app, campaign_id) -> list[int]:
    """The per-day forward counts of a campaign (what a chart over time reads)."""
    from sqlalchemy import select

    from flexmail.extensions import db
    from flexmail.models import CampaignForwardDay

    with app.app_context():
        return list(db.session.scalars(select(CampaignForwardDay.forwards)
                                       .where(CampaignForwardDay.campaign_id == campaign_id)))


def test_a_filled_honeypot_is_not_counted(client, account, fwd):
    """A bot that fills the hidden field gets the same answer and counts nothing."""
    assert _open(client, fwd.path, website="http://spam.example").status_code == 303
    assert stats(client, account, fwd.campaign_id)["forwards"] == 0


def test_open_on_a_server_mode_list_is_refused(client, account, create_list, subscribe, worker, maildir):
    """A server-mode link cannot be counted through the client route: 409 and the usual form, nothing counted."""
    fwd = setup_forwarding(client, account, create_list, subscribe, worker, maildir)
    page = client.get(fwd.path)
    response = client.post(f"{fwd.path}/open", data={"csrf_token": csrf_token(page.data)})
    assert response.status_code == 409 and response.data.count(b'name="friend"') == 5
    assert stats(client, account, fwd.campaign_id)["forwards"] == 0


def test_open_without_csrf_token_counts_nothing(client, account, fwd):
    """Another site cannot make a visitor's browser count forwards: no CSRF token, 400, nothing counted."""
    assert client.post(f"{fwd.path}/open", data={}).status_code == 400
    assert stats(client, account, fwd.campaign_id)["forwards"] == 0


def test_a_posted_friend_address_is_refused_and_kept_nowhere(app, client, account, fwd, worker, maildir, live_server,
                                                             caplog):
    """Friends' addresses posted to a client-mode list (form fields, query string) over real HTTP are refused with
    409 before being read: no mail, no count, and no trace in the database (file + WAL or pg_dump) or the log."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    caplog.clear()
    browser = Browser(live_server.url)
    status, page = browser.request(fwd.path)
    assert status == 200
    form = {"csrf_token": csrf_token(page), "friend": list(FRIENDS), "sender_name": FORWARDER,
            "note": f"to {FRIENDS[0]}", "website": ""}
    status, answer = browser.request(fwd.path, form)
    assert status == 409 and b'name="friend"' not in answer and b"open-mail-button" in answer
    status, _ = browser.request(f"{fwd.path}/open", {**form, "to": FRIENDS[1]})
    assert status == 303 or status == 200  # urllib follows nothing to mailto:; the count is one
    worker.drain()
    assert all(mails_to(maildir(), friend) == [] for friend in FRIENDS)
    assert stats(client, account, fwd.campaign_id) == {"forwards": 1, "forwarded_recipients": 0}
    log = "\n".join(logging.Formatter("%(name)s %(levelname)s %(message)s").format(r) for r in caplog.records)
    assert "werkzeug" in log and "/forward/[token]" in log
    _assert_absent(log, "the log", FRIENDS)
    _assert_absent(_database_text(app), "the database", FRIENDS)


def test_switching_a_list_to_client_mode_changes_its_open_links(client, account, create_list, subscribe, worker,
                                                                maildir):
    """Links already mailed follow the list's current mode: after PATCH forward_mode=client the form is gone."""
    fwd = setup_forwarding(client, account, create_list, subscribe, worker, maildir)
    assert client.get(fwd.path).data.count(b'name="friend"') == 5
    client.patch(f"/api/v1/lists/{fwd.list_id}", json=CLIENT, headers=account.headers)
    assert b'name="friend"' not in client.get(fwd.path).data
    campaign = create_campaign(client, account, fwd.list_id)
    assert b"open-mail-button" in client.get("/forward/" + token_of(
        forward_url(client, account, fwd.subscription_id, campaign["id"]))).data
