"""The fast pipe (flexmail/inbound/pipe.py, run as a file, stdlib only) hands a message to the
running service over HTTP: a real subprocess against the app on a real HTTP server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.suppression_support import check, dsn

PIPE = Path(__file__).resolve().parents[2] / "flexmail" / "inbound" / "pipe.py"
TOKEN = "inbound-test-token-0123456789"


def run_pipe(url: str, data: bytes, *recipients: str, token: str = TOKEN) -> int:
    args = [sys.executable, str(PIPE)] + [a for r in recipients for a in ("-r", r)]
    env = {"FLEXMAIL_INBOUND_URL": f"{url}/internal/inbound", "FLEXMAIL_INBOUND_TOKEN": token, "PATH": "/usr/bin"}
    return subprocess.run(args, input=data, env=env, timeout=30, check=False, capture_output=True).returncode


@pytest.fixture
def sent(app, client, account, create_list, subscribe, worker, maildir):
    app.config["INBOUND_TOKEN"] = TOKEN
    assert subscribe(create_list()["id"], email="reader@example.com").status_code == 202
    worker.drain()
    return maildir()[-1]["Message-ID"]


def test_pipe_hands_a_bounce_to_the_service_which_suppresses(client, account, sent, live_server):
    """A hard-bounce DSN piped for bounces@ reaches the service: exit 0 and the address is suppressed."""
    code = run_pipe(live_server.url, dsn([("reader@example.com", "failed", "5.1.1")], message_id=sent),
                    "bounces@flexmail.test")
    assert code == 0
    assert check(client, account, ["reader@example.com"])[0]["reason"] == "hard_bounce"


def test_pipe_exit_codes_and_nothing_changed(client, account, sent, live_server):
    """Wrong token and a stopped service are temporary failures (75), mail not for us is 67,
    an empty message 65; none of them suppresses anybody."""
    raw = dsn([("reader@example.com", "failed", "5.1.1")], message_id=sent)
    assert run_pipe(live_server.url, raw, "bounces@flexmail.test", token="wrong") == 75
    assert run_pipe(live_server.url, raw, "someone@elsewhere.example") == 67
    assert run_pipe(live_server.url, b"  \n", "bounces@flexmail.test") == 65
    assert run_pipe(f"http://127.0.0.1:{free_port()}", raw, "bounces@flexmail.test") == 75
    assert not check(client, account, ["reader@example.com"])[0]["suppressed"]


def test_internal_endpoint_is_off_without_a_token(app, client):
    """Without FLEXMAIL_INBOUND_TOKEN the endpoint answers a JSON 404 and reads nothing."""
    app.config["INBOUND_TOKEN"] = None
    response = client.post("/internal/inbound?recipient=bounces@flexmail.test", data=b"x",
                           headers={"Authorization": "Bearer x"})
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
