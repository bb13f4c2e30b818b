"""Benchmark: confirmation mail delivery by one dramatiq worker process vs a bare smtplib loop.

Both send to the same aiosmtpd sink (its own process), in the same run:

- baseline: one smtplib connection, ``sendmail`` of N ready-made confirmation mails of the
  same size in a loop (the floor: the sink's and the SMTP exchange's cost only);
- worker: N pending confirmation signups seeded in PostgreSQL, their ids enqueued on Redis,
  then ONE ``dramatiq app:broker flexmail.tasks --processes 1`` process claims, renders,
  sends and records them (``confirmation_sent`` in the ledger). Its rate is N-1 over the
  time from the first to the last ``sent_at``, so process start-up is not counted.

The baseline runs before and after the worker; the better of the two is the baseline.
It also times dramatiq's middleware per message (a no-op actor on a StubBroker with the
default middleware, our app-context middleware, or none) to show what each costs.
Target (issue 11): worker >= 0.5 of the baseline. Nothing asserts times.

    .venv/bin/python bench/mail_delivery.py [--mails N] [--threads T] [--tiny]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import smtplib
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402

from bench.common import free_port, machine  # noqa: E402

CONSENT = "Send me the bench newsletter. I can unsubscribe at any time."
SINK = textwrap.dedent("""
    import sys, time
    from aiosmtpd.controller import Controller
    class Sink:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"
    c = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
    c.start()
    print("ready", flush=True)
    sys.stdin.read()
    c.stop()
