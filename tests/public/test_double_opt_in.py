"""Double opt-in through the API, the worker, the Maildir and the public confirm page."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from flexmail import clock
from tests.helpers import confirmation_links, link_from, token_of


def _signup(create_list, subscribe, worker, maildir, email="Reader@Example.com"):
    lst = create_list()
    response = subscribe(lst["id"], email=email)
    assert response.status_code == 202, response.json
    worker.drain()
    mails = maildir()
    assert mails, "no confirmation mail"
    return lst, response.json["subscription"], mails[-1]


def _status(client, account, sub_id):
    return client.get(f"/api/v1/subscriptions/{sub_id}", headers=account.headers).json["status"]


def test_signup_queues_one_confirmation_mail_with_proof_of_what_was_asked(
        client, account, create_list, subscribe, worker, maildir):
    """A signup is pending, gets one multipart mail from the list sender, and the proof keeps its digest."""
    lst, sub, mail = _signup(create_list, subscribe, worker, maildir)
    assert sub["status"] == "pending" and sub["email"] == "Reader@example.com"
    assert len(maildir()) == 1
    assert mail["From"].addresses[0].addr_spec == "news@acme.example"
    assert mail["From"].addresses[0].display_name == "Acme News"
    assert mail["To"].addresses[0].addr_spec == "Reader@example.com"
    assert mail["Date"].datetime.tzinfo is not None
    assert mail["Message-ID"].startswith("<") and mail["Message-ID"].endswith("@flexmail.test>")
    assert mail.get_content_type() == "multipart/alternative"
    assert {p.get_content_type() for p in mail.iter_parts()} == {"text/plain", "text/html"}
    assert "List-Unsubscribe" not in mail  # transactional mail (standards B7)
    assert mail["Return-Path"] == "<bounces@flexmail.test>"  # the envelope sender: bounces come to us
    confirm_url, not_me_url = confirmation_links(mail)
    assert confirm_url.startswith("http://flexmail.test/confirm/")
    assert "Send me the weekly Acme newsletter" in mail.get_body(("plain",)).get_content()

    detail = client.get(f"/api/v1/subscriptions/{sub['id']}", headers=account.headers).json
    types = [e["type"] for e in detail["events"]]
    assert types == ["subscribe_requested", "confirmation_sent"]
    requested, sent = detail["events"]
    assert requested["ip"] == "203.0.113.7" and requested["user_agent"] == "Mozilla/5.0 (signup)"
    assert requested["details"]["consent_text"].startswith("Send me the weekly")
    assert sent["details"]["message_id"] == mail["Message-ID"]
    assert sent["details"]["subject"] == mail["Subject"]
    assert sent["details"]["template_version"].startswith("confirm@")
    for subtype in ("plain", "html"):
        content = mail.get_body((subtype,)).get_content().replace("\r\n", "\n")
        key = "text_sha256" if subtype == "plain" else "html_sha256"
        assert sent["details"][key] == hashlib.sha256(content.encode()).hexdigest()


def test_get_and_head_on_confirm_link_never_confirm(client, account, create_list, subscribe, worker, maildir):
    """Scanners fetch links: GET and HEAD leave the subscription pending and keep the token usable."""
    _, sub, mail = _signup(create_list, subscribe, worker, maildir)
    path = "/confirm/" + token_of(link_from(mail, "confirm"))
    for _ in range(3):
        assert client.get(path, headers={"User-Agent": "Scanner/1.0"}).status_code == 200
        assert client.head(path).status_code == 200
    assert _status(client, account, sub["id"]) == "pending"
    events = client.get(f"/api/v1/subscriptions/{sub['id']}", headers=account.headers).json["events"]
    fetched = [e for e in events if e["type"] == "link_fetched"]
    assert len(fetched) == 6
    assert {e["details"]["method"] for e in fetched} == {"GET", "HEAD"}
    assert all(e["details"]["before_click_gate"] for e in fetched)
    assert client.post(path, data={"method": "button"}).status_code == 200
    assert _status(client, account, sub["id"]) == "subscribed"


def test_post_confirms_and_proof_holds_both_ips_and_times(client, account, create_list, subscribe, worker, maildir):
    """The confirming POST records its own time, IP and user agent beside the signup's."""
    _, sub, mail = _signup(create_list, subscribe, worker, maildir)
    path = "/confirm/" + token_of(link_from(mail, "confirm"))
    later = clock.now() + dt.timedelta(hours=2)
    clock.freeze(later)
    response = client.post(path, data={"method": "button"}, headers={"User-Agent": "Person/2.0"},
                           environ_base={"REMOTE_ADDR": "198.51.100.23"})
    assert response.status_code == 200
    assert b"you are subscribed" in response.data
    proof = client.get("/api/v1/proof", query_string={"email": "reader@EXAMPLE.com"}, headers=account.headers).json
    (entry,) = proof["subscriptions"]
    assert entry["status"] == "subscribed"
    confirmed = [e for e in entry["events"] if e["type"] == "confirmed"][0]
    requested = [e for e in entry["events"] if e["type"] == "subscribe_requested"][0]
    assert (requested["ip"], confirmed["ip"]) == ("203.0.113.7", "198.51.100.23")
    assert confirmed["user_agent"] == "Person/2.0"
    assert confirmed["details"]["method"] == "button"
    assert confirmed["details"]["message_id"] == mail["Message-ID"]
    assert confirmed["at"] == later.isoformat().replace("+00:00", "Z")
    assert entry["confirmed_at"] == confirmed["at"]
    assert requested["at"] < confirmed["at"]


