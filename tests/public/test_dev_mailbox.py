"""The development mailbox at /dev/mail: present only in development mode with the Maildir
transport, lists and renders the sent mails safely, and names no file outside the Maildir."""

from __future__ import annotations

import datetime as dt
import mailbox
import os
import re
from email.message import EmailMessage
from pathlib import Path

import pytest

from flexmail import clock
from flexmail.services.delivery import dev_mailbox
from flexmail.services.platform.errors import NotFound
from flexmail.web import CSP

DEV = {"DEV_MODE": True}


@pytest.fixture
def app_config(app_config):
    return {**app_config, **DEV}


def _maildir_path(app) -> Path:
    return Path(app.config["MAIL_URL"].removeprefix("maildir:"))


def _store(app, message: EmailMessage) -> str:
    return mailbox.Maildir(_maildir_path(app), create=True).add(message.as_bytes())


def _mail(subject="Hello", html=None, text="Plain text https://example.org/a.", when=None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Sender <news@acme.example>"
    message["To"] = "reader@example.com"
    message["Subject"] = subject
    message["Date"] = when or dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def test_the_mailbox_lists_sent_mails_newest_first_and_shows_both_parts(app, client, create_list, subscribe, worker):
    """Two signups' confirmation mails are listed newest first (date, to, subject); a mail's page shows its
    text part with the confirm link clickable and frames its HTML part, whose links open in the top window."""
    lst = create_list(language="de")
    clock.freeze(dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC))
    assert subscribe(lst["id"], email="first@example.com").status_code == 202
    worker.drain()
    clock.freeze(dt.datetime(2026, 5, 1, 9, 5, tzinfo=dt.UTC))
    assert subscribe(lst["id"], email="second@example.com").status_code == 202
    worker.drain()

    page = client.get("/dev/mail")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.index("second@example.com") < html.index("first@example.com")
    assert "2026-05-01 09:05:00" in html and "2026-05-01 09:00:00" in html
    assert 'lang="de"' in html  # the subject keeps the mail's language
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Content-Security-Policy"] == CSP
    assert page.headers["X-Content-Type-Options"] == "nosniff" and page.headers["Referrer-Policy"] == "no-referrer"
    assert 'href="/static/flexmail.css"' in html  # the pages' own look

    first = re.findall(r'href="(/dev/mail/[^"]+)"', html)[0]
    message = client.get(first)
    assert message.status_code == 200
    body = message.get_data(as_text=True)
    assert "second@example.com" in body
    confirm = re.search(r'<a href="(http://flexmail\.test/confirm/[^"]+)">', body)
    assert confirm, "the confirm link of the text part is a link"
    csp = message.headers["Content-Security-Policy"]
    assert "frame-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    frame_url = re.search(r'<iframe class="mail-html" src="([^"]+)" sandbox="([^"]+)"', body)
    assert frame_url and "allow-scripts" not in frame_url.group(2) and "allow-same-origin" not in frame_url.group(2)

    frame = client.get(frame_url.group(1))
    assert frame.status_code == 200
    assert frame.headers["X-Content-Type-Options"] == "nosniff" and frame.headers["Cache-Control"] == "no-store"
    assert frame.headers["X-Frame-Options"] == "SAMEORIGIN"
    frame_csp = frame.headers["Content-Security-Policy"]
    assert "sandbox" in frame_csp and "script-src" not in frame_csp and "frame-ancestors 'self'" in frame_csp
    frame_html = frame.get_data(as_text=True)
    assert '<html lang="de">' in frame_html
    assert re.search(r'<a href="' + re.escape(confirm.group(1)) + r'"[^>]* target="_top"', frame_html)


def test_the_html_part_is_shown_without_anything_active(app, client):
    """A mail with script, event handlers, javascript: links, forms and frames is shown with none of them."""
    hostile = ('<html lang="fr"><body><script>alert(1)</script><p onclick="alert(2)">Bonjour</p>'
               '<a href="javascript:alert(3)">x</a><a href="https://example.org/ok">ok</a>'
               '<form action="https://evil.example"><input name="q"></form><iframe src="https://evil.example"></iframe>'
               '<img src="x" onerror="alert(4)"><style>body{display:none}</style></body></html>')
    key = _store(app, _mail(html=hostile))
    frame = client.get(f"/dev/mail/{key}/html").get_data(as_text=True)
    for active in ("<script", "alert(", "javascript:", "<form", "<iframe", "onerror", "onclick", "<style"):
        assert active not in frame, active
    assert '<a href="https://example.org/ok" target="_top" rel="noopener noreferrer">ok</a>' in frame
    assert '<html lang="fr">' in frame
    page = client.get(f"/dev/mail/{key}").get_data(as_text=True)
    assert '<a href="https://example.org/a">https://example.org/a</a>.' in page  # the text part's link, not its dot


def test_a_mail_without_html_part_has_no_frame(app, client):
    """A text-only mail is shown as text; its frame URL is a 404."""
    key = _store(app, _mail(text="Only text <b>not bold</b>"))
    page = client.get(f"/dev/mail/{key}").get_data(as_text=True)
    assert "<iframe" not in page and "Only text &lt;b&gt;not bold&lt;/b&gt;" in page
    assert client.get(f"/dev/mail/{key}/html").status_code == 404


@pytest.mark.parametrize("mail_id", ["..%2Fsecret", "..%2F..%2Fsecret", "%2e%2e", "..", ".",
                                     "new%2F..%2F..%2Fsecret", "..%5Csecret", "secret", "new", "cur", "tmp",
                                     "%00", "a" * 300])
