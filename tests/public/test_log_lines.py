"""Every log record stays on its own line: a %0a in a URL cannot forge a line in any log,
ours, werkzeug's or gunicorn's access log (deploy/gunicorn.conf.py)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import HASH_KEY, SECRET
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
FORGED = "FORGED 2026-01-01 INFO admin logged in"


def _raw_get(port: int, target: str) -> bytes:
    """Send a request line as given (no client-side re-encoding) and return the answer's head."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return data.split(b"\r\n", 1)[0]


def test_control_characters_in_a_message_are_escaped(app, log_text):
    """A message or argument with CR, LF, NUL, ESC or U+2028 is logged on one line, escaped."""
    logging.getLogger("flexmail.test").warning("path %s done", f"/x\r\n{FORGED}\x00\x1b[31m\u2028end")
    text = log_text()
    assert len(text.splitlines()) == 1
    assert "\\r\\n" + FORGED in text and "\\x00\\x1b[31m\\u2028end" in text


def test_a_traceback_keeps_every_line_indented(app, log_text):
    """A traceback whose exception text holds a line break cannot start a line of its own."""
    try:
        raise ValueError(f"bad input\n{FORGED}")
    except ValueError:
        logging.getLogger("flexmail.test").exception("failed")
    formatted = log_text()
    lines = formatted.splitlines()
    assert lines[0].endswith("failed") and len(lines) > 3
    assert all(line.startswith("  ") for line in lines[1:]), lines
    assert "  ValueError: bad input" in lines and "  " + FORGED in lines


def test_werkzeug_access_log_cannot_be_forged(live_server, caplog):
    """The dev server's access line for /health%0aFORGED... is one line."""
    caplog.set_level(logging.INFO)
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    port = int(live_server.url.rsplit(":", 1)[1])
    assert _raw_get(port, "/health%0a" + FORGED.replace(" ", "%20")).split()[1] == b"404"
    assert _raw_get(port, "/health%0d%0a" + FORGED.replace(" ", "%20")).split()[1] == b"404"
    text = "\n".join(logging.Formatter("%(name)s %(message)s").format(r) for r in caplog.records)
    assert "/health" in text
    for line in text.splitlines():
        assert not line.startswith("FORGED"), line


def test_gunicorn_access_log_cannot_be_forged(tmp_path):
    """gunicorn with deploy/gunicorn.conf.py: a %0a in the path is escaped in its access log line."""
    port = free_port()
    access_log = tmp_path / "access.log"
    env = {**os.environ, "FLEXMAIL_INSTANCE_PATH": str(tmp_path / "instance"),
           "FLEXMAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'flexmail.db'}", "FLEXMAIL_BROKER_URL": "stub",
           "FLEXMAIL_EMBEDDED_WORKER": "0", "FLEXMAIL_SECRET_KEYS": SECRET, "FLEXMAIL_HASH_KEY": HASH_KEY,
           "FLEXMAIL_BIND": f"127.0.0.1:{port}", "FLEXMAIL_WEB_WORKERS": "1", "FLEXMAIL_WEB_THREADS": "1"}
    errors = (tmp_path / "error.log").open("wb")
    server = subprocess.Popen(  # noqa: S603
        [str(Path(sys.executable).with_name("gunicorn")), "-c", str(ROOT / "deploy/gunicorn.conf.py"),
         "--access-logfile", str(access_log), "app:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "error.log").read_text()[-3000:]
                time.sleep(0.1)
        assert _raw_get(port, "/health").split()[1] == b"200"
        assert _raw_get(port, "/health%0a" + FORGED.replace(" ", "%20")).split()[1] == b"404"
        assert _raw_get(port, "/x%0d%0a" + FORGED.replace(" ", "%20") + "%1b[2J").split()[1] == b"404"
        for _ in range(100):
            if access_log.exists() and access_log.read_text().count("\n") >= 3:
                break
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(20)
        errors.close()
    text = access_log.read_text()
    lines = text.splitlines()
    assert len(lines) == 3, lines
    assert lines[1].startswith('"GET /health\\n' + FORGED), lines[1]
    assert "\\r\\n" in lines[2] and "\\x1b[2J" in lines[2]
    assert "127.0.0.1" not in text
