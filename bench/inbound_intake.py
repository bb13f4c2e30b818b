"""Inbound intake: calls per second of a Postfix-pipe style delivery of one bounce.

- **baseline**: ``flask --app app inbound deliver -r bounces@...`` per message (a new
  process that builds the whole app each time: the pipe as it was).
- **fast pipe**: ``python flexmail/inbound/pipe.py -r bounces@...`` per message, handing the
  bytes to the running service (gunicorn, 1 worker) at ``POST /internal/inbound``.

Both process the same DSN (a 5.1.1 for an address no account holds) sequentially against
the same SQLite instance, in the same run. ``--tiny`` makes few calls (CI smoke).

    .venv/bin/python bench/inbound_intake.py [--tiny]
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port  # noqa: E402

PYTHON = sys.executable
DSN = (b"From: MAILER-DAEMON@mx.example.net\r\nTo: bounces@flexmail.test\r\nSubject: Undelivered Mail\r\n"
       b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
       b"--B\r\nContent-Type: text/plain\r\n\r\nUndeliverable.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
       b"Reporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; nobody@example.org\r\nAction: failed\r\n"
       b"Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n--B--\r\n")


def timed(label: str, calls: int, argv: list[str], env: dict) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        done = subprocess.run(argv, input=DSN, env=env, cwd=ROOT, capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{label}: exit {done.returncode}: {done.stderr.decode()[-500:]}")
    elapsed = time.perf_counter() - started
    rate = calls / elapsed
    print(f"{label:<34}{calls:>6} calls {elapsed:>8.2f} s {rate:>9.2f} calls/s {1000 / rate:>9.1f} ms/call")
    return rate


def main() -> None:
    tiny = "--tiny" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {**os.environ, "FLEXMAIL_INSTANCE_PATH": tmp, "FLEXMAIL_PUBLIC_URL": "http://flexmail.test",
               "FLEXMAIL_BROKER_URL": "stub", "FLEXMAIL_EMBEDDED_WORKER": "false",
               "FLEXMAIL_INBOUND_TOKEN": "bench-token", "FLEXMAIL_INBOUND_URL": f"http://127.0.0.1:{port}/internal/inbound"}
        env.pop("FLEXMAIL_DATABASE_URL", None)
        subprocess.run([PYTHON, "-m", "flask", "--app", "app", "db", "upgrade"], env=env, cwd=ROOT, check=True,
                       capture_output=True)
        server = subprocess.Popen([PYTHON, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "app:app"],
                                  env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.2)
            base = timed("baseline: flask inbound deliver", 2 if tiny else 5,
                         [PYTHON, "-m", "flask", "--app", "app", "inbound", "deliver", "-r", "bounces@flexmail.test"],
                         env)
            fast = timed("fast pipe -> running service", 5 if tiny else 50,
                         [PYTHON, str(ROOT / "flexmail" / "inbound" / "pipe.py"), "-r", "bounces@flexmail.test"], env)
            print(f"ratio fast/baseline: {fast / base:.1f}x")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
