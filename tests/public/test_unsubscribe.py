"""One-click unsubscribe (RFC 8058) and the unsubscribe page, through the API, the worker,
the Maildir and the public URL, as mailbox providers and people use them."""

from __future__ import annotations

import http.client
import random
from urllib.parse import urlsplit

import pytest

from flexmail.domain.tokens import Purpose, Signer
from tests.conftest import SECRET
from tests.helpers import link_from, token_of
from tests.unsubscribe_support import (
    CORPUS_REQUESTS,
    confirm_signup,
    detail,
    events,
    load_request,
    snapshot,
    unsubscribe_path,
)

ONE_CLICK = b"List-Unsubscribe=One-Click"


@pytest.fixture
def subscriber(client, account, create_list, subscribe, worker, maildir):
    """A confirmed subscriber of a fresh list: ``(list, subscription id, unsubscribe path)``."""

    def make(email="Reader@Example.com", lst=None):
        lst = lst or create_list()
        sub_id = confirm_signup(client, subscribe, worker, maildir, lst["id"], email=email)
        return lst, sub_id, unsubscribe_path(client, account, sub_id)

    return make


def _assert_unsubscribed_answer(response):
    assert response.status_code == 200, response.data[:300]
    assert "Location" not in response.headers
    assert "Set-Cookie" not in response.headers
    assert b"You are unsubscribed" in response.data


def _status(client, account, sub_id):
    return detail(client, account, sub_id)["status"]


def _undo(client, path, ip=None):
    """POST the undo form from ``ip`` (default: an address of its own, so that per-IP limit
    counters, which outlive one test on Redis, never come from another test)."""
    ip = ip or f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"
    return client.post(path + "/undo", environ_base={"REMOTE_ADDR": ip})


# --- one-click as mailbox providers send it --------------------------------------------------

@pytest.mark.parametrize("name", CORPUS_REQUESTS)
def test_rfc8058_requests_unsubscribe_byte_exact(client, account, subscriber, name):
    """Each RFC 8058 section 8 request (as printed, corrected, and well-formed multipart), replayed
    byte-exact against our URL without cookie or CSRF token, unsubscribes with 200 and no redirect."""
    _, sub_id, path = subscriber()
    request = load_request(name)
    response = client.post(path, data=request.body, content_type=request.content_type,
                           headers={"User-Agent": "GoogleOneClick/1.0"},
                           environ_base={"REMOTE_ADDR": "209.85.220.41"})
    _assert_unsubscribed_answer(response)
    assert _status(client, account, sub_id) == "unsubscribed"
    (event,) = events(client, account, sub_id, "unsubscribed")
    assert event["source"] == "one-click"
    assert event["details"]["method"] == "one-click"
    assert event["details"]["actor"] == "mailbox_provider"
    assert (event["ip"], event["user_agent"]) == ("209.85.220.41", "GoogleOneClick/1.0")
    assert detail(client, account, sub_id)["unsubscribed_at"] == event["at"]


