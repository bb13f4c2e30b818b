"""The public forward page: the form, what a POST sends and counts, and what it refuses."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from flexmail import clock
from tests.forward_support import (
    FRIENDS,
    csrf_token,
    mails_to,
    post_forward,
    setup_forwarding,
    stats,
    subscription_count,
    suppress,
)
from tests.helpers import link_from, token_of


@pytest.fixture
def fwd(client, account, create_list, subscribe, worker, maildir):
    """A confirmed subscriber's forward link for a web-link campaign."""
    return setup_forwarding(client, account, create_list, subscribe, worker, maildir)


def _forward_mails(maildir):
    return [m for m in maildir() if m["Subject"].startswith("Fwd:")]


def test_get_shows_the_form_and_never_counts(client, account, fwd):
    """GET and HEAD show a form for five friends with CSRF and honeypot, under a strict CSP, and count nothing."""
    for _ in range(3):
        page = client.get(fwd.path)
        assert page.status_code == 200 and "Location" not in page.headers
        assert client.head(fwd.path).status_code == 200
    html = page.data.decode()
    assert html.count('name="friend"') == 5
    assert 'name="csrf_token"' in html and 'name="website"' in html
    assert "<script" not in html and "style=" not in html
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    assert "Our autumn news" in html
    assert stats(client, account, fwd.campaign_id) == {"forwards": 0, "forwarded_recipients": 0}


def test_post_mails_each_friend_once_from_the_list_sender(client, account, fwd, worker, maildir):
    """A POST sends one mail per friend from the list's sender, with name, note, web link, the
    "not added" line and the opt-out link, and no List-Unsubscribe; the stats count it."""
    before = subscription_count(client.application)
    response = post_forward(client, fwd.path, FRIENDS[:2] + (FRIENDS[0].lower(),), name="Ann Example",
                            note="Thought you would like this!")
    assert response.status_code == 200
    assert b"on its way" in response.data
    worker.drain()
    mails = _forward_mails(maildir)
    assert len(mails) == 2  # the third field repeated the first friend in another case
    for friend in FRIENDS[:2]:
        (mail,) = mails_to(mails, friend)
        assert mail["From"].addresses[0].addr_spec == "news@acme.example"
        assert mail["From"].addresses[0].display_name == "Acme News"
        assert mail["Subject"] == "Fwd: Our autumn news"
        assert "Reply-To" not in mail or friend.lower() not in mail["Reply-To"].lower()
        for header in ("List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"):
            assert header not in mail
        text = mail.get_body(("plain",)).get_content()
        assert "Ann Example forwarded you this message from Acme News" in text
        assert "Thought you would like this!" in text
        assert "https://acme.example/news/autumn" in text
        assert "You have not been added to any list" in text
        assert link_from(mail, "forward").endswith("/stop")
        html = mail.get_body(("html",)).get_content()
        assert "You have not been added to any list" in html and "/stop" in html
    assert stats(client, account, fwd.campaign_id) == {"forwards": 1, "forwarded_recipients": 2}
    assert subscription_count(client.application) == before  # friends are on no list


def test_suppressed_friend_is_not_mailed_and_the_answer_is_identical(app, client, account, fwd, worker, maildir):
    """Friends suppressed for the account or globally get nothing; the page is byte-for-byte the same."""
    suppress(app, account.id, FRIENDS[1])
    suppress(app, None, FRIENDS[2], reason="complaint")
    clean = post_forward(client, fwd.path, [FRIENDS[0]])
    dropped = post_forward(client, fwd.path, [FRIENDS[1], FRIENDS[2]])
    assert clean.status_code == dropped.status_code == 200
    assert clean.data == dropped.data
    worker.drain()
    mails = _forward_mails(maildir)
    assert [m["To"].addresses[0].addr_spec for m in mails] == ["Zq.Friend.Alpha@example.net"]
    assert stats(client, account, fwd.campaign_id) == {"forwards": 2, "forwarded_recipients": 1}


def test_more_than_five_friends_is_422(client, account, fwd, worker, maildir):
    """Six addresses are refused with 422 and nothing is sent or counted."""
    friends = [f"zq.six.{n}@example.com" for n in range(6)]
    response = post_forward(client, fwd.path, friends)
    assert response.status_code == 422
    assert b"At most 5 addresses" in response.data
    worker.drain()
    assert _forward_mails(maildir) == []
    assert stats(client, account, fwd.campaign_id)["forwards"] == 0