def test_double_submit_is_harmless(client, account, create_list, subscribe, worker, maildir):
    """A second POST shows success again and records no second confirmation."""
    _, sub, mail = _signup(create_list, subscribe, worker, maildir)
    path = "/confirm/" + token_of(link_from(mail, "confirm"))
    first = client.post(path, data={"method": "auto"})
    second = client.post(path, data={"method": "button"})
    assert first.status_code == second.status_code == 200
    assert b"subscribed" in second.data
    events = client.get(f"/api/v1/subscriptions/{sub['id']}", headers=account.headers).json["events"]
    assert [e["details"]["method"] for e in events if e["type"] == "confirmed"] == ["auto"]


def test_confirm_page_auto_submits_only_after_the_click_gate(app, client, create_list, subscribe, worker, maildir):
    """Before FLEXMAIL_CONFIRM_CLICK_GATE the page needs the button; after it, the script may submit."""
    _, _, mail = _signup(create_list, subscribe, worker, maildir)
    path = "/confirm/" + token_of(link_from(mail, "confirm"))
    early = client.get(path)
    assert b'data-autosubmit="1"' not in early.data
    assert b'<script src="/static/confirm.js"' in early.data
    assert "script-src 'self'" in early.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in early.headers["Content-Security-Policy"]
    clock.freeze(clock.now() + dt.timedelta(seconds=app.config["CONFIRM_CLICK_GATE"] + 1))
    late = client.get(path)
    assert b'data-autosubmit="1"' in late.data


def test_repeat_signup_of_pending_address_resends_within_limit(client, create_list, subscribe, worker, maildir):
    """Repeating the call re-sends (at most 3 a day), then answers 429 with Retry-After."""
    lst = create_list()
    codes = [subscribe(lst["id"]).status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429]
    worker.drain()
    assert len(maildir()) == 3
    limited = subscribe(lst["id"])
    assert limited.json["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0


def test_subscribed_address_gets_200_and_no_mail(client, create_list, subscribe, worker, maildir):
    """Signing up a subscribed address again sends nothing."""
    lst, sub, mail = _signup(create_list, subscribe, worker, maildir)
    client.post("/confirm/" + token_of(link_from(mail, "confirm")), data={"method": "button"})
    again = subscribe(lst["id"], email="reader@example.com")
    assert again.status_code == 200
    assert again.json["subscription"]["status"] == "subscribed"
    assert again.json["confirmation_queued"] is False
    worker.drain()
    assert len(maildir()) == 1


def test_not_me_cancels_and_stops_further_confirmation_mails(client, account, create_list, subscribe, worker, maildir):
    """"This was not me" is a POST: GET changes nothing; POST cancels; later signups are refused."""
    lst, sub, mail = _signup(create_list, subscribe, worker, maildir)
    path = "/not-me/" + token_of(link_from(mail, "not-me"))
    assert client.get(path).status_code == 200
    assert _status(client, account, sub["id"]) == "pending"
    assert client.post(path).status_code == 200
    assert _status(client, account, sub["id"]) == "cancelled"
    other_list = create_list(name="Offers")
    refused = subscribe(other_list["id"])
    assert refused.status_code == 409 and refused.json["error"]["code"] == "suppressed"
    worker.drain()
    assert len(maildir()) == 1
    # The old confirm link cannot confirm a cancelled signup.
    confirm = client.post("/confirm/" + token_of(link_from(mail, "confirm")), data={"method": "button"})
    assert confirm.status_code == 410
    assert _status(client, account, sub["id"]) == "cancelled"


def test_confirmation_not_sent_when_signup_was_decided_before_the_worker_ran(
        app, client, account, create_list, subscribe, worker, maildir, monkeypatch):
    """A queued confirmation for an address suppressed in the meantime is skipped, not sent."""
    from flexmail.services.delivery import outbox

    enqueue = outbox._enqueue
    monkeypatch.setattr(outbox, "_enqueue", lambda message_id: None)  # the worker has not run yet
    lst = create_list()
    sub = subscribe(lst["id"]).json["subscription"]
    with app.app_context():
        from flexmail.extensions import db
        from flexmail.models import Suppression
        from flexmail.services.platform.context import hash_address

        db.session.add(Suppression(account_id=account.id, address_hash=hash_address("reader@example.com"),
                                   reason="manual", source="test"))
        db.session.commit()
        enqueue(1)
    worker.drain()
    assert maildir() == []
    assert _status(client, account, sub["id"]) == "pending"


@pytest.mark.parametrize("language,needle", [("de", "Bitte bestätigen"), ("en", "Please confirm")])
def test_confirmation_mail_in_the_list_language(create_list, subscribe, worker, maildir, language, needle):
    """The mail is written in the list's language."""
    lst = create_list(language=language)
    subscribe(lst["id"])
    worker.drain()
    assert needle in maildir()[-1]["Subject"]
