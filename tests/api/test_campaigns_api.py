"""/api/v1/campaigns: create, stats (counts only), forward_url on subscriptions, recipient export."""

from __future__ import annotations

import json

import pytest

from tests.forward_support import (
    FRIENDS,
    confirm_signup,
    create_campaign,
    post_forward,
    setup_forwarding,
    stats,
    suppress,
    token_ids,
)
from tests.helpers import token_of


def test_create_campaign_with_web_url(client, account, create_list):
    """A campaign of the caller's list is created with its subject and web link, counters at zero."""
    lst = create_list()
    campaign = create_campaign(client, account, lst["id"])
    assert campaign["list_id"] == lst["id"] and campaign["subject"] == "Our autumn news"
    assert campaign["web_url"] == "https://acme.example/news/autumn" and campaign["html"] is None
    got = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=account.headers)
    assert got.status_code == 200 and got.json == campaign
    assert stats(client, account, campaign["id"]) == {"forwards": 0, "forwarded_recipients": 0}


def test_campaign_html_is_sanitised_on_creation(client, account, create_list):
    """Stored HTML keeps the marketer's content and drops script, style elements, handlers and javascript: links."""
    html = ('<p onmouseover="x()" style="color:#333;position:absolute">Hi <b>there</b></p>'
            '<a href="javascript:alert(1)">bad</a><a href="https://acme.example">good</a>'
            '<style>p{}</style><script>alert(1)</script><iframe src="https://evil.example"></iframe>'
            '<form action="https://evil.example"><input name="x"></form><img src="data:x" onerror="y()">')
    campaign = create_campaign(client, account, create_list()["id"], web_url=None, html=html)
    stored = campaign["html"]
    assert "<b>there</b>" in stored and 'href="https://acme.example"' in stored and "color:#333" in stored
    for forbidden in ("onmouseover", "position", "javascript:", "<style", "<script", "alert(1)", "<iframe",
                      "<form", "<input", "onerror", "data:"):
        assert forbidden not in stored, forbidden


@pytest.mark.parametrize("body,field", [
    ({"web_url": None}, "web_url"),
    ({"web_url": "ftp://acme.example/x"}, "web_url"),
    ({"web_url": "javascript:alert(1)"}, "web_url"),
    ({"subject": "Hi\r\nBcc: x@example.com"}, "subject"),
    ({"subject": ""}, "subject"),
    ({"web_url": None, "html": "<script>only()</script>"}, "web_url"),
    ({"surprise": 1}, "surprise"),
])
def test_invalid_campaign_is_422(client, account, create_list, body, field):
    """A campaign needs a one-line subject and an http(s) web link or some HTML; unknown fields are refused."""
    lst = create_list()
    payload = {"list_id": lst["id"], "subject": "S", "web_url": "https://acme.example/n"} | body
    response = client.post("/api/v1/campaigns", json=payload, headers=account.headers)
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["fields"]


def test_other_accounts_lists_and_campaigns_are_404(client, account, create_account, create_list):
    """A key sees only its account: another account's list cannot get a campaign, nor its campaign be read."""
    other = create_account()
    theirs = create_list(acct=other)
    response = client.post("/api/v1/campaigns", json={"list_id": theirs["id"], "subject": "S",
                                                      "web_url": "https://x.example"}, headers=account.headers)
    assert response.status_code == 404
    campaign = create_campaign(client, other, theirs["id"])
    for path in ("", "/stats", "/recipients"):
        got = client.get(f"/api/v1/campaigns/{campaign['id']}{path}", headers=account.headers)
        assert got.status_code == 404 and got.json["error"]["code"] == "not_found"
    assert client.get(f"/api/v1/campaigns/{campaign['id']}/stats").status_code == 401


def test_stats_show_counts_and_nothing_else(client, account, create_list, subscribe, worker, maildir):
    """After forwards the stats are exactly two counts: no address, no forwarder, no failures."""
    fwd = setup_forwarding(client, account, create_list, subscribe, worker, maildir)
    post_forward(client, fwd.path, FRIENDS[:2], note="for you")
    post_forward(client, fwd.path, FRIENDS[2:])
    worker.drain()
    response = client.get(f"/api/v1/campaigns/{fwd.campaign_id}/stats", headers=account.headers)
    assert response.json == {"forwards": 2, "forwarded_recipients": 3}
    assert "zq" not in response.data.decode().lower()