def test_mail_ids_never_name_a_file_outside_the_maildir(app, client, mail_id):
    """Ids that are paths (encoded slashes, dot segments, backslashes), names of the Maildir's own folders
    and of a file beside it are all 404, for the page and its frame; the file's text is never shown."""
    _store(app, _mail())
    (_maildir_path(app).parent / "secret").write_text("TOP SECRET FILE")
    for url in (f"/dev/mail/{mail_id}", f"/dev/mail/{mail_id}/html"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "TOP SECRET" not in response.get_data(as_text=True)


def test_the_service_refuses_path_ids(app):
    """The service itself (not only the URL rule) finds no mail for a path-like id."""
    _store(app, _mail())
    (_maildir_path(app).parent / "secret").write_text("TOP SECRET FILE")
    with app.app_context():
        for mail_id in ("../secret", "../../secret", "new/../../secret", "/etc/passwd", "..", ""):
            with pytest.raises(NotFound):
                dev_mailbox.get_mail(mail_id)
        assert [m.to for m in dev_mailbox.list_mails()] == ["reader@example.com"]


def test_only_the_newest_mails_are_listed(app):
    """A Maildir with more mails than the page lists: the newest stored ones, newest first."""
    for n in range(5):
        when = dt.datetime(2026, 5, 1, 12, n, tzinfo=dt.UTC)
        key = _store(app, _mail(subject=f"mail {n}", when=when))
        os.utime(_maildir_path(app) / "new" / key, (when.timestamp(), when.timestamp()))  # stored then
    from flexmail.mail import maildir_reader

    listed = maildir_reader.list_mails(str(_maildir_path(app)), limit=3)
    assert [m.subject for m in listed] == ["mail 4", "mail 3", "mail 2"]


def test_an_empty_or_missing_maildir_is_an_empty_mailbox(app, client):
    """Before the first mail (no Maildir folder yet) the page says there is none."""
    assert not _maildir_path(app).exists()
    page = client.get("/dev/mail")
    assert page.status_code == 200 and 'id="empty"' in page.get_data(as_text=True)


@pytest.mark.parametrize("overrides", [
    pytest.param({"DEV_MODE": True, "MAIL_URL": "smtp://127.0.0.1:2525"}, id="smtp-in-dev-mode"),
    pytest.param({"DEV_MODE": False}, id="maildir-not-dev-mode"),
    pytest.param({}, id="default-test-config"),
])
def test_the_mailbox_is_absent_in_every_other_configuration(make_app, app_config, overrides):
    """SMTP in development mode, Maildir outside it and the default test configuration: no /dev/mail rule at
    all, so every path and method under it is the ordinary 404 page, exactly like a path that never existed."""
    config = {**app_config, **overrides}
    if not overrides:
        config.pop("DEV_MODE")
    app = make_app(config)
    assert not [rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/dev")]
    client = app.test_client()
    reference = client.get("/no-such-page").get_data(as_text=True).replace("/no-such-page", "PATH")
    for method, url in (("GET", "/dev/mail"), ("GET", "/dev/mail/1.M1P1Q1.host"), ("GET", "/dev/mail/x/html"),
                        ("POST", "/dev/mail"), ("HEAD", "/dev/mail")):
        response = client.open(url, method=method)
        assert response.status_code == 404, (method, url)
        if method == "GET":
            assert response.get_data(as_text=True).replace(url, "PATH") == reference  # (its language links name it)


def test_development_mode_comes_from_the_environment(make_app, app_config, monkeypatch):
    """FLEXMAIL_DEV_MODE=1 in the environment (what ./dev run sets) turns the mailbox on with the Maildir."""
    monkeypatch.setenv("FLEXMAIL_DEV_MODE", "1")
    config = dict(app_config)
    config.pop("DEV_MODE")
    app = make_app(config)
    assert app.config["DEV_MODE"] is True
    assert app.test_client().get("/dev/mail").status_code == 200


def test_dev_run_turns_development_mode_on_and_prints_the_mailbox_url():
    """./dev run exports FLEXMAIL_DEV_MODE=1 and prints the /dev/mail URL (with the Maildir transport)."""
    script = (Path(__file__).resolve().parents[2] / "dev").read_text()
    run = script.split("\n  run)", 1)[1].split("\n  test)", 1)[0]
    assert 'export FLEXMAIL_DEV_MODE="${FLEXMAIL_DEV_MODE:-1}"' in run
    assert 'export FLEXMAIL_PUBLIC_URL="${FLEXMAIL_PUBLIC_URL:-http://${HOST:-127.0.0.1}:${PORT:-5000}}"' in run
    assert "/dev/mail" in run and "maildir:*)" in run
    assert run.index("FLEXMAIL_DEV_MODE") < run.index("flask run")


@pytest.mark.parametrize("dev_mode", [True, False], ids=["dev-mode", "not-dev-mode"])
def test_the_demo_points_a_newcomer_at_the_mailbox_and_the_dashboard_of_this_server(make_app, app_config, dev_mode):
    """`flask demo` (what ./dev run prints first) names this server's URLs: the development
    mailbox when it exists, the Maildir folder otherwise, and the dashboard."""
    app = make_app({**app_config, "DEV_MODE": dev_mode, "PUBLIC_URL": "http://127.0.0.1:5077"})
    with app.app_context():  # (as the flask command line gives it)
        output = app.test_cli_runner().invoke(args=["demo"])
    assert output.exit_code == 0, output.output
    text = output.output
    assert "http://127.0.0.1:5077/subscribe/" in text and "http://127.0.0.1:5077/dashboard" in text
    assert ("http://127.0.0.1:5077/dev/mail" in text) is dev_mode
    assert ("newest file in the Maildir" in text) is not dev_mode
    assert app.test_client().get("/dev/mail").status_code == (200 if dev_mode else 404)
