"""services.forwards.forwarding: exact counts under concurrency, limits, delivery retries, sealed messages."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from flexmail import clock
from flexmail.domain.sealed import Sealer, SealError, SealPurpose
from flexmail.services.platform.context import RequestMeta
from flexmail.services.platform.errors import BadToken, RateLimited, ValidationFailed
from tests.forward_support import (
    FRIENDS,
    campaign_row,
    confirm_signup,
    forward_url,
    setup_forwarding,
    stats,
    subscription_count,
)
from tests.helpers import token_of

ROOT = Path(__file__).resolve().parents[2]

#: One process of the concurrency tests: builds its own app (own engine, own broker client)
#: on the test's database, waits at the start line, then forwards as fast as it can.
FORWARDER_PROCESS = r"""
import json, os, sys
from flexmail import create_app
from flexmail.services.forwards import forwarding
from flexmail.services.platform.context import RequestMeta
from flexmail.services.platform.errors import RateLimited

config, token, count, tag = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
app = create_app(config)
done = {"ok": 0, "limited": 0}
with app.app_context():
    forwarding.view_forward_link(token)  # connect before the start line
    app.extensions["sqlalchemy"].session.rollback()
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        friends = [f"zq.par.{tag}.{i}.a@example.com", f"zq.par.{tag}.{i}.b@example.com"]
        try:
            forwarding.forward_to_friends(token, friends=friends, meta=RequestMeta())
            done["ok"] += 1
        except RateLimited:
            done["limited"] += 1