def test_subscription_resource_has_forward_url_for_a_campaign(client, account, create_list, subscribe, worker,
                                                               maildir):
    """GET /subscriptions/<id>?campaign_id= adds forward_url (a working link without the address) and keeps
    the unsubscribe fields; without a campaign, or for an unknown one, forward_url is null."""
    fwd = setup_forwarding(client, account, create_list, subscribe, worker, maildir)
    url = f"/api/v1/subscriptions/{fwd.subscription_id}"
    detail = client.get(url, headers=account.headers, query_string={"campaign_id": fwd.campaign_id}).json
    assert detail["forward_url"].startswith("http://flexmail.test/forward/")
    assert token_ids(detail["forward_url"]) == [fwd.subscription_id, fwd.campaign_id]  # ids, no address
    assert detail["unsubscribe_url"] and detail["list_unsubscribe"].startswith("<http://flexmail.test/unsubscribe/")
    assert detail["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
    assert client.get("/forward/" + token_of(detail["forward_url"])).status_code == 200
    assert client.get(url, headers=account.headers).json["forward_url"] is None
    unknown = client.get(url, headers=account.headers, query_string={"campaign_id": 999_999})
    assert unknown.status_code == 200 and unknown.json["forward_url"] is None


def _export(client, account, campaign_id):
    response = client.get(f"/api/v1/campaigns/{campaign_id}/recipients", headers=account.headers)
    assert response.status_code == 200, response.data
    assert response.is_streamed
    assert response.mimetype == "application/x-ndjson"
    return [json.loads(line) for line in response.data.decode().splitlines()]


def test_recipient_export_streams_sendable_recipients_with_their_links(
        app, client, account, create_list, subscribe, worker, maildir):
    """The export streams subscribed, unsuppressed recipients in id order (read in batches) with
    unsubscribe URL, forward URL and the exact List-Unsubscribe header values for the campaign."""
    app.config["CAMPAIGN_RECIPIENTS_BATCH"] = 2
    lst = create_list()
    emails = [f"zq.reader{n}@example.com" for n in range(6)]
    ids = [confirm_signup(client, subscribe, worker, maildir, lst["id"], e) for e in emails]
    subscribe(lst["id"], email="zq.pending@example.com")  # pending: not sendable
    client.delete(f"/api/v1/subscriptions/{ids[1]}", headers=account.headers)  # unsubscribed
    suppress(app, account.id, emails[3])
    suppress(app, None, emails[4], reason="hard_bounce")
    other_list = create_list(name="Other")
    confirm_signup(client, subscribe, worker, maildir, other_list["id"], "zq.elsewhere@example.com")
    campaign = create_campaign(client, account, lst["id"])

    rows = _export(client, account, campaign["id"])
    assert [r["subscription_id"] for r in rows] == [ids[0], ids[2], ids[5]]
    assert [r["email"] for r in rows] == [emails[0], emails[2], emails[5]]
    from flexmail.services.optout import unsubscribe

    for row in rows:
        assert set(row) == {"subscription_id", "email", "unsubscribe_url", "forward_url", "list_unsubscribe",
                            "list_unsubscribe_post"}
        with app.test_request_context():
            links = unsubscribe.link_headers(row["subscription_id"], campaign_id=campaign["id"])
        assert row["list_unsubscribe"] == links.list_unsubscribe
        assert row["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
        assert row["unsubscribe_url"] == links.url
        assert token_ids(row["forward_url"]) == [row["subscription_id"], campaign["id"]]
        assert client.get("/forward/" + token_of(row["forward_url"])).status_code == 200


def test_recipient_export_reads_in_constant_size_batches(app, client, account, create_list, subscribe, worker,
                                                         maildir, monkeypatch):
    """The export never loads the list at once: each query fetches at most one batch of rows."""
    from flexmail.services.forwards import campaigns

    app.config["CAMPAIGN_RECIPIENTS_BATCH"] = 2
    lst = create_list()
    for n in range(5):
        confirm_signup(client, subscribe, worker, maildir, lst["id"], f"zq.batch{n}@example.com")
    campaign = create_campaign(client, account, lst["id"])
    seen = []
    original = campaigns._suppressed

    def spy(account_id, emails):
        seen.append(len(emails))
        return original(account_id, emails)

    monkeypatch.setattr(campaigns, "_suppressed", spy)
    assert len(_export(client, account, campaign["id"])) == 5
    assert seen == [2, 2, 1]


def test_empty_export_is_an_empty_stream(client, account, create_list):
    """A campaign of a list with nobody subscribed exports nothing (200, empty body)."""
    campaign = create_campaign(client, account, create_list()["id"])
    assert _export(client, account, campaign["id"]) == []