""")


def start_sink(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SINK, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def baseline(port: int, message: bytes, n: int) -> float:
    """msg/s of a bare smtplib loop over one connection."""
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        started = time.perf_counter()
        for i in range(n):
            smtp.sendmail("bounces@bench.example", [f"r{i}@example.com"], message)
        return n / (time.perf_counter() - started)


def seed(app, n: int) -> list[int]:
    """An account, a list and N pending signups, each with a due confirmation outbox row."""
    from flexmail.clock import now
    from flexmail.domain.consent import Status
    from flexmail.extensions import db
    from flexmail.models import OutboxMessage, Subscription
    from flexmail.services.marketer import accounts, lists
    from flexmail.services.platform.context import hash_address

    with app.app_context():
        account_id, _ = accounts.create_account("Bench", scopes=["marketer"])
        list_id = lists.create_list(account_id, name="Bench news", sender_name="Bench",
                                    sender_email="news@bench.example", consent_text=CONSENT).id
        at = now()
        subs = [{"account_id": account_id, "list_id": list_id, "email": f"reader{i}@example.com",
                 "address_hash": hash_address(f"reader{i}@example.com"), "status": Status.PENDING,
                 "consent_text": CONSENT, "language": "en",
                 "created_at": at, "requested_at": at, "pending_since": at, "updated_at": at} for i in range(n)]
        ids = list(db.session.scalars(insert(Subscription).returning(Subscription.id), subs))
        rows = [{"account_id": account_id, "subscription_id": sid, "kind": "confirmation", "status": "pending",
                 "address_hash": subs[i]["address_hash"], "message_id": f"<{secrets.token_hex(16)}@bench.example>",
                 "attempts": 0, "created_at": at, "next_attempt_at": at} for i, sid in enumerate(ids)]
        outbox_ids = list(db.session.scalars(insert(OutboxMessage).returning(OutboxMessage.id), rows))
        db.session.commit()
        return outbox_ids


def sample_message(app) -> bytes:
    """A confirmation mail as the service renders it (for the baseline loop)."""
    from flexmail.extensions import db
    from flexmail.models import MailingList, OutboxMessage, Subscription
    from flexmail.services.consent.confirmation_mail import render_confirmation

    with app.app_context():
        row = db.session.scalar(select(OutboxMessage).limit(1))
        sub = db.session.get(Subscription, row.subscription_id)
        data, _ = render_confirmation(row, sub, db.session.get(MailingList, sub.list_id))
        db.session.rollback()
        return data


def run_worker(app, env: dict, ids: list[int], threads: int, log: Path) -> tuple[float, float]:
    """Enqueue, run one worker process until every row is sent: (msg/s, worker CPU s per mail)."""
    from flexmail.extensions import db
    from flexmail.models import OutboxMessage

    actor = app.extensions["dramatiq"].get_actor("send_outbox")
    for message_id in ids:
        actor.send(message_id)
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dramatiq", "app:broker", "flexmail.tasks", "--processes", "1",
                                 "--threads", str(threads)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + max(120, len(ids) / 10)
        start_cpu = start_sent = None  # CPU is counted from the first mail on, not the start-up
        with app.app_context():
            while True:
                sent = db.session.scalar(select(func.count()).where(OutboxMessage.status == "sent"))
                db.session.rollback()
                if sent and start_cpu is None:
                    start_cpu, start_sent = _worker_cpu(proc.pid), sent
                if sent == len(ids):
                    break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"worker did not finish ({sent}/{len(ids)} sent); see {log}")
                time.sleep(0.05)
            first, last = db.session.execute(
                select(func.min(OutboxMessage.sent_at), func.max(OutboxMessage.sent_at))).one()
            db.session.rollback()
        cpu_per_mail = (_worker_cpu(proc.pid) - start_cpu) / max(len(ids) - start_sent, 1)
    finally:
        proc.terminate()
        proc.wait(30)
    return (len(ids) - 1) / max((last - first).total_seconds(), 1e-9), cpu_per_mail


def _worker_cpu(pid: int) -> float:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sum(_cpu_seconds(int(child)) for child in children)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def middleware_cost(app, messages: int, rounds: int = 3) -> dict[str, float]:
    """Microseconds per message of a no-op actor on a StubBroker with various middleware
    (the setups interleaved, ``rounds`` times; the median of each)."""
    import statistics

    import dramatiq
    from dramatiq.brokers.stub import StubBroker
    from dramatiq.middleware import default_middleware

    from flexmail.broker import AppContextMiddleware

    setups = {"none": lambda: [], "dramatiq default": lambda: [m() for m in default_middleware],
              "default + app context": lambda: [m() for m in default_middleware] + [AppContextMiddleware(app)]}
    costs: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(rounds):
        for name, middleware in setups.items():
            broker = StubBroker(middleware=middleware())
            broker.emit_after("process_boot")

            @dramatiq.actor(broker=broker, queue_name="noop")
            def noop(i):
                return None

            for i in range(messages):
                noop.send(i)
            worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=10)
            started = time.perf_counter()
            worker.start()
            broker.join("noop")
            worker.join()
            costs[name].append((time.perf_counter() - started) / messages * 1e6)
            worker.stop()
            broker.close()
    return {name: statistics.median(values) for name, values in costs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8, help="worker threads of the one worker process")
    parser.add_argument("--tiny", action="store_true", help="50 mails: a smoke run for CI (figures meaningless)")
    parser.add_argument("--server", default=os.environ.get("FLEXMAIL_BENCH_POSTGRES_URL",
                                                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis", default=os.environ.get("FLEXMAIL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    n = 50 if args.tiny else args.mails
    database = f"flexmail_bench_mail_{os.getpid()}"
    admin = create_engine(args.server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {database}"))
        conn.execute(text(f"CREATE DATABASE {database}"))
    url = args.server.rsplit("/", 1)[0] + "/" + database
    port = free_port()
    sink = start_sink(port)
    tmp = Path(tempfile.mkdtemp(prefix="flexmail-bench-mail-"))
    namespace = f"fm-bench-{uuid.uuid4().hex[:8]}"
    config = {"DATABASE_URL": url, "BROKER_URL": args.redis, "BROKER_NAMESPACE": namespace,
              "MAIL_URL": f"smtp://127.0.0.1:{port}", "PUBLIC_URL": "https://bench.example",
              "SECRET_KEYS": "bench-secret", "HASH_KEY": "bench-pepper", "EMBEDDED_WORKER": "0",
              "OUTBOX_SWEEP_INTERVAL": "0", "LOG_LEVEL": "WARNING", "CONFIRM_PER_ACCOUNT_PER_HOUR": str(10 * n)}
    env = {**os.environ, "FLEXMAIL_INSTANCE_PATH": str(tmp / "instance"),
           **{f"FLEXMAIL_{k}": v for k, v in config.items()}}
    os.environ.update(env)
    from flexmail import create_app
    from flexmail.extensions import db

    app = create_app()
    try:
        with app.app_context():
            db.create_all()
        ids = seed(app, n)
        message = sample_message(app)
        before = baseline(port, message, n)
        worker_rate, cpu_per_mail = run_worker(app, env, ids, args.threads, tmp / "worker.log")
        after = baseline(port, message, n)
        base = max(before, after)
        costs = middleware_cost(app, 200 if args.tiny else 5000)
    finally:
        app.extensions["dramatiq"].flush_all()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        sink.stdin.close()
        sink.wait(10)
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
    print(f"machine: {machine()}")
    print(f"date: {dt.date.today().isoformat()}, mails: {n}, worker threads: {args.threads}, "
          f"message size: {len(message)} bytes")
    print(f"baseline (bare smtplib loop, one connection): {before:,.0f} msg/s before, {after:,.0f} msg/s after")
    print(f"worker (one dramatiq process, Redis + PostgreSQL): {worker_rate:,.0f} msg/s, "
          f"{cpu_per_mail * 1000:.2f} ms worker CPU per mail")
    print(f"ratio worker / baseline: {worker_rate / base:.2f} (target >= 0.5)")
    print("dramatiq per-message cost of a no-op actor (us): "
          + ", ".join(f"{name} {cost:.0f}" for name, cost in costs.items()))


if __name__ == "__main__":
    main()
