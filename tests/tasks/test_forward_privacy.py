"""Forward to a friend stores no address: not in the database, the log, the broker or a dead-letter queue.

The forms are posted over real HTTP (live server, werkzeug access log on), mail goes to a
Maildir and, for the failing case, to a real SMTP server that refuses the recipient with a
reply quoting the address (as real relays do). Afterwards every store is searched for every
address involved, in any letter case.
"""

from __future__ import annotations

import base64
import http.cookiejar
import logging
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import BACKEND, PG_URL, REDIS_URL
from tests.forward_support import (
    FORWARDER,
    campaign_row,
    csrf_token,
    mails_to,
    setup_forwarding,
    stats,
    subscription_count,
    suppress,
)
from tests.helpers import smtp_server

#: Delivered, refused by the relay, suppressed, and typed wrongly: none may be kept anywhere.
DELIVERED = ("Zq.Priv.Alpha@Example.NET", "zq.priv.bravo@example.org")
REFUSED = ("ZQ.PRIV.CHARLIE@Example.com", "zq.priv.delta@example.com")
SUPPRESSED = "Zq.Priv.Echo@Example.com"
INVALID = "zq.priv.foxtrot@@example.com"
SEVENTH = "zq.priv.golf@example.com"
ALL = (*DELIVERED, *REFUSED, SUPPRESSED, INVALID, SEVENTH, FORWARDER)