@pytest.mark.parametrize("name", CORPUS_REQUESTS)
def test_rfc8058_requests_over_real_http(client, account, subscriber, live_server, name):
    """Over a real HTTP connection, the corpus request with its own headers and body unsubscribes: 2xx,
    no Location, no Set-Cookie."""
    _, sub_id, path = subscriber()
    request = load_request(name)
    host = urlsplit(live_server.url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
    try:
        conn.putrequest("POST", path, skip_host=True, skip_accept_encoding=True)
        for header, value in request.headers.items():
            conn.putheader(header, value)
        conn.endheaders(request.body)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200, body[:300]
    assert response.getheader("Location") is None
    assert response.getheader("Set-Cookie") is None
    assert b"You are unsubscribed" in body
    assert _status(client, account, sub_id) == "unsubscribed"


@pytest.mark.parametrize("body,content_type", [
    (b"", None),
    (b"", "application/x-www-form-urlencoded"),
    (b"", "multipart/form-data"),
    (ONE_CLICK, None),
    (ONE_CLICK, "text/plain"),
    (ONE_CLICK, "application/x-www-form-urlencoded; charset=utf-8"),
    (ONE_CLICK, "application/json"),
    (b"List-Unsubscribe=Something-Else", "application/x-www-form-urlencoded"),
    (b"\xff\xfe%%%=&&==", "application/x-www-form-urlencoded"),
    (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
    (b"List-Unsubscribe=One-Click&" + b"x" * (1024 * 1024 + 10), "application/x-www-form-urlencoded"),
], ids=["empty-no-type", "empty-form", "empty-multipart-no-boundary", "no-type", "text-plain",
        "charset-param", "json", "other-value", "garbage-form", "broken-multipart", "over-max-content-length"])
def test_any_post_body_to_a_genuine_link_unsubscribes(client, account, subscriber, body, content_type):
    """The token is the authority: an empty, odd, malformed or oversized body still unsubscribes (2xx),
    never 400, 413 or 415."""
    _, sub_id, path = subscriber()
    response = client.post(path, data=body, content_type=content_type)
    _assert_unsubscribed_answer(response)
    assert _status(client, account, sub_id) == "unsubscribed"
    assert [e["details"]["method"] for e in events(client, account, sub_id, "unsubscribed")] == ["one-click"]


def test_one_click_never_stops_other_lists_whatever_the_body_says(client, account, subscriber, create_list):
    """Only our page's form may stop all mail: a provider body carrying ``all_lists`` removes just this list (A12)."""
    _, sub_id, path = subscriber()
    other_sub = subscriber(lst=create_list(name="Offers"))[1]
    response = client.post(path, data=ONE_CLICK + b"&all_lists=1&reason=too_many",
                           content_type="application/x-www-form-urlencoded")
    _assert_unsubscribed_answer(response)
    assert _status(client, account, other_sub) == "subscribed"
    (event,) = events(client, account, sub_id, "unsubscribed")
    assert event["details"] == {"method": "one-click", "actor": "mailbox_provider", "scope": "list"}


def test_repeat_posts_answer_the_same_and_record_once(client, account, subscriber):
    """Providers retry: every repeat answers 200 with the same page and no second event."""
    _, sub_id, path = subscriber()
    answers = [client.post(path, data=ONE_CLICK, content_type="application/x-www-form-urlencoded")
               for _ in range(3)]
    for response in answers:
        _assert_unsubscribed_answer(response)
    assert answers[0].data == answers[2].data
    assert len(events(client, account, sub_id, "unsubscribed")) == 1


def test_no_per_ip_rate_limit_on_one_click(app, client, account, subscriber):
    """Provider POSTs come from few shared IPs, so even a tight form limit never answers 429 there."""
    app.config["FORM_RATE_LIMIT"] = "1 per minute"
    paths = [subscriber(email=f"reader{i}@example.com")[2] for i in range(3)]
    for path in paths * 3:
        response = client.post(path, data=ONE_CLICK, content_type="application/x-www-form-urlencoded",
                               environ_base={"REMOTE_ADDR": "209.85.220.41"})
        assert response.status_code == 200


def test_unparsable_forwarded_ip_does_not_block_the_opt_out(make_app, app_config, account):
    """Behind a trusted proxy, a forged X-Forwarded-For that is no IP is dropped; one-click and the API's
    DELETE still unsubscribe."""
    app_config["TRUSTED_PROXIES"] = 1
    app = make_app(app_config)  # same database as the ``account`` fixture's app, with ProxyFix
    client = app.test_client()
    lst = client.post("/api/v1/lists", headers=account.headers, json={
        "name": "N", "sender_name": "S", "sender_email": "news@acme.example", "consent_text": "Yes."}).json
    ids = [client.post(f"/api/v1/lists/{lst['id']}/subscriptions", headers=account.headers,
                       json={"email": email}).json["subscription"]["id"]
           for email in ("reader@example.com", "other@example.com")]
    forged = {"X-Forwarded-For": "not-an-ip"}
    assert client.post(unsubscribe_path(client, account, ids[0]), headers=forged).status_code == 200
    deleted = client.delete(f"/api/v1/subscriptions/{ids[1]}", headers={**account.headers, **forged})
    assert deleted.status_code == 200 and deleted.json["status"] == "unsubscribed"
    for sub_id in ids:
        (event,) = events(client, account, sub_id, "unsubscribed")
        assert event["ip"] is None


# --- GET and HEAD are safe -------------------------------------------------------------------

def test_get_and_head_change_nothing(app, client, account, subscriber):
    """Scanners fetch links: GET and HEAD show the page and leave state, events, suppressions and outbox untouched."""
    _, sub_id, path = subscriber()
    before = snapshot(app)
    for _ in range(3):
        page = client.get(path, headers={"User-Agent": "Scanner/1.0"})
        assert page.status_code == 200
        assert client.head(path).status_code == 200
    assert snapshot(app) == before
    assert _status(client, account, sub_id) == "subscribed"
    assert b'method="post"' in page.data and f'action="{path}"'.encode() in page.data
    assert b"Weekly News" in page.data


def test_page_shows_only_a_masked_address(client, subscriber):
    """The page may hint whose subscription it is, never show the whole address."""
    _, _, path = subscriber(email="Reader@Example.com")
    text = client.get(path).get_data(as_text=True)
    assert "R•••@example.com" in text
    assert "Reader@example.com" not in text and "eader@" not in text


# --- no redirects anywhere on a token URL (K2) -------------------------------------------------

def test_no_public_token_url_answers_a_redirect(client, subscribe, create_list, worker, maildir, subscriber):
    """Token URLs are rules without a trailing slash: the slashed form is 404, never a 308 redirect."""
    _, _, path = subscriber()
    mail = maildir()[-1]
    confirm_path = "/confirm/" + token_of(link_from(mail, "confirm"))
    not_me_path = "/not-me/" + token_of(link_from(mail, "not-me"))
    for method in ("GET", "HEAD", "POST"):
        response = client.open(path + "/", method=method)
        assert response.status_code == 404, (method, response.status_code)
        assert "Location" not in response.headers
    for url in (path, confirm_path, not_me_path):
        for variant in (url, url + "/"):
            response = client.get(variant)
            assert not 300 <= response.status_code < 400, (variant, response.status_code)
            assert "Location" not in response.headers
    post = client.post(path)
    assert post.status_code == 200 and "Location" not in post.headers


# --- tokens: wrong purpose, forged, garbage --------------------------------------------------

def _foreign_tokens(app, sub_id, mail):
    signer = Signer((SECRET,))
    return {
        "confirm": token_of(link_from(mail, "confirm")),
        "not-me": token_of(link_from(mail, "not-me")),
        "forward": signer.dumps(Purpose.FORWARD, [sub_id]),
        "forward-untimed": signer.dumps_untimed(Purpose.FORWARD, [sub_id]),
        "unsubscribe-timed": signer.dumps(Purpose.UNSUBSCRIBE, [sub_id]),
        "other-key": Signer(("an-unlisted-key",)).dumps_untimed(Purpose.UNSUBSCRIBE, [sub_id]),
        "mailto-token": signer.dumps_compact(Purpose.UNSUBSCRIBE, [sub_id]),
    }


def test_tokens_of_other_purposes_are_refused_with_a_friendly_page(app, client, account, subscriber, maildir):
    """A confirm, cancel or forward token (or one signed with an unlisted key) is a 404 page and changes nothing."""
    _, sub_id, _ = subscriber()
    before = snapshot(app)
    for kind, token in _foreign_tokens(app, sub_id, maildir()[-1]).items():
        for method in ("GET", "POST"):
            response = client.open(f"/unsubscribe/{token}", method=method, data=ONE_CLICK,
                                   content_type="application/x-www-form-urlencoded")
            assert response.status_code == 404, (kind, method)
            assert b"This unsubscribe link is not valid" in response.data, kind
            assert response.mimetype == "text/html"
    assert snapshot(app) == before
    assert _status(client, account, sub_id) == "subscribed"


def _signed_untimed(payload):
    from itsdangerous import URLSafeSerializer

    return URLSafeSerializer([SECRET], salt="flexmail.unsubscribe.untimed").dumps(payload)


@pytest.mark.parametrize("token", [
    "x", "A" * 5000, "%00", "%ff%fe", "ünsubscribe", "WzFd.", ".", "..", "a.b.c",
    "WzEyM10.AAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "__SIGNED_THREE_IDS__", "__SIGNED_DICT__", "__SIGNED_NEGATIVE__", "__SIGNED_STRING__", "__SIGNED_EMPTY__",
], ids=["short", "huge", "nul", "bad-utf8", "unicode", "payload-only", "dot", "dots", "three-parts",
        "forged-signature", "three-ids", "dict", "negative-id", "string-id", "empty-list"])
def test_garbage_tokens_get_a_friendly_4xx_never_a_500(app, client, subscriber, token):
    """Cut, forged or nonsensical tokens answer a 4xx HTML page on GET and POST, and change nothing."""
    subscriber()
    specials = {"__SIGNED_THREE_IDS__": [1, 2, 3], "__SIGNED_DICT__": {"id": 1}, "__SIGNED_NEGATIVE__": [-1],
                "__SIGNED_STRING__": ["1"], "__SIGNED_EMPTY__": []}
    if token in specials:
        token = _signed_untimed(specials[token])
    before = snapshot(app)
    for method in ("GET", "POST", "HEAD"):
        response = client.open(f"/unsubscribe/{token}", method=method)
        assert 400 <= response.status_code < 500, (method, response.status_code)
        if method != "HEAD":
            assert b"not valid" in response.data or b"Page not found" in response.data
    undo = _undo(client, f"/unsubscribe/{token}")
    assert 400 <= undo.status_code < 500
    assert snapshot(app) == before


def test_genuine_link_of_a_vanished_subscription_answers_200(app, client, subscriber):
    """A correctly signed link whose subscription no longer exists still answers 200 (nothing to stop)."""
    subscriber()
    token = Signer((SECRET,)).dumps_untimed(Purpose.UNSUBSCRIBE, [987654])
    before = snapshot(app)
    assert client.get(f"/unsubscribe/{token}").status_code == 200
    response = client.post(f"/unsubscribe/{token}", data=ONE_CLICK, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and b"no mail through this link" in response.data
    assert snapshot(app) == before


def test_links_survive_key_rotation_and_erasure(app, client, account, subscriber):
    """A link keeps working while its key is still listed, and after the person's address was erased."""
    _, sub_id, path = subscriber()
    app.config["SECRET_KEYS"] = ["a-newer-key", SECRET]
    assert unsubscribe_path(client, account, sub_id) != path  # new links use the newest key
    from flexmail.extensions import db
    from flexmail.models import Subscription

    with app.app_context():
        db.session.get(Subscription, sub_id).email = None  # what an erasure leaves
        db.session.commit()
    page = client.get(path)
    assert page.status_code == 200 and b"\xe2\x80\xa2" not in page.data  # no masked address left to show
    _assert_unsubscribed_answer(client.post(path))
    assert _status(client, account, sub_id) == "unsubscribed"
    app.config["SECRET_KEYS"] = ["a-newer-key"]
    assert client.post(path).status_code == 404


# --- the page: this list, all lists, reasons ---------------------------------------------------

def test_page_form_unsubscribes_this_list_with_method_page_and_reason(client, account, subscriber, create_list):
    """The page's form records method ``page`` and the chosen reason; the marketer sees only counts."""
    lst, sub_id, path = subscriber()
    response = client.post(path, data={"via": "page", "reason": "too_many"},
                           headers={"User-Agent": "Person/1.0"}, environ_base={"REMOTE_ADDR": "198.51.100.9"})
    _assert_unsubscribed_answer(response)
    assert b"Weekly News" in response.data and b'id="undo-form"' in response.data
    (event,) = events(client, account, sub_id, "unsubscribed")
    assert event["details"] == {"method": "page", "actor": "recipient", "scope": "list", "reason": "too_many"}
    assert (event["ip"], event["user_agent"]) == ("198.51.100.9", "Person/1.0")
    reasons = client.get(f"/api/v1/lists/{lst['id']}/unsubscribe-reasons", headers=account.headers)
    assert reasons.status_code == 200
    assert reasons.json == {"list_id": lst["id"], "unsubscribes": 1, "no_reason": 0,
                            "reasons": {"too_many": 1, "not_relevant": 0, "never_signed_up": 0, "other": 0}}
    assert "email" not in reasons.get_data(as_text=True)


def test_unknown_reason_and_flag_values_are_ignored_not_refused(client, account, subscriber, create_list):
    """A reason outside the list is dropped and a malformed all-lists flag means this list only; the
    unsubscribe still happens."""
    lst, sub_id, path = subscriber()
    other = create_list(name="Offers")
    client_other = subscriber(lst=other)[1]
    response = client.post(path, data={"via": "page", "reason": "<script>x</script>", "all_lists": "yes"})
    _assert_unsubscribed_answer(response)
    (event,) = events(client, account, sub_id, "unsubscribed")
    assert "reason" not in event["details"] and event["details"]["scope"] == "list"
    assert _status(client, account, client_other) == "subscribed"
    counts = client.get(f"/api/v1/lists/{lst['id']}/unsubscribe-reasons", headers=account.headers).json
    assert counts["no_reason"] == 1 and sum(counts["reasons"].values()) == 0


def test_stop_all_mail_from_this_sender(client, account, subscriber, create_list, subscribe, create_account):
    """"Stop all mail" unsubscribes every list of the account and suppresses the address there, not elsewhere."""
    lst, sub_id, path = subscriber()
    other_list = create_list(name="Offers")
    other_sub = subscriber(lst=other_list)[1]
    response = client.post(path, data={"via": "page", "all_lists": "1", "reason": "not_relevant"})
    assert response.status_code == 200 and b"no more mail from Acme News" in response.data
    assert _status(client, account, sub_id) == "unsubscribed"
    assert _status(client, account, other_sub) == "unsubscribed"
    (via_other,) = events(client, account, other_sub, "unsubscribed")
    assert via_other["details"]["scope"] == "account" and via_other["details"]["via_subscription"] == sub_id
    (suppressed,) = events(client, account, sub_id, "suppressed")
    assert suppressed["details"]["reason"] == "unsubscribed" and suppressed["details"]["scope"] == "account"
    third = create_list(name="Events")
    refused = subscribe(third["id"], email="reader@example.com")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "suppressed"
    # Another marketer is not affected by this account's suppression.
    elsewhere = create_account("Other marketer")
    foreign = create_list(acct=elsewhere)
    assert subscribe(foreign["id"], email="reader@example.com", acct=elsewhere).status_code == 202
    # Repeating it adds no second suppression event.
    client.post(path, data={"via": "page", "all_lists": "1"})
    assert len(events(client, account, sub_id, "suppressed")) == 1


def test_page_of_an_unsubscribed_link_offers_stop_all_and_no_change_on_get(app, client, subscriber):
    """After unsubscribing, the page says so and still offers "stop all mail"; viewing it changes nothing."""
    _, _, path = subscriber()
    client.post(path)
    before = snapshot(app)
    page = client.get(path)
    assert page.status_code == 200 and b"You are not subscribed" in page.data
    assert b'name="all_lists" value="1" id="all-lists" checked' in page.data
    assert snapshot(app) == before


# --- undo: always a new double opt-in --------------------------------------------------------

def test_undo_sends_a_fresh_confirmation_and_only_its_click_resubscribes(client, account, subscriber, worker, maildir):
    """Undo makes the subscription pending with a new confirmation mail; only that mail's link subscribes again."""
    _, sub_id, path = subscriber()
    client.post(path, data={"via": "page"})
    undo = _undo(client, path, "198.51.100.9")
    assert undo.status_code == 200 and b"Check your inbox" in undo.data
    assert _status(client, account, sub_id) == "pending"
    worker.drain()
    mails = maildir()
    assert len(mails) == 2
    requested = events(client, account, sub_id, "subscribe_requested")[-1]
    assert requested["source"] == "undo" and requested["ip"] == "198.51.100.9"
    confirm = client.post("/confirm/" + token_of(link_from(mails[-1], "confirm")), data={"method": "button"})
    assert confirm.status_code == 200
    assert _status(client, account, sub_id) == "subscribed"
    again = _undo(client, path)
    assert again.status_code == 200 and b"You are subscribed" in again.data


def test_undo_after_stop_all_keeps_the_stop_until_the_new_confirmation(app, client, account, subscriber,
                                                                       create_list, subscribe, worker, maildir):
    """Undo after "stop all" sends a fresh confirmation despite the stop; only its click lifts the stop,
    and the other lists stay unsubscribed."""
    app.config["CONFIRM_PER_ADDRESS_PER_DAY"] = 10
    _, sub_id, path = subscriber()
    other_sub = subscriber(lst=create_list(name="Offers"))[1]
    third = create_list(name="Events")
    client.post(path, data={"via": "page", "all_lists": "1"})
    assert _undo(client, path).status_code == 200
    assert _status(client, account, sub_id) == "pending"
    assert subscribe(third["id"], email="reader@example.com").status_code == 409  # still stopped
    worker.drain()
    mail = maildir()[-1]
    assert mail["Subject"] == "Please confirm your subscription to Weekly News"
    client.post("/confirm/" + token_of(link_from(mail, "confirm")), data={"method": "button"})
    assert _status(client, account, sub_id) == "subscribed"
    assert _status(client, account, other_sub) == "unsubscribed"
    (lifted,) = events(client, account, sub_id, "unsuppressed")
    assert lifted["details"]["reason"] == "unsubscribed"
    assert subscribe(third["id"], email="reader@example.com").status_code == 202


def test_undo_over_the_flood_limit_is_429_and_keeps_the_suppression(app, client, account, subscriber, create_list,
                                                                    subscribe):
    """When no more confirmation mail may go to the address today, undo answers 429 and nothing changes."""
    app.config["CONFIRM_PER_ADDRESS_PER_DAY"] = 1
    _, sub_id, path = subscriber()
    client.post(path, data={"via": "page", "all_lists": "1"})
    before = snapshot(app)
    undo = _undo(client, path)
    assert undo.status_code == 429 and int(undo.headers["Retry-After"]) > 0
    assert b"try again later" in undo.data
    assert snapshot(app) == before
    assert subscribe(create_list(name="Third")["id"], email="reader@example.com").status_code == 409


def test_undo_for_an_erased_person_is_not_possible(app, client, account, subscriber):
    """Without an address nothing can be confirmed again: undo explains and changes nothing."""
    _, sub_id, path = subscriber()
    client.post(path)
    from flexmail.extensions import db
    from flexmail.models import Subscription

    with app.app_context():
        db.session.get(Subscription, sub_id).email = None
        db.session.commit()
    before = snapshot(app)
    undo = _undo(client, path)
    assert undo.status_code == 200 and b"cannot subscribe you again" in undo.data
    assert snapshot(app) == before


def test_undo_is_refused_while_a_suppression_the_person_cannot_lift_stands(app, client, account, subscriber):
    """A complaint entry (not the person's own "stop all") keeps the address out: undo explains and changes nothing."""
    _, sub_id, path = subscriber()
    client.post(path)
    from flexmail.extensions import db
    from flexmail.models import Suppression
    from flexmail.services.platform.context import hash_address

    with app.app_context():
        db.session.add(Suppression(account_id=account.id, address_hash=hash_address("reader@example.com"),
                                   reason="complaint", source="test"))
        db.session.commit()
    before = snapshot(app)
    undo = _undo(client, path)
    assert undo.status_code == 200 and b"cannot subscribe you again" in undo.data
    assert snapshot(app) == before
    assert _status(client, account, sub_id) == "unsubscribed"


def test_undo_has_the_hosted_form_rate_limit(app, client, subscriber):
    """Undo sends mail, so one IP gets 429 after the form limit."""
    app.config["FORM_RATE_LIMIT"] = "2 per minute"
    _, _, path = subscriber()
    client.post(path)
    ip = f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"
    codes = [_undo(client, path, ip).status_code for _ in range(3)]
    assert codes[-1] == 429


# --- pending signups, the outbox, and signing up again --------------------------------------

def test_unsubscribing_a_pending_signup_skips_its_queued_confirmation(app, request, client, account, create_list,
                                                                     subscribe, maildir):
    """A confirmation still in the outbox when the person unsubscribes is skipped, never sent."""
    lst = create_list()
    sub_id = subscribe(lst["id"]).json["subscription"]["id"]
    path = unsubscribe_path(client, account, sub_id)
    _assert_unsubscribed_answer(client.post(path))
    assert [status for _, status in snapshot(app)[3]] == ["skipped"]
    request.getfixturevalue("worker").drain()  # only now may the queued message run
    assert maildir() == []
    assert _status(client, account, sub_id) == "unsubscribed"


def test_unsubscribed_address_gets_no_mail_and_comes_back_only_through_a_new_opt_in(
        client, account, subscriber, subscribe, worker, maildir):
    """After unsubscribing, a marketer's API call starts a new double opt-in (pending, mail), within the flood limit."""
    lst, sub_id, path = subscriber()
    client.post(path)
    again = subscribe(lst["id"], email="reader@example.com")
    assert again.status_code == 202
    assert again.json["subscription"]["status"] == "pending" and again.json["confirmation_queued"] is True
    worker.drain()
    assert len(maildir()) == 2
    assert _status(client, account, sub_id) == "pending"
    codes = [subscribe(lst["id"], email="reader@example.com").status_code for _ in range(2)]
    assert codes == [202, 429]


# --- the API ------------------------------------------------------------------------------------

def test_api_detail_gives_url_and_header_values(client, account, subscriber):
    """GET /api/v1/subscriptions/<id> returns the URL and both header values, ready to paste."""
    _, sub_id, _ = subscriber()
    body = detail(client, account, sub_id)
    url = body["unsubscribe_url"]
    assert url.startswith("http://flexmail.test/unsubscribe/") and not url.endswith("/")
    assert body["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
    first, second = body["list_unsubscribe"].split(", ")
    assert first == f"<{url}>"
    assert second.startswith("<mailto:unsub-") and second.endswith("@flexmail.test?subject=unsubscribe>")
    assert "reader" not in body["list_unsubscribe"].lower()


def test_campaign_links_name_the_campaign(client, account, subscriber):
    """With ``campaign_id`` the link names the campaign too, and the unsubscribe event records it."""
    _, sub_id, plain = subscriber()
    path = unsubscribe_path(client, account, sub_id, campaign_id=42)
    assert path != plain
    client.post(path)
    (event,) = events(client, account, sub_id, "unsubscribed")
    assert event["details"]["campaign_id"] == 42


@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5"])
def test_bad_campaign_id_is_422(client, account, subscriber, value):
    """A campaign id that is not a positive integer is refused with the field named."""
    _, sub_id, _ = subscriber()
    response = client.get(f"/api/v1/subscriptions/{sub_id}", headers=account.headers,
                          query_string={"campaign_id": value})
    assert response.status_code == 422 and "campaign_id" in response.json["error"]["fields"]


def test_api_delete_unsubscribes_with_source_api(client, account, subscriber, create_account):
    """DELETE records an ``api`` unsubscribe at once; repeats change nothing; other accounts get 404."""
    _, sub_id, _ = subscriber()
    other = create_account("Other marketer")
    assert client.delete(f"/api/v1/subscriptions/{sub_id}", headers=other.headers).status_code == 404
    assert client.delete("/api/v1/subscriptions/999999", headers=account.headers).status_code == 404
    assert client.delete(f"/api/v1/subscriptions/{sub_id}").status_code == 401
    first = client.delete(f"/api/v1/subscriptions/{sub_id}", headers=account.headers)
    assert first.status_code == 200 and first.json["status"] == "unsubscribed"
    assert first.json["unsubscribed_at"] is not None
    second = client.delete(f"/api/v1/subscriptions/{sub_id}", headers=account.headers)
    assert second.status_code == 200 and second.json == first.json
    (event,) = events(client, account, sub_id, "unsubscribed")
    assert event["source"] == "api" and event["details"]["method"] == "api"
    assert event["details"]["actor"] == "marketer" and event["details"]["api_key_id"]


def test_reasons_of_another_accounts_list_are_404(client, account, create_list, create_account):
    """The aggregate is per account: another marketer's list is simply not found."""
    lst = create_list()
    other = create_account("Other marketer")
    response = client.get(f"/api/v1/lists/{lst['id']}/unsubscribe-reasons", headers=other.headers)
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"


def test_one_click_answer_is_the_outcome_only(client, account, subscriber):
    """A provider's one-click POST gets a small answer (no branding, no undo form: no person
    reads it); the page's own form still gets the full page with the undo."""
    _, _, path = subscriber()
    response = client.post(path, data=ONE_CLICK, content_type="application/x-www-form-urlencoded")
    _assert_unsubscribed_answer(response)
    assert b"Weekly News" in response.data
    assert b'id="undo-form"' not in response.data and b"<footer" not in response.data
    page = client.post(path, data={"via": "page"})
    assert b'id="undo-form"' in page.data


def test_hot_endpoints_skipped_by_the_ip_limiter_exist_and_limited_ones_are_not_skipped(app):
    """``guards.UNLIMITED_ENDPOINTS`` names real endpoints (a rename would silently drop the
    skip), and none of the views that carry a per-IP limit is among them."""
    from flexmail.guards import UNLIMITED_ENDPOINTS

    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert UNLIMITED_ENDPOINTS <= endpoints
    assert not UNLIMITED_ENDPOINTS & {"public.unsubscribe_undo", "public.subscribe_submit", "public.forward_submit"}