print(json.dumps(done), flush=True)
"""


def _run_parallel(app_config, tokens_and_counts) -> list[dict]:
    """Start one process per (token, count), release them together, return their tallies."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    for n, (token, count) in enumerate(tokens_and_counts):
        procs.append(subprocess.Popen(
            [sys.executable, "-c", FORWARDER_PROCESS, json.dumps(app_config), token, str(count), f"p{n}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env))
    for proc in procs:
        line = proc.stdout.readline()
        assert line.strip() == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")
    for proc in procs:  # the start line: all of them are connected and waiting
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _quota_rows(app):
    from flexmail.extensions import db
    from flexmail.models import CampaignForwardDay, ForwardQuota

    with app.app_context():
        quotas = sorted(q.forwards for q in db.session.scalars(select(ForwardQuota)))
        days = [(d.forwards, d.recipients) for d in db.session.scalars(select(CampaignForwardDay))]
    return quotas, days


def test_parallel_forwards_from_several_processes_are_counted_exactly(
        app, app_config, client, account, create_list, subscribe, worker, maildir):
    """4 processes x 25 forwards of 2 friends each at once: exactly 100 forwards and 200 recipients."""
    app.config.update(FORWARD_PER_TOKEN_PER_DAY=1000, FORWARD_CAMPAIGN_DAILY_FACTOR=1000)
    fwd = setup_forwarding(client, account, create_list, subscribe, worker, maildir)
    tokens = [token_of(fwd.forward_url)]
    for n in range(3):
        sub_id = confirm_signup(client, subscribe, worker, maildir, fwd.list_id, f"zq.sub{n}@example.com")
        tokens.append(token_of(forward_url(client, account, sub_id, fwd.campaign_id)))
    config = {**app_config, "FORWARD_PER_TOKEN_PER_DAY": 1000, "FORWARD_CAMPAIGN_DAILY_FACTOR": 1000}

    results = _run_parallel(config, [(token, 25) for token in tokens])

    assert results == [{"ok": 25, "limited": 0}] * 4
    assert stats(client, account, fwd.campaign_id) == {"forwards": 100, "forwarded_recipients": 200}
    assert _quota_rows(app) == ([25, 25, 25, 25], [(100, 200)])
    assert subscription_count(app) == 4  # nobody was added to a list


def test_parallel_forwards_of_one_link_never_pass_its_daily_limit(
        app, app_config, client, account, create_list, subscribe, worker, maildir):
    """4 processes racing 5 forwards each on one link with a limit of 7: exactly 7 pass, 13 get 429."""
    fwd = setup_forwarding(client, account, create_list, subscribe, worker, maildir)
    config = {**app_config, "FORWARD_PER_TOKEN_PER_DAY": 7, "FORWARD_CAMPAIGN_DAILY_FACTOR": 1000}

    results = _run_parallel(config, [(token_of(fwd.forward_url), 5)] * 4)

    assert sum(r["ok"] for r in results) == 7 and sum(r["limited"] for r in results) == 13
    assert stats(client, account, fwd.campaign_id) == {"forwards": 7, "forwarded_recipients": 14}
    assert _quota_rows(app) == ([7], [(7, 14)])


@pytest.fixture
def fwd(client, account, create_list, subscribe, worker, maildir):
    return setup_forwarding(client, account, create_list, subscribe, worker, maildir)


def _forward(app, fwd, friends, **kw):
    from flexmail.services.forwards import forwarding

    with app.app_context():
        return forwarding.forward_to_friends(token_of(fwd.forward_url), friends=list(friends), meta=RequestMeta(),
                                             **kw)


def test_campaign_daily_cap_is_five_times_the_list(app, client, account, fwd):
    """A campaign reaches at most 5 x its subscribed list size friends a day (H6), then 429."""
    app.config["FORWARD_PER_TOKEN_PER_DAY"] = 100
    _forward(app, fwd, FRIENDS[:3])  # the list has one subscriber: 5 friends a day
    with pytest.raises(RateLimited) as limited:
        _forward(app, fwd, FRIENDS[:3])
    assert "forwarded as often" in limited.value.message
    _forward(app, fwd, FRIENDS[:2])
    assert stats(client, account, fwd.campaign_id) == {"forwards": 2, "forwarded_recipients": 5}
    clock.freeze(clock.now() + dt.timedelta(days=1))
    _forward(app, fwd, FRIENDS[:3])
    assert stats(client, account, fwd.campaign_id)["forwarded_recipients"] == 8


def test_validation_errors_never_carry_an_address(app, fwd):
    """Refusals say which position was wrong; neither the message nor the fields hold the address."""
    with pytest.raises(ValidationFailed) as refused:
        _forward(app, fwd, ["zq.good@example.com", "zq.bad@@example.com", ""])
    assert refused.value.fields == {"friends": ["Address 2 is not valid."]}
    assert "zq" not in str(refused.value) + json.dumps(refused.value.fields) + repr(refused.value.args)
    with pytest.raises(ValidationFailed) as too_many:
        _forward(app, fwd, [f"zq.{n}@example.com" for n in range(6)])
    assert too_many.value.fields == {"friends": ["At most 5 addresses."]}
    with pytest.raises(ValidationFailed):
        _forward(app, fwd, ["", "  "])
    with pytest.raises(BadToken):
        from flexmail.services.forwards import forwarding

        with app.app_context():
            forwarding.forward_to_friends("nonsense", friends=["zq.x@example.com"], meta=RequestMeta())


def test_sent_mail_failures_retry_then_drop_and_count(app, fwd, worker, maildir, monkeypatch):
    """A relay that fails twice, then works: the mail goes out on the third attempt; one that always
    fails is dropped after FORWARD_MAX_ATTEMPTS and counted in forwards_failed, never dead-lettered."""
    from flexmail.mail import transports

    app.config.update(FORWARD_RETRY_DELAY_MS=10)
    real = transports.MaildirTransport.send
    calls = {"n": 0}

    def flaky(self, message, **kwargs):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise ConnectionRefusedError(f"relay refused {message['To']}")
        return real(self, message, **kwargs)

    monkeypatch.setattr(transports.MaildirTransport, "send", flaky)
    _forward(app, fwd, [FRIENDS[0]])
    worker.drain()
    assert calls["n"] == 3
    assert len([m for m in maildir() if m["Subject"].startswith("Fwd:")]) == 1
    assert campaign_row(app, fwd.campaign_id)["forwards_failed"] == 0

    def broken(self, message, **kwargs):
        calls["n"] += 1
        raise ConnectionRefusedError(f"relay refused {message['To']}")

    monkeypatch.setattr(transports.MaildirTransport, "send", broken)
    calls["n"] = 0
    _forward(app, fwd, FRIENDS[1:3])
    worker.drain()
    assert calls["n"] == 2 * app.config["FORWARD_MAX_ATTEMPTS"]
    assert campaign_row(app, fwd.campaign_id) == {"forwards": 2, "forwarded_recipients": 3, "forwards_failed": 2}
    broker = app.extensions["dramatiq"]
    if hasattr(broker, "dead_letters"):
        assert broker.dead_letters == []


def test_a_database_unreachable_at_send_time_delays_the_forward_mail_instead_of_dropping_it(
        app, fwd, worker, maildir, monkeypatch):
    """The worker cannot reach the database when a forward mail's turn comes (a restart): the
    sealed message is retried later like a relay failure, the mail goes out once, and nothing
    is counted as failed. (Before, the mail was dropped, and its failure could not even be
    counted.)"""
    from sqlalchemy.exc import OperationalError

    from flexmail.services.forwards import forwarding

    app.config.update(FORWARD_RETRY_DELAY_MS=10)
    real = forwarding._blocked
    calls = {"n": 0}

    def database_gone_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("SELECT ... FROM suppressions", {}, Exception("connection refused"))
        return real(*args, **kwargs)

    worker.pause()
    _forward(app, fwd, [FRIENDS[0]])
    monkeypatch.setattr(forwarding, "_blocked", database_gone_once)
    worker.resume()
    worker.drain()
    assert calls["n"] == 2
    assert len([m for m in maildir() if m["Subject"].startswith("Fwd:")]) == 1
    assert campaign_row(app, fwd.campaign_id)["forwards_failed"] == 0


def test_deliver_never_raises_and_drops_unreadable_messages(app, fwd):
    """The actor's body swallows everything: a forged or foreign message is dropped and counted."""
    from flexmail.services.forwards import forwarding

    with app.app_context():
        other = Sealer(("another-secret",)).seal(SealPurpose.FORWARD_MESSAGE, b'{"to": "zq@example.com"}')
        wrong_purpose = forwarding._sealer().seal(SealPurpose.FORWARD_OPT_OUT, b'{"to": "zq@example.com"}')
        outcomes = [forwarding.deliver_forward(fwd.campaign_id, blob) for blob in ("junk", other, wrong_purpose)]
        assert forwarding.deliver_forward(987_654, forwarding._seal_message("zq@example.com", None, None)) == "skipped"
    assert outcomes == ["failed"] * 3
    assert campaign_row(app, fwd.campaign_id)["forwards_failed"] == 3


def test_friend_suppressed_after_the_post_is_skipped_at_send_time(app, account, fwd, worker, maildir):
    """Suppression is checked again when the mail is sent, not only when the form is posted."""
    from tests.forward_support import suppress

    worker.pause()
    _forward(app, fwd, [FRIENDS[0]])
    suppress(app, account.id, FRIENDS[0])
    worker.resume()
    worker.drain()
    assert [m for m in maildir() if m["Subject"].startswith("Fwd:")] == []


def test_sealer_round_trip_rotation_and_refusals():
    """Sealed blobs open with any listed key, only for their purpose, and differ on every seal."""
    old = Sealer(("old-key",))
    rotated = Sealer(("new-key", "old-key"))
    blob = old.seal(SealPurpose.FORWARD_MESSAGE, b"zq.secret@example.com")
    assert b"zq" not in blob.encode() and "@" not in blob
    assert rotated.open(SealPurpose.FORWARD_MESSAGE, blob) == b"zq.secret@example.com"
    assert old.seal(SealPurpose.FORWARD_MESSAGE, b"x") != old.seal(SealPurpose.FORWARD_MESSAGE, b"x")
    for bad in (blob[:-2] + ("A" if blob[-2] != "A" else "B") + blob[-1], blob[:20], "", "%%%", "é" * 10):
        with pytest.raises(SealError):
            rotated.open(SealPurpose.FORWARD_MESSAGE, bad)
    with pytest.raises(SealError):
        rotated.open(SealPurpose.FORWARD_OPT_OUT, blob)
    with pytest.raises(SealError) as refused:
        Sealer(("unrelated",)).open(SealPurpose.FORWARD_MESSAGE, blob)
    assert blob not in str(refused.value)


@pytest.mark.parametrize("raw,expected", [
    ("Hi!\nhttps://x.example/y here", "Hi!\n[link removed] here"),
    ("see WWW.Example.com.", "see [link removed]"),
    ("mail zq@example.com", "mail [link removed]"),
    ("javascript:alert(1)", "[link removed]"),
    ("<b>bold</b> move", "bold move"),
    ("Ann\u202e\u200b Lee", "Ann Lee"),  # bidi override and zero-width space dropped
    ("line\r\n\r\n\r\n\r\nnext", "line\n\nnext"),
    ("3.5 apples, e.g. two. Mr. Smith", "3.5 apples, e.g. two. Mr. Smith"),
    ("   ", None),
])
def test_note_is_plain_text_without_links(raw, expected):
    """Notes lose links, hosts, addresses, tags and invisible format characters, and keep ordinary text."""
    from flexmail.domain.forwarding import clean_note

    assert clean_note(raw) == expected