class Browser:
    """urllib with a cookie jar: enough of a browser for the CSRF-protected form."""

    def __init__(self, base):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def request(self, path, data=None):
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        try:
            with self.opener.open(self.base + path, data=body, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def forward(self, path, friends, **fields):
        status, page = self.request(path)
        assert status == 200
        form = {"csrf_token": csrf_token(page), "friend": list(friends), "sender_name": "", "note": "",
                "website": ""} | fields
        return self.request(path, form)


@pytest.fixture
def refusing_smtp():
    """A real SMTP server that refuses every recipient with a reply that quotes the address."""

    class Refuse:
        def __init__(self):
            self.refused = 0

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            self.refused += 1
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"

    with smtp_server(Refuse()) as handler:
        yield handler


def _variants(address: str) -> set[str]:
    local = address.split("@")[0]
    return {address.lower(), local.lower(), address.lower().replace("@", "%40")}


def _assert_absent(haystack: str, where: str, addresses=ALL) -> None:
    text = haystack.lower()
    for address in addresses:
        for needle in _variants(address):
            assert needle not in text, f"{needle!r} found in {where}"


def _with_base64_decoded(text: str) -> str:
    """``text`` plus the decoding of every base64(url)-looking run in it: encoding is not hiding."""
    decoded = []
    for run in re.findall(r"[A-Za-z0-9_\-+/]{16,}={0,2}", text):
        for alphabet in (base64.urlsafe_b64decode, base64.b64decode):
            try:
                decoded.append(alphabet(run + "=" * (-len(run) % 4)).decode("latin-1"))
            except ValueError:
                continue
    return text + "\n" + "\n".join(decoded)


def _database_text(app) -> str:
    """Every byte the database holds: the SQLite file and its WAL, or a pg_dump."""
    if BACKEND == "postgres":
        url = make_url(PG_URL)
        dump = subprocess.run(["pg_dump", "-U", url.username or "postgres", "-h", url.host or "127.0.0.1",
                               "-p", str(url.port or 5432), url.database], capture_output=True, check=True)
        return dump.stdout.decode("utf-8", "replace")
    path = Path(make_url(app.config["DATABASE_URL"]).database)
    parts = [p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists()]
    assert parts and len(parts[0]) > 0
    return b"".join(parts).decode("latin-1")


def _broker_text(app) -> str:
    """Everything in the broker: every Redis key and value (dead-letter sets included), or the
    StubBroker's queues and dead letters."""
    broker = app.extensions["dramatiq"]
    if BACKEND != "postgres":
        chunks = []
        for name, queue in broker.queues.items():
            chunks.append(name)
            chunks.extend(item.decode() if isinstance(item, bytes) else str(item) for item in list(queue.queue))
        chunks.extend(repr(m.asdict()) for m in broker.dead_letters)
        return _with_base64_decoded("\n".join(chunks))
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    chunks = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        chunks.append(key.decode("latin-1"))
        if kind == "string":
            value = [client.get(key)]
        elif kind == "hash":
            value = [b for pair in client.hgetall(key).items() for b in pair]
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = list(client.smembers(key))
        elif kind == "zset":
            value = client.zrange(key, 0, -1)
        elif kind == "stream":
            value = [repr(client.xrange(key)).encode()]
        else:
            value = []
        chunks.extend(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in value if v is not None)
    return _with_base64_decoded("\n".join(chunks))


def _dead_letters(app) -> list:
    broker = app.extensions["dramatiq"]
    if BACKEND != "postgres":
        return list(broker.dead_letters)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    letters = []
    for queue in ("forward", "mail"):
        key = f"{broker.namespace}:{queue}.XQ"
        letters += client.zrange(key, 0, -1) + list(client.hgetall(key + ".msgs").items())
    return letters


def test_forwards_leave_no_address_in_database_log_or_broker(
        app, client, account, create_list, subscribe, worker, maildir, live_server, refusing_smtp, caplog):
    """After delivered, refused (SMTP 550 quoting the address, all retries), suppressed and invalid
    forwards over HTTP, neither friends' nor forwarder's address is in the database (file + WAL or
    pg_dump), the log (DEBUG, access log included), the broker or a dead-letter queue."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    app.config.update(FORWARD_RETRY_DELAY_MS=20, FORWARD_PER_TOKEN_PER_DAY=10, FORWARD_RATE_LIMIT="50 per minute")
    fwd = setup_forwarding(client, account, create_list, subscribe, worker, maildir)
    suppress(app, account.id, SUPPRESSED)
    subscriptions_before = subscription_count(app)
    caplog.clear()
    browser = Browser(live_server.url)

    # Delivered: while the worker is paused, the queued messages are in the broker; sealed.
    worker.pause()
    status, body = browser.forward(fwd.path, DELIVERED, sender_name=f"Delta {FORWARDER}",
                                   note=f"From {FORWARDER} to {DELIVERED[0]}, have a look!")
    assert status == 200
    in_flight = _broker_text(app)
    assert "send_forward" in in_flight  # the messages are there...
    _assert_absent(in_flight, "the broker, with the messages queued")  # ...sealed
    worker.resume()
    worker.drain()
    mails = maildir()

    # Refused by the relay after every attempt, and a suppressed friend alongside.
    app.config["MAIL_URL"] = refusing_smtp.url
    status, refused_body = browser.forward(fwd.path, [*REFUSED, SUPPRESSED])
    assert status == 200 and refused_body == body
    worker.drain()
    assert refusing_smtp.refused == len(REFUSED) * app.config["FORWARD_MAX_ATTEMPTS"]

    # Refused by us: an invalid address, seven addresses, and addresses in the query string.
    assert browser.forward(fwd.path, [DELIVERED[0], INVALID])[0] == 422
    assert browser.forward(fwd.path, [*DELIVERED, *REFUSED, SUPPRESSED, SEVENTH, INVALID])[0] == 422
    assert browser.request(f"{fwd.path}?to={urllib.parse.quote(SEVENTH)}")[0] == 200

    assert all(len(mails_to(mails, a)) == 1 for a in DELIVERED)
    assert all(mails_to(mails, a) == [] for a in (*REFUSED, SUPPRESSED, SEVENTH))
    assert stats(client, account, fwd.campaign_id) == {"forwards": 2, "forwarded_recipients": 4}
    assert campaign_row(app, fwd.campaign_id)["forwards_failed"] == 2
    assert subscription_count(app) == subscriptions_before  # no friend is on any list

    log = "\n".join(logging.Formatter("%(name)s %(levelname)s %(message)s").format(r) for r in caplog.records)
    assert "werkzeug" in log and "/forward/[token]" in log  # the access log was captured
    assert "SMTPRecipientsRefused" in log  # the refusal was logged, by type only
    _assert_absent(log, "the log")
    _assert_absent(_broker_text(app), "the broker")
    assert _dead_letters(app) == []
    database = _database_text(app)
    assert "subscriptions" in database
    friends = [a for a in ALL if a != FORWARDER]
    _assert_absent(database, "the database", friends)
    from flexmail.services.platform.context import hash_address

    with app.app_context():  # not even the friends' keyed hashes (only the suppressed one's)
        hashes = [hash_address(a) for a in (*DELIVERED, *REFUSED, SEVENTH)]
    assert not [h for h in hashes if h in database]


def test_a_failing_relay_leaves_nothing_in_the_broker_after_retries(app, fwd_quick, worker, monkeypatch):
    """A forward whose every attempt fails is dropped and counted: the broker ends with no message,
    no retry record, no traceback and no dead letter."""
    from flexmail.mail import transports
    from flexmail.services.forwards import forwarding

    def refuse(self, message, **kwargs):
        raise OSError(f"cannot deliver to {message['To']}")

    monkeypatch.setattr(transports.MaildirTransport, "send", refuse)
    with app.app_context():
        forwarding.forward_to_friends(fwd_quick.path.rsplit("/", 1)[-1], friends=list(REFUSED),
                                      meta=_meta())
    worker.drain()
    assert campaign_row(app, fwd_quick.campaign_id)["forwards_failed"] == 2
    assert _dead_letters(app) == []
    broker_text = _broker_text(app)
    _assert_absent(broker_text, "the broker")
    assert "traceback" not in broker_text.lower() and "send_forward" not in broker_text


@pytest.fixture
def fwd_quick(app, client, account, create_list, subscribe, worker, maildir):
    app.config.update(FORWARD_RETRY_DELAY_MS=10)
    return setup_forwarding(client, account, create_list, subscribe, worker, maildir)


def _meta():
    from flexmail.services.platform.context import RequestMeta

    return RequestMeta()