def test_invalid_address_error_names_the_position_not_the_address(client, account, fwd, worker, maildir):
    """An invalid address is a 422 that says which field, and the page echoes no address typed."""
    bad = "zq.not-an-address@@example.com"
    response = post_forward(client, fwd.path, [FRIENDS[0], bad, "zq.injected@example.com\r\nBcc: x@example.com"],
                            note="see zq.note.addr@example.com")
    assert response.status_code == 422
    body = response.data.decode()
    assert "Address 2 is not valid." in body and "Address 3 is not valid." in body
    for typed in (bad, FRIENDS[0].lower(), "zq.friend.alpha", "zq.injected", "zq.note.addr"):
        assert typed.lower() not in body.lower()
    worker.drain()
    assert _forward_mails(maildir) == []


def test_fourth_forward_of_a_link_in_a_day_is_429_until_tomorrow(client, account, fwd, worker, maildir):
    """A link forwards at most three times a UTC day (429 with Retry-After), then again the next day."""
    codes = [post_forward(client, fwd.path, [FRIENDS[0]]).status_code for _ in range(3)]
    limited = post_forward(client, fwd.path, [FRIENDS[1]])
    assert codes == [200, 200, 200] and limited.status_code == 429
    assert 0 < int(limited.headers["Retry-After"]) <= 86_401
    assert stats(client, account, fwd.campaign_id) == {"forwards": 3, "forwarded_recipients": 3}
    clock.freeze(clock.now() + dt.timedelta(days=1))
    assert post_forward(client, fwd.path, [FRIENDS[1]]).status_code == 200
    worker.drain()
    assert len(_forward_mails(maildir)) == 4


