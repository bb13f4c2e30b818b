"""Unsubscribe by mail: the List-Unsubscribe mailto address, through a real SMTP session with
the built-in listener, through ``flask inbound serve``, and through ``flask inbound deliver``."""

from __future__ import annotations

import os
import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from flexmail.domain.tokens import Purpose, Signer
from tests.conftest import HASH_KEY, SECRET
from tests.unsubscribe_support import confirm_signup, detail, events, snapshot

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def listener(app):
    """The unsubscribe SMTP listener of ``app``, started in this process on a free port."""
    from flexmail.inbound.smtp import make_controller

    controller = make_controller(app, host="127.0.0.1", port=_free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def subscriber(client, account, create_list, subscribe, worker, maildir):
    """A confirmed subscriber: ``(subscription id, mailto address from the API's header value)``."""

    def make(email="Reader@Example.com", lst=None, **query):
        lst = lst or create_list()
        sub_id = confirm_signup(client, subscribe, worker, maildir, lst["id"], email=email)
        header = detail(client, account, sub_id, **query)["list_unsubscribe"]
        mailto = header.split("<mailto:", 1)[1].split("?", 1)[0]
        return sub_id, mailto

    return make


def _message(to: str, *, sender="Reader <reader@example.com>", subject="unsubscribe") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = "<reply-1@example.com>"
    msg.set_content("Please take me off this list.\n")
    return msg.as_bytes()


def _send(listener, recipients, data, *, sender="reader@example.com"):
    with smtplib.SMTP(listener.hostname, listener.port, timeout=10) as smtp:
        return smtp.sendmail(sender, recipients, data)


def _status(client, account, sub_id):
    return detail(client, account, sub_id)["status"]


# --- the SMTP listener -------------------------------------------------------------------------

def test_mail_to_the_mailto_address_unsubscribes_through_a_real_smtp_session(client, account, subscriber, listener):
    """An SMTP delivery to unsub-<token>@<inbound domain> unsubscribes, recorded as ``mailto`` with the
    message digest."""
    sub_id, mailto = subscriber()
    assert mailto.startswith("unsub-") and mailto.endswith("@flexmail.test")
    data = _message(mailto)
    assert _send(listener, [mailto], data) == {}
    assert _status(client, account, sub_id) == "unsubscribed"
    (event,) = events(client, account, sub_id, "unsubscribed")
    assert event["source"] == "mailto" and event["details"]["method"] == "mailto"
    assert event["details"]["actor"] == "mail_system" and event["ip"] is None
    assert len(event["details"]["message_sha256"]) == 64


def test_smtp_session_logs_no_address_token_or_ip(subscriber, listener, log_text):
    """Neither the listener nor the unsubscribe writes an address, a token or an IP into the log."""
    sub_id, mailto = subscriber()
    _send(listener, [mailto, "someone@flexmail.test"], _message(mailto))
    text = log_text()
    token = mailto.split("@")[0].removeprefix("unsub-")
    assert f"subscription {sub_id} unsubscribe via mailto: done" in text
    for secret in (token, token.upper(), "reader@example.com", "someone@flexmail.test", "127.0.0.1"):
        assert secret not in text


def test_recipient_case_changes_and_edited_headers_do_not_matter(client, account, subscriber, listener):
    """A relay that upper-cases the local part, an edited Subject and a foreign From still unsubscribe:
    only the envelope recipient counts."""
    sub_id, mailto = subscriber()
    local, domain = mailto.split("@")
    shouted = f"{local.upper()}@{domain.upper()}"
    data = _message(shouted, sender="Someone Else <forwarder@elsewhere.example>", subject="hello there")
    assert _send(listener, [shouted], data, sender="forwarder@elsewhere.example") == {}
    assert _status(client, account, sub_id) == "unsubscribed"


def test_repeated_mails_record_one_unsubscribe(client, account, subscriber, listener):
    """A second mail to the same address is accepted and changes nothing."""
    sub_id, mailto = subscriber()
    for _ in range(2):
        assert _send(listener, [mailto], _message(mailto)) == {}
    assert len(events(client, account, sub_id, "unsubscribed")) == 1


def test_campaign_mailto_records_the_campaign(client, account, subscriber, listener):
    """A mailto address made for a campaign names it in the unsubscribe event."""
    sub_id, mailto = subscriber(campaign_id=77)
    _send(listener, [mailto], _message(mailto))
    (event,) = events(client, account, sub_id, "unsubscribed")
    assert event["details"]["campaign_id"] == 77


def _unknown_recipients(sub_id):
    signer = Signer((SECRET,))
    genuine = signer.dumps_compact(Purpose.UNSUBSCRIBE, [sub_id])
    return {
        "plain-address": "postmaster@flexmail.test",
        "prefix-only": "unsub-@flexmail.test",
        "garbage-token": "unsub-notatoken@flexmail.test",
        "other-domain": f"unsub-{genuine}@elsewhere.example",
        "other-purpose": f"unsub-{signer.dumps_compact(Purpose.FORWARD, [sub_id])}@flexmail.test",
        "unlisted-key": f"unsub-{Signer(('unlisted',)).dumps_compact(Purpose.UNSUBSCRIBE, [sub_id])}@flexmail.test",
        "truncated": f"unsub-{genuine[:-2]}@flexmail.test",
        "https-token": f"unsub-{signer.dumps_untimed(Purpose.UNSUBSCRIBE, [sub_id])}@flexmail.test",
        "no-domain": f"unsub-{genuine}",
    }


def test_unknown_recipients_are_refused_with_550_and_change_nothing(app, client, account, subscriber, listener):
    """Every recipient that is not a genuine unsubscribe address of ours is refused at RCPT with 550."""
    sub_id, _ = subscriber()
    before = snapshot(app)
    for kind, address in _unknown_recipients(sub_id).items():
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            _send(listener, [address], _message(address))
        ((code, _),) = refused.value.recipients.values()
        assert code == 550, kind
    assert snapshot(app) == before
    assert _status(client, account, sub_id) == "subscribed"


def test_mixed_recipients_unsubscribe_only_the_genuine_one(client, account, subscriber, listener):
    """In one session a foreign recipient is refused while the genuine one is processed."""
    sub_id, mailto = subscriber()
    refused = _send(listener, ["someone@flexmail.test", mailto], _message(mailto))
    assert refused["someone@flexmail.test"][0] == 550
    assert _status(client, account, sub_id) == "unsubscribed"


def test_processing_failure_answers_451_so_the_sender_retries(app, client, account, subscriber, listener,
                                                              monkeypatch):
    """If the unsubscribe cannot be stored, the listener answers 451 (retry later), never 250."""
    sub_id, mailto = subscriber()

    def broken(*args, **kwargs):
        raise RuntimeError("database unavailable")

    monkeypatch.setattr("flexmail.services.optout.unsubscribe.unsubscribe_by_mailto", broken)
    with pytest.raises(smtplib.SMTPDataError) as failed:
        _send(listener, [mailto], _message(mailto))
    assert failed.value.smtp_code == 451
    monkeypatch.undo()
    assert _status(client, account, sub_id) == "subscribed"
    _send(listener, [mailto], _message(mailto))  # the sender's retry
    assert _status(client, account, sub_id) == "unsubscribed"


def test_flask_inbound_serve_runs_the_listener(app, app_config, client, account, subscriber, tmp_path):
    """`flask --app app inbound serve --port N` takes mail to the mailto address and stops cleanly on SIGTERM."""
    sub_id, mailto = subscriber()
    port = _free_port()
    env = {**os.environ, "FLEXMAIL_DATABASE_URL": app_config["DATABASE_URL"], "FLEXMAIL_BROKER_URL": "stub",
           "FLEXMAIL_SECRET_KEYS": SECRET, "FLEXMAIL_HASH_KEY": HASH_KEY,
           "FLEXMAIL_PUBLIC_URL": app_config["PUBLIC_URL"], "FLEXMAIL_EMBEDDED_WORKER": "0",
           "FLEXMAIL_INSTANCE_PATH": str(tmp_path / "serve-instance")}
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "inbound", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "listener did not start"
                time.sleep(0.1)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            assert smtp.sendmail("reader@example.com", [mailto], _message(mailto)) == {}
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                smtp.sendmail("reader@example.com", ["nobody@flexmail.test"], _message("nobody@flexmail.test"))
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr.decode()
    assert _status(client, account, sub_id) == "unsubscribed"


# --- flask inbound deliver (a Postfix pipe) ---------------------------------------------------

def test_deliver_with_the_envelope_recipient_unsubscribes(client, account, subscriber, runner):
    """`inbound deliver --recipient ADDR` with the message on stdin unsubscribes and exits 0."""
    sub_id, mailto = subscriber()
    result = runner.invoke(args=["inbound", "deliver", "--recipient", mailto], input=_message("list@acme.example"))
    assert result.exit_code == 0, result.output
    assert _status(client, account, sub_id) == "unsubscribed"
    (event,) = events(client, account, sub_id, "unsubscribed")
    assert event["details"]["method"] == "mailto"


@pytest.mark.parametrize("header", ["To", "Delivered-To", "Cc"])
def test_deliver_without_recipient_reads_the_recipient_headers(client, account, subscriber, runner, header):
    """Without --recipient, the unsubscribe address is found in Delivered-To, To or Cc; other addresses
    there are ignored."""
    sub_id, mailto = subscriber()
    msg = EmailMessage()
    msg["From"] = "reader@example.com"
    msg["To"] = "friend@example.com" if header != "To" else f"Friend <friend@example.com>, <{mailto}>"
    if header != "To":
        msg[header] = mailto
    msg["Subject"] = "unsubscribe"
    msg.set_content("stop\n")
    result = runner.invoke(args=["inbound", "deliver"], input=msg.as_bytes())
    assert result.exit_code == 0, result.output
    assert _status(client, account, sub_id) == "unsubscribed"


def test_deliver_rejects_mail_not_for_us_with_exit_67_and_no_side_effects(app, client, account, subscriber, runner):
    """A message for no unsubscribe address, or with any foreign --recipient, exits 67 and changes nothing."""
    sub_id, mailto = subscriber()
    before = snapshot(app)
    cases = [
        ["inbound", "deliver"],
        ["inbound", "deliver", "--recipient", "postmaster@flexmail.test"],
        ["inbound", "deliver", "--recipient", mailto, "--recipient", "postmaster@flexmail.test"],
        *[["inbound", "deliver", "--recipient", address] for address in _unknown_recipients(sub_id).values()],
    ]
    for args in cases:
        result = runner.invoke(args=args, input=_message("friend@example.com"))
        assert result.exit_code == 67, (args, result.output)
        assert "rejected" in result.stderr
    assert snapshot(app) == before
    assert _status(client, account, sub_id) == "subscribed"


@pytest.mark.parametrize("spelling", ["<{}>", "{}.", " {} "], ids=["angle-brackets", "root-dot", "spaces"])
def test_deliver_accepts_the_usual_spellings_of_the_recipient(client, account, subscriber, runner, spelling):
    """An MTA may pass the recipient in angle brackets, with the DNS root dot or padded; it still counts."""
    sub_id, mailto = subscriber()
    result = runner.invoke(args=["inbound", "deliver", "-r", spelling.format(mailto)], input=_message(mailto))
    assert result.exit_code == 0, result.output
    assert _status(client, account, sub_id) == "unsubscribed"


def test_genuine_address_of_a_vanished_subscription_is_accepted_and_changes_nothing(app, subscriber, runner):
    """A correctly signed address whose subscription no longer exists is taken (nothing to stop), not bounced."""
    subscriber()
    address = f"unsub-{Signer((SECRET,)).dumps_compact(Purpose.UNSUBSCRIBE, [987654])}@flexmail.test"
    before = snapshot(app)
    result = runner.invoke(args=["inbound", "deliver", "-r", address], input=_message(address))
    assert result.exit_code == 0, result.output
    assert snapshot(app) == before


@pytest.mark.parametrize("data", [b"", b"\r\n \r\n"], ids=["empty", "blank"])
def test_deliver_without_a_message_exits_65(app, subscriber, runner, data):
    """No message on stdin is a data error (65), even with a genuine recipient, and changes nothing."""
    _, mailto = subscriber()
    before = snapshot(app)
    result = runner.invoke(args=["inbound", "deliver", "--recipient", mailto], input=data)
    assert result.exit_code == 65 and "no message" in result.stderr
    assert snapshot(app) == before


def test_deliver_temporary_failure_exits_75(client, account, subscriber, runner, monkeypatch):
    """When storing fails, deliver exits 75 so the MTA queues the message and tries again."""
    sub_id, mailto = subscriber()

    def broken(*args, **kwargs):
        raise RuntimeError("database unavailable")

    monkeypatch.setattr("flexmail.services.optout.unsubscribe.unsubscribe_by_mailto", broken)
    result = runner.invoke(args=["inbound", "deliver", "--recipient", mailto], input=_message(mailto))
    assert result.exit_code == 75 and "try again later" in result.stderr
    monkeypatch.undo()
    assert _status(client, account, sub_id) == "subscribed"


def test_inbound_domain_setting_moves_the_mailto_address(app, client, account, subscriber, runner):
    """FLEXMAIL_INBOUND_DOMAIN sets the mailto host; addresses at the old host are then refused."""
    sub_id, old = subscriber()
    app.config["INBOUND_DOMAIN"] = "Mail.Acme.Example"
    header = detail(client, account, sub_id)["list_unsubscribe"]
    assert "@mail.acme.example?subject=unsubscribe>" in header
    refused = runner.invoke(args=["inbound", "deliver", "--recipient", old], input=_message(old))
    assert refused.exit_code == 67
    new = header.split("<mailto:", 1)[1].split("?", 1)[0]
    assert runner.invoke(args=["inbound", "deliver", "-r", new], input=_message(new)).exit_code == 0
    assert _status(client, account, sub_id) == "unsubscribed"
