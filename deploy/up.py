"""`./dev up`: the production topology on this machine, in the foreground; Ctrl-C stops it all.

Against this machine's PostgreSQL and Redis it creates the database (``flexmail_dev``) when
missing, migrates it, and starts, each in its own process group:

========  ==========================================================================
web       gunicorn with ``deploy/gunicorn.conf.py`` (``app:app``) on ``--port``
worker-N  ``--workers`` x ``dramatiq app:broker flexmail.tasks --processes 1`` (as the systemd
          units run them); dramatiq's Prometheus middleware serves on 127.0.0.1:9191, 9192, ...
relay     ``deploy/relay_sink.py``: an aiosmtpd relay sink filing every mail in a Maildir
          (no Postfix here; with one, pass ``--relay smtp://127.0.0.1:25`` and no sink starts)
inbound   ``flask inbound serve``: the SMTP listener for mailto unsubscribes and reports
========  ==========================================================================

Each line of output is prefixed with its process name. When one process ends on its own the
others are stopped too (this is a development runner: restarting dead workers is the job of
the systemd units in deploy/). ``--check`` starts everything, waits for ``/ready``, prints the
endpoints and stops: a smoke test of the topology.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def ensure_database(server: str, name: str) -> bool:
    """Create ``name`` on ``server`` when missing; True when it was created."""
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
        return True


def _pump(name: str, stream, lock: threading.Lock, spoken: set) -> None:
    for line in iter(stream.readline, b""):
        spoken.add(name)
        with lock:
            sys.stdout.write(f"{name:>8} | {line.decode(errors='replace')}")
            sys.stdout.flush()


def wait_ready(url: str, timeout: float) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    status, body = 0, ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (loopback)
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read().decode()
        except OSError:
            pass
        time.sleep(0.5)
    return status, body


class Supervisor:
    """Starts named commands, relays their output, stops them all once."""

    def __init__(self):
        self.procs: dict[str, subprocess.Popen] = {}
        #: Processes that printed at least one line (their start-up line): started for real.
        self.spoken: set[str] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def start(self, name: str, cmd: list[str], env: dict) -> None:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # noqa: S603
                                start_new_session=True)
        self.procs[name] = proc
        threading.Thread(target=_pump, args=(name, proc.stdout, self.lock, self.spoken), daemon=True).start()

    def first_exit_now(self) -> tuple[str, int] | None:
        """A process that has ended already, if any (does not wait)."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                return name, proc.returncode
        return None

    def first_exit(self) -> tuple[str, int] | None:
        """Block until a process ends (returns it) or ``stop`` was asked (returns None)."""
        while not self.stopping.wait(0.5):
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    return name, proc.returncode
        return None

    def stop_all(self, grace: float = 15) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"up: {name} did not stop within {grace:.0f} s: killed", flush=True)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", 2)),
                        help="dramatiq worker processes")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("THREADS", 4)),
                        help="threads per dramatiq worker process")
    parser.add_argument("--web-workers", type=int, default=int(os.environ.get("FLEXMAIL_WEB_WORKERS", 2)))
    parser.add_argument("--server", default=os.environ.get("FLEXMAIL_DEV_POSTGRES", "postgresql://postgres@127.0.0.1:5432"),
                        help="PostgreSQL server (no database name)")
    parser.add_argument("--database", default="flexmail_dev")
    parser.add_argument("--redis", default=os.environ.get("FLEXMAIL_DEV_REDIS", "redis://127.0.0.1:6379/2"))
    parser.add_argument("--relay", default=None, help="smtp://host:port of a real relay; default: start the sink")
    parser.add_argument("--relay-port", type=int, default=2525)
    parser.add_argument("--inbound-port", type=int, default=8025)
    parser.add_argument("--metrics-port", type=int, default=9191, help="the dramatiq workers' Prometheus port")
    parser.add_argument("--instance", type=Path, default=ROOT / "instance" / "dev")
    parser.add_argument("--check", action="store_true", help="start, wait for /ready, print, stop")
    args = parser.parse_args()

    args.instance.mkdir(parents=True, exist_ok=True)
    created = ensure_database(args.server, args.database)
    print(f"up: database {args.database} {'created' if created else 'exists'}", flush=True)
    db_url = f"{args.server}/{args.database}".replace("postgresql://", "postgresql+psycopg://", 1)
    relay_maildir = args.instance / "relay"
    relay_url = args.relay or f"smtp://127.0.0.1:{args.relay_port}"
    metrics_dir = Path(tempfile.mkdtemp(prefix="flexmail-up-prometheus-"))
    worker_metrics_dir = Path(tempfile.mkdtemp(prefix="flexmail-up-dramatiq-prometheus-"))
    env = {**os.environ,
           "FLEXMAIL_DATABASE_URL": db_url, "FLEXMAIL_BROKER_URL": args.redis,
           "FLEXMAIL_RATELIMIT_STORAGE_URL": args.redis, "FLEXMAIL_MAIL_URL": relay_url,
           "FLEXMAIL_PUBLIC_URL": os.environ.get("FLEXMAIL_PUBLIC_URL", f"http://127.0.0.1:{args.port}"),
           "FLEXMAIL_INSTANCE_PATH": str(args.instance), "FLEXMAIL_EMBEDDED_WORKER": "false",
           "FLASK_APP": "app", "PYTHONUNBUFFERED": "1"}
    # One secrets file for every process: made once by the first app start (flask db upgrade).
    migrate = subprocess.run([str(BIN / "flask"), "db", "upgrade"], cwd=ROOT, env=env,  # noqa: S603
                             capture_output=True, text=True, check=False)
    if migrate.returncode:
        print(migrate.stderr[-3000:], file=sys.stderr)
        return 1
    print("up: migrations at head", flush=True)

    web_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "FLEXMAIL_BIND": f"127.0.0.1:{args.port}",
               "FLEXMAIL_WEB_WORKERS": str(args.web_workers)}
    worker_env = {**env, "FLEXMAIL_WORKER_METRICS": "1", "PROMETHEUS_MULTIPROC_DIR": str(worker_metrics_dir),
                  "dramatiq_prom_db": str(worker_metrics_dir), "dramatiq_prom_host": "127.0.0.1",
                  "dramatiq_prom_port": str(args.metrics_port)}
    sup = Supervisor()
    signal.signal(signal.SIGINT, lambda *_: sup.stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: sup.stopping.set())
    code = 0
    try:
        if not args.relay:
            sup.start("relay", [sys.executable, "deploy/relay_sink.py", "--port", str(args.relay_port),
                                "--maildir", str(relay_maildir)], env)
        sup.start("web", [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "app:app"], web_env)
        # One dramatiq master per worker process, as deploy/systemd/flexmail-worker@.service runs
        # them: a master stops all its children when one dies, so N masters of one process each
        # lose one process, not the fleet. Each serves the shared figures on its own port.
        for i in range(args.workers):
            sup.start(f"worker-{i + 1}", [str(BIN / "dramatiq"), "app:broker", "flexmail.tasks", "--processes", "1",
                                          "--threads", str(args.threads)],
                      {**worker_env, "dramatiq_prom_port": str(args.metrics_port + i)})
        # inbound shares the web's metrics directory: its mailto unsubscribes appear in /metrics.
        sup.start("inbound", [str(BIN / "flask"), "inbound", "serve", "--port", str(args.inbound_port)], web_env)
        status, body = wait_ready(f"http://127.0.0.1:{args.port}/ready", timeout=60)
        print(f"up: /ready {status} {body.strip()}", flush=True)
        ports = f"{args.metrics_port}-{args.metrics_port + args.workers - 1}"
        print(f"up: web http://127.0.0.1:{args.port}  (/health /ready /metrics)  workers {args.workers}x"
              f"{args.threads} (metrics 127.0.0.1:{ports})  relay {relay_url}"
              f"{'' if args.relay else f' -> Maildir {relay_maildir}'}  inbound smtp 127.0.0.1:{args.inbound_port}",
              flush=True)
        if args.check:
            metrics, text = wait_ready(f"http://127.0.0.1:{args.port}/metrics", timeout=10)
            seen = sorted({line.split("{")[0].split(" ")[0] for line in text.splitlines()
                           if line.startswith("flexmail_")})
            print(f"up: /metrics {metrics}: {len(seen)} flexmail series", flush=True)
            deadline = time.monotonic() + 60  # a loaded machine starts the slower processes late
            while set(sup.procs) - sup.spoken and time.monotonic() < deadline and sup.first_exit_now() is None:
                time.sleep(0.2)
            silent = sorted(set(sup.procs) - sup.spoken)
            if silent:
                print(f"up: no output yet from {', '.join(silent)}", flush=True)
            code = 0 if status == 200 and metrics == 200 and "flexmail_outbox_depth" in seen and not silent else 1
        else:
            print("up: Ctrl-C stops everything", flush=True)
            ended = sup.first_exit()
            if ended:
                print(f"up: {ended[0]} exited with {ended[1]}: stopping the rest", flush=True)
                code = 1
    finally:
        sup.stop_all()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        shutil.rmtree(worker_metrics_dir, ignore_errors=True)
        print("up: all stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