def test_per_ip_rate_limit_answers_429(app, client, fwd):
    """The POST is rate-limited per client IP (Flask-Limiter); another IP may still post."""
    app.config.update(FORWARD_RATE_LIMIT="2 per minute", FORWARD_PER_TOKEN_PER_DAY=10)
    codes = [post_forward(client, fwd.path, [FRIENDS[0]]).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    other = post_forward(client, fwd.path, [FRIENDS[0]], environ={"REMOTE_ADDR": "198.51.100.9"})
    assert other.status_code == 200


def test_honeypot_gets_the_same_answer_and_sends_nothing(client, account, fwd, worker, maildir):
    """A filled honeypot answers exactly like a real forward, but nothing is sent or counted."""
    real = post_forward(client, fwd.path, [FRIENDS[0]])
    trapped = post_forward(client, fwd.path, [FRIENDS[1]], website="http://spam.example")
    assert trapped.status_code == 200 and trapped.data == real.data
    worker.drain()
    assert [m["To"].addresses[0].addr_spec for m in _forward_mails(maildir)] == ["Zq.Friend.Alpha@example.net"]
    assert stats(client, account, fwd.campaign_id)["forwards"] == 1


def test_post_without_csrf_token_is_refused(client, account, fwd, worker, maildir):
    """Another site cannot make a visitor's browser forward: without the CSRF token the POST is 400."""
    response = client.post(fwd.path, data={"friend": [FRIENDS[0]], "sender_name": "x"})
    assert response.status_code == 400
    worker.drain()
    assert _forward_mails(maildir) == []
    assert stats(client, account, fwd.campaign_id)["forwards"] == 0


def test_only_confirmed_subscribers_links_work(client, account, fwd, subscribe, worker):
    """A pending subscriber's link, an unsubscribed one's, a tampered and a wrong-purpose token are 404 pages."""
    pending = subscribe(fwd.list_id, email="zq.pending@example.com").json["subscription"]["id"]
    worker.drain()
    from tests.forward_support import forward_url

    pending_path = "/forward/" + token_of(forward_url(client, account, pending, fwd.campaign_id))
    assert client.get(pending_path).status_code == 404
    unsubscribe_token = token_of(client.get(f"/api/v1/subscriptions/{fwd.subscription_id}",
                                            headers=account.headers).json["unsubscribe_url"])
    for path in (fwd.path[:-4] + "abcd", f"/forward/{unsubscribe_token}"):
        assert client.get(path).status_code == 404
    page = client.get(fwd.path)
    assert client.delete(f"/api/v1/subscriptions/{fwd.subscription_id}", headers=account.headers).status_code == 200
    assert client.get(fwd.path).status_code == 404
    posted = client.post(fwd.path, data={"csrf_token": csrf_token(page.data), "friend": [FRIENDS[0]]})
    assert posted.status_code == 404
    assert stats(client, account, fwd.campaign_id)["forwards"] == 0


def test_link_expires_after_ninety_days(client, fwd):
    """The forward link lives FLEXMAIL_FORWARD_MAX_AGE (90 days), then says it expired (410)."""
    clock.freeze(clock.now() + dt.timedelta(days=89))
    assert client.get(fwd.path).status_code == 200
    clock.freeze(clock.now() + dt.timedelta(days=2))
    expired = client.get(fwd.path)
    assert expired.status_code == 410 and b"expired" in expired.data


def test_campaign_of_another_list_has_no_forward_link(client, account, fwd, create_list):
    """A campaign of another list gives the subscriber no forward_url, and a forged pair is refused."""
    from flexmail.domain.tokens import Purpose
    from flexmail.services.platform.context import signer
    from tests.forward_support import create_campaign, forward_url

    other = create_campaign(client, account, create_list(name="Other list")["id"])
    assert forward_url(client, account, fwd.subscription_id, other["id"]) is None
    with client.application.app_context():
        forged = signer().dumps(Purpose.FORWARD, [fwd.subscription_id, other["id"]])
    assert client.get(f"/forward/{forged}").status_code == 404


@pytest.mark.parametrize("name", ["Ann\r\nBcc: victim@example.com", "Ann\nX: y", "A" * 65])
def test_name_with_line_break_or_too_long_is_422(client, account, fwd, worker, maildir, name):
    """A sender name with CR/LF or over 64 characters is refused, so it can never inject a header."""
    response = post_forward(client, fwd.path, [FRIENDS[0]], name=name)
    assert response.status_code == 422
    assert b"The name must be on one line." in response.data or b"At most 64 characters." in response.data
    assert b"victim" not in response.data
    worker.drain()
    assert _forward_mails(maildir) == []


def test_note_over_512_characters_is_422(client, fwd):
    """A note longer than 512 characters is refused rather than cut."""
    assert post_forward(client, fwd.path, [FRIENDS[0]], note="x" * 513).status_code == 422
    assert post_forward(client, fwd.path, [FRIENDS[0]], note="x" * 512).status_code == 200


def test_note_and_name_are_plain_text_without_links(client, fwd, worker, maildir):
    """Links, addresses and HTML in the name and note never reach the friend; HTML is escaped."""
    note = ('Look: https://evil.example/x?y=1 and www.cheap-pills.example or evil.example/p '
            'or mail zq.other@example.com <a href="https://evil.example">click</a> <script>x()</script>')
    response = post_forward(client, fwd.path, [FRIENDS[0]], name="Visit bad.example now", note=note)
    assert response.status_code == 200
    worker.drain()
    (mail,) = _forward_mails(maildir)
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for part in (text, html):
        for forbidden in ("evil.example", "cheap-pills", "zq.other", "bad.example", "<script", "<a href=\"https://evil"):
            assert forbidden not in part, forbidden
    assert "[link removed]" in text and "Visit [link removed] now forwarded you" in text
    assert "Look: [link removed] and [link removed]" in text


def test_html_campaign_is_forwarded_sanitised(client, account, create_list, subscribe, worker, maildir):
    """The campaign's HTML goes to friends as stored, sanitised: its text and links stay, script does not."""
    fwd = setup_forwarding(client, account, create_list, subscribe, worker, maildir, web_url=None,
                           html='<h1 onclick="x()">Autumn &amp; more</h1><p style="color:red;position:fixed">'
                                'Hello <a href="https://acme.example/a">read</a></p><script>steal()</script>')
    assert post_forward(client, fwd.path, [FRIENDS[0]]).status_code == 200
    worker.drain()
    (mail,) = _forward_mails(maildir)
    html = mail.get_body(("html",)).get_content()
    assert "<h1>Autumn &amp; more</h1>" in html and 'href="https://acme.example/a"' in html
    assert 'style="color:red"' in html
    for forbidden in ("onclick", "<script", "steal()", "position"):
        assert forbidden not in html
    text = mail.get_body(("plain",)).get_content()
    assert "Autumn & more" in text and "Hello read" in text and "steal" not in text


def test_friend_can_opt_out_of_all_forwards(app, client, account, fwd, worker, maildir):
    """The friend's link (GET changes nothing, POST records) stops every later forward to them, silently."""
    assert post_forward(client, fwd.path, [FRIENDS[0]]).status_code == 200
    worker.drain()
    (mail,) = _forward_mails(maildir)
    stop_url = link_from(mail, "forward")
    stop_path = stop_url[stop_url.index("/forward/"):]
    token = stop_path.split("/")[2]
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    from flexmail.services.platform.context import hash_address

    with app.app_context():
        friend_hash = hash_address(FRIENDS[0])
    for needle in (b"zq.friend", b"alpha", b"example.net", friend_hash.encode(), bytes.fromhex(friend_hash)):
        assert needle not in raw.lower()
    from sqlalchemy import func, select

    from flexmail.extensions import db
    from flexmail.models import ForwardOptOut

    def opt_outs():
        with app.app_context():
            return db.session.scalar(select(func.count()).select_from(ForwardOptOut))

    assert client.get(stop_path).status_code == 200 and client.head(stop_path).status_code == 200
    assert opt_outs() == 0
    done = client.post(stop_path)
    assert done.status_code == 200 and b"not receive forwarded messages" in done.data
    assert client.post(stop_path).status_code == 200 and opt_outs() == 1
    assert client.get(stop_path[:-10] + "AAAA/stop").status_code == 404

    again = post_forward(client, fwd.path, [FRIENDS[0].upper(), FRIENDS[1]])
    assert again.status_code == 200
    worker.drain()
    assert len(mails_to(_forward_mails(maildir), FRIENDS[0])) == 1
    assert len(mails_to(_forward_mails(maildir), FRIENDS[1])) == 1
    # The opt-out blocks forwards only: the same person can still subscribe to a list.
    signup = client.post(f"/api/v1/lists/{fwd.list_id}/subscriptions", json={"email": FRIENDS[0]},
                         headers=account.headers)
    assert signup.status_code == 202


def test_public_forward_urls_never_redirect(client, fwd):
    """No forward URL answers 3xx (no trailing-slash redirect): links in mail work as they are."""
    for path in (fwd.path, fwd.path + "/stop"):
        response = client.get(path)
        assert response.status_code < 300 or response.status_code >= 400
        assert "Location" not in response.headers


def test_friend_at_a_suppressed_domain_is_not_mailed(app, client, account, fwd, worker, maildir):
    """A domain entry of the account blocks every friend at that domain, silently."""
    from flexmail.services.suppression import suppressions

    with app.app_context():
        suppressions.suppress(account.id, domains=["blocked.example"], reason="manual",
                              actor=suppressions.Actor("test"))
    blocked = post_forward(client, fwd.path, ["Zq.Someone@Blocked.Example"])
    fine = post_forward(client, fwd.path, [FRIENDS[0]])
    assert blocked.status_code == fine.status_code == 200 and blocked.data == fine.data
    worker.drain()
    assert [m["To"].addresses[0].addr_spec for m in _forward_mails(maildir)] == ["Zq.Friend.Alpha@example.net"]


def test_forward_mail_speaks_the_list_language(client, account, create_list, subscribe, worker, maildir):
    """A German list's forward goes out in German, with the same opt-out and no-list promise."""
    fwd = setup_forwarding(client, account, create_list, subscribe, worker, maildir,
                           list_overrides={"language": "de"})
    assert post_forward(client, fwd.path, [FRIENDS[0]], name="Anna").status_code == 200
    worker.drain()
    (mail,) = [m for m in maildir() if m["Subject"].startswith("WG:")]
    text = mail.get_body(("plain",)).get_content()
    assert mail["Subject"] == "WG: Our autumn news"
    assert "Anna hat Ihnen diese Nachricht von Acme News weitergeleitet" in text
    assert "Sie wurden in keine Liste eingetragen" in text and link_from(mail, "forward").endswith("/stop")
