"""No address, IP or token in any log line, whatever path the request took."""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request

from tests.helpers import link_from, token_of

ADDRESS = "Private.Person@Example.org"
SIGNUP_IP = "203.0.113.77"


def _http(url, *, data=None, headers=None, method=None):
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_full_flow_over_http_logs_no_address_ip_or_token(app, account, create_list, live_server, worker, maildir,
                                                         caplog, monkeypatch):
    """Signup, mail, scanner GET, confirm, a bad token and an internal error: the log holds none of them."""
    caplog.set_level(logging.DEBUG)
    # The dev server prints its access log through the "werkzeug" logger: path (token) and client IP.
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    lst = create_list()
    base = live_server.url
    headers = {**account.headers, "Content-Type": "application/json"}
    status, body = _http(f"{base}/api/v1/lists/{lst['id']}/subscriptions", headers=headers, data=json.dumps(
        {"email": ADDRESS, "ip": SIGNUP_IP, "user_agent": "Agent/1", "source": "privacy-test"}).encode())
    assert status == 202
    worker.drain()
    mail = maildir()[-1]
    token = token_of(link_from(mail, "confirm"))
    cancel_token = token_of(link_from(mail, "not-me"))
    assert _http(f"{base}/confirm/{token}")[0] == 200
    assert _http(f"{base}/confirm/{token}?utm={ADDRESS}")[0] == 200
    assert _http(f"{base}/confirm/{token}", data=b"method=button")[0] == 200
    assert _http(f"{base}/confirm/{token[:-3]}xyz", data=b"")[0] == 404
    assert _http(f"{base}/api/v1/lists/{lst['id']}/subscriptions", headers=headers,
                 data=json.dumps({"email": f"{ADDRESS}\r\nBcc: x@example.com"}).encode())[0] == 422
    assert _http(f"{base}/api/v1/proof?email={ADDRESS}", headers=account.headers)[0] == 200

    from flexmail.services.marketer import lists

    def boom(*args, **kwargs):
        raise RuntimeError(f"failure while handling {ADDRESS} from {SIGNUP_IP}")

    monkeypatch.setattr(lists, "list_lists", boom)
    assert _http(f"{base}/api/v1/lists", headers=account.headers)[0] == 500

    text = "\n".join(logging.Formatter("%(name)s %(message)s").format(r) for r in caplog.records)
    assert "werkzeug" in text and "/confirm/[token]" in text  # access lines were captured, redacted
    assert "RuntimeError" in text  # the traceback was logged, redacted
    for secret in (ADDRESS, ADDRESS.lower(), "private.person", SIGNUP_IP, "127.0.0.1", token, cancel_token,
                   token.split(".")[0] + "." + token.split(".")[1]):
        assert secret.lower() not in text.lower(), secret


def test_links_in_the_mail_do_not_carry_the_address(account, create_list, subscribe, worker, maildir):
    """Neither the address nor its base64 appears in any link of the confirmation mail."""
    lst = create_list()
    subscribe(lst["id"], email=ADDRESS)
    worker.drain()
    mail = maildir()[-1]
    for path in ("confirm", "not-me"):
        url = link_from(mail, path)
        token = token_of(url)
        assert "@" not in url and "private" not in url.lower()
        payload = token.split(".")[0]
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        assert json.loads(decoded) == [1, 1]
