"""Real dramatiq worker processes (Redis broker) killed with SIGKILL: the others keep sending,
a restart (what systemd's Restart=always does) sends the rest, and every mail goes out."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select

from flexmail.extensions import db
from flexmail.models import ConsentEvent, OutboxMessage
from tests.conftest import REDIS_URL, need_service
from tests.delivery_support import ScriptedRelay, relay

ROOT = Path(__file__).resolve().parents[2]


class SlowRelay(ScriptedRelay):
    """Accepts every mail after 0.1 s, so a worker can be killed in the middle of its work."""

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.1)
        return await super().handle_DATA(server, session, envelope)


class Instance:
    """One `flexmail-worker@N` unit: a dramatiq master with one worker child."""

    def __init__(self, env: dict, log: Path):
        self.env, self.log, self.proc = env, log, None

    def start(self):
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dramatiq", "app:broker", "flexmail.tasks", "--processes", "1", "--threads",
                 "2"], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def child(self) -> int:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        _wait_for(lambda: path.read_text().split(), what="the worker child")
        return int(path.read_text().split()[0])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _wait_for(condition, *, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_kill_9_of_a_worker_stops_neither_the_fleet_nor_any_mail(make_app, app_config, tmp_path):
    """Two worker units; SIGKILL one's child: dramatiq's master exits with it, the other unit keeps
    sending; then SIGKILL the other too, commit more mail while nothing runs, restart both as the
    supervisor does: every mail is sent, each recorded once, and duplicates stay within the claims
    the killed processes held (recorded every few mails)."""
    need_service("Redis", "127.0.0.1", 6379)
    from flexmail.services.consent import subscriptions
    from flexmail.services.marketer import accounts, lists
    from flexmail.services.platform.context import RequestMeta

    sink = SlowRelay()
    with relay(sink):
        namespace = f"fm-kill-{uuid.uuid4().hex[:8]}"
        config = {**app_config, "BROKER_URL": REDIS_URL, "BROKER_NAMESPACE": namespace, "MAIL_URL": sink.url,
                  "OUTBOX_LEASE_SECONDS": 4, "OUTBOX_SWEEP_INTERVAL": 1, "OUTBOX_SWEEP_GRACE": 1,
                  "OUTBOX_RECORD_EVERY": 5}
        app = make_app(config)
        env = {**os.environ, "FLEXMAIL_INSTANCE_PATH": str(app.instance_path), "PYTHONPATH": str(ROOT)}
        for key in ("DATABASE_URL", "BROKER_URL", "BROKER_NAMESPACE", "MAIL_URL", "PUBLIC_URL", "HASH_KEY",
                    "OUTBOX_LEASE_SECONDS", "OUTBOX_SWEEP_INTERVAL", "OUTBOX_SWEEP_GRACE", "OUTBOX_RECORD_EVERY"):
            env[f"FLEXMAIL_{key}"] = str(config[key])
        env["FLEXMAIL_SECRET_KEYS"] = ",".join(config["SECRET_KEYS"])
        with app.app_context():
            account_id, _ = accounts.create_account("A", scopes=["marketer"])
            list_id = lists.create_list(account_id, name="L", sender_name="S", sender_email="s@example.com",
                                        consent_text="C").id

        def signup(i):
            with app.app_context():
                subscriptions.request_subscription(account_id, list_id, email=f"k{i}@example.com",
                                                   meta=RequestMeta(f"198.51.100.{i % 200 + 1}", "UA"))

        def sent():
            with app.app_context():
                count = db.session.scalar(select(func.count()).where(OutboxMessage.status == "sent"))
                db.session.rollback()
                return count

        units = [Instance(env, tmp_path / f"worker-{n}.log") for n in (1, 2)]
        try:
            for unit in units:
                unit.start()
            for i in range(40):
                signup(i)
            _wait_for(lambda: sent() >= 5, what="the first mails")
            os.kill(units[0].child(), signal.SIGKILL)
            assert units[0].proc.wait(60) != 0  # dramatiq 2.2's master stops with its child
            progress = sent()
            _wait_for(lambda: sent() >= min(40, progress + 5), what="the other unit to keep sending")
            os.kill(units[1].child(), signal.SIGKILL)
            units[1].proc.wait(60)
            for i in range(40, 50):  # committed while no worker runs
                signup(i)
            for unit in units:  # Restart=always
                unit.start()
            _wait_for(lambda: sent() == 50, what="every mail")
        finally:
            for unit in units:
                unit.stop()
            app.extensions["dramatiq"].flush_all()
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log"))
    received = [e.rcpt_tos[0] for e in sink.delivered]
    assert set(received) == {f"k{i}@example.com" for i in range(50)}, logs[-3000:]
    assert len(received) - 50 <= 2 * 2 * config["OUTBOX_RECORD_EVERY"]  # two killed processes, two threads each
    with app.app_context():
        events = db.session.scalar(select(func.count()).where(ConsentEvent.type == "confirmation_sent"))
        assert events == 50
