"""Double opt-in end to end over the wire: the API and the pages over real HTTP, the
confirmation mail through a real SMTP server (aiosmtpd), nothing through the test client."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.helpers import confirmation_links

SIGNUP_IP = "203.0.113.7"
PERSON_UA = "E2E-Person/1.0"


@pytest.fixture
def app(make_app, app_config, smtp_sink):
    """The app with mail going to the SMTP sink (MAIL_URL must be set before the app is built)."""
    app_config["MAIL_URL"] = smtp_sink.url
    return make_app(app_config)


@pytest.fixture
def base(app, live_server):
    """The live server's URL; links in mails point at it too."""
    app.config["PUBLIC_URL"] = live_server.url
    return live_server.url


def http(method, url, *, json_body=None, form=None, headers=None):
    """One real HTTP request: (status, headers, body bytes); error statuses are returned, not raised."""
    data, all_headers = None, {"User-Agent": PERSON_UA, **(headers or {})}
    if json_body is not None:
        data = json.dumps(json_body).encode()
        all_headers["Content-Type"] = "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


def api(method, base, path, account, **kwargs):
    status, _, body = http(method, base + path, headers=account.headers, **kwargs)
    return status, json.loads(body) if body else None


def _signup_over_http(base, account, email_address):
    status, lst = api("POST", base, "/api/v1/lists", account, json_body={
        "name": "Weekly News", "sender_name": "Acme News", "sender_email": "news@acme.example",
        "consent_text": "Send me the weekly Acme newsletter. I can unsubscribe at any time."})
    assert status == 201, lst
    status, body = api("POST", base, f"/api/v1/lists/{lst['id']}/subscriptions", account, json_body={
        "email": email_address, "ip": SIGNUP_IP, "user_agent": "Mozilla/5.0 (signup)", "source": "e2e"})
    assert status == 202, body
    assert body["subscription"]["status"] == "pending" and body["confirmation_queued"] is True
    return lst, body["subscription"]


def _status(base, account, sub_id) -> str:
    status, body = api("GET", base, f"/api/v1/subscriptions/{sub_id}", account)
    assert status == 200, body
    return body["status"]


def _received(envelope):
    return email.message_from_bytes(envelope.original_content, policy=email.policy.default)


def test_double_opt_in_over_http_and_smtp(base, account, worker, smtp_sink):
    """Signup, mail over SMTP, scanner-style GET/HEAD, the person's POST and the proof, all over real sockets."""
    lst, sub = _signup_over_http(base, account, "Reader@Example.com")
    worker.drain()  # (queued: the request answered before the worker sent it; a quick worker may be done already)

    (envelope,) = smtp_sink.envelopes
    assert envelope.mail_from.startswith("bounces@")  # bounces come back to us (RFC 3464)
    assert envelope.rcpt_tos == ["Reader@example.com"]
    assert "SMTPUTF8" not in envelope.mail_options  # an ASCII address needs no extension
    mail = _received(envelope)
    assert mail["From"].addresses[0].addr_spec == "news@acme.example"
    assert mail["From"].addresses[0].display_name == "Acme News"
    assert mail["To"].addresses[0].addr_spec == "Reader@example.com"
    assert mail["Subject"] == "Please confirm your subscription to Weekly News"
    assert mail["Date"].datetime.tzinfo is not None
    assert mail["Message-ID"].startswith("<") and mail["Message-ID"].endswith("@127.0.0.1>")
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]

    confirm_url, not_me_url = confirmation_links(mail)
    assert confirm_url.startswith(base + "/confirm/") and not_me_url.startswith(base + "/not-me/")

    status, headers, page = http("GET", confirm_url, headers={"User-Agent": "Scanner/1.0"})
    assert status == 200 and b"Yes, subscribe me" in page
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    assert _status(base, account, sub["id"]) == "pending"
    status, _, page = http("HEAD", confirm_url, headers={"User-Agent": "Scanner/1.0"})
    assert status == 200 and page == b""
    assert _status(base, account, sub["id"]) == "pending"

    status, _, page = http("POST", confirm_url, form={"method": "button"})
    assert status == 200, page
    assert b"you are subscribed to Weekly News" in page
    assert _status(base, account, sub["id"]) == "subscribed"

    query = urllib.parse.urlencode({"email": "reader@EXAMPLE.com", "list_id": lst["id"]})
    status, proof = api("GET", base, f"/api/v1/proof?{query}", account)
    assert status == 200, proof
    (entry,) = proof["subscriptions"]
    assert entry["id"] == sub["id"] and entry["status"] == "subscribed"
    events = entry["events"]
    assert [e["type"] for e in events] == [
        "subscribe_requested", "confirmation_sent", "link_fetched", "link_fetched", "confirmed"]
    requested, sent, get_fetch, head_fetch, confirmed = events
    assert (requested["ip"], requested["user_agent"]) == (SIGNUP_IP, "Mozilla/5.0 (signup)")
    assert [get_fetch["details"]["method"], head_fetch["details"]["method"]] == ["GET", "HEAD"]
    assert get_fetch["ip"] == "127.0.0.1" and get_fetch["user_agent"] == "Scanner/1.0"
    assert (confirmed["ip"], confirmed["user_agent"]) == ("127.0.0.1", PERSON_UA)
    assert confirmed["details"]["method"] == "button"
    # The proof describes the mail the SMTP server received, byte for byte of each decoded part.
    assert sent["details"]["message_id"] == confirmed["details"]["message_id"] == mail["Message-ID"]
    assert sent["details"]["subject"] == mail["Subject"]
    for subtype, key in (("plain", "text_sha256"), ("html", "html_sha256")):
        content = mail.get_body((subtype,)).get_content().replace("\r\n", "\n")
        assert sent["details"][key] == hashlib.sha256(content.encode()).hexdigest()


def test_internationalized_address_goes_out_with_smtputf8(base, account, worker, smtp_sink):
    """A non-ASCII local part at an IDN domain is sent with SMTPUTF8 to exactly that address."""
    _, sub = _signup_over_http(base, account, "josé@exämple.de")
    assert sub["email"] == "josé@exämple.de"
    worker.drain()

    (envelope,) = smtp_sink.envelopes
    assert "SMTPUTF8" in envelope.mail_options
    assert envelope.mail_from.startswith("bounces@")  # bounces come back to us (RFC 3464)
    assert envelope.rcpt_tos == ["josé@exämple.de"]
    # (What the To header looks like is checked byte for byte below.)
    confirm_url, _ = confirmation_links(_received(envelope))
    status, _, page = http("POST", confirm_url, form={"method": "button"})
    assert status == 200, page
    assert _status(base, account, sub["id"]) == "subscribed"


def test_internationalized_to_header_is_the_address_itself(base, account, worker, smtp_sink):
    """An SMTPUTF8 message names the recipient in UTF-8 (RFC 6532), never with encoded-words in the address."""
    _signup_over_http(base, account, "josé@exämple.de")
    worker.drain()
    (envelope,) = smtp_sink.envelopes
    head = envelope.original_content.split(b"\r\n\r\n", 1)[0]
    to_lines = [line for line in head.splitlines() if line.lower().startswith(b"to:")]
    # RFC 2047 section 5: an encoded-word MUST NOT appear in any portion of an addr-spec.
    # An A-label domain would be fine; the local part can only be carried as UTF-8.
    assert to_lines in (["To: josé@exämple.de".encode()], ["To: josé@xn--exmple-cua.de".encode()]), to_lines
