"""Soak: minutes of mixed traffic against the production topology, with real faults, then an audit.

The topology is the one ``deploy/`` runs, all started here on free ports:

- a PostgreSQL cluster of its own (initdb + pg_ctl in a temporary folder), so it can be restarted;
- a ``redis-server`` of its own (dramatiq broker and rate-limit store);
- gunicorn (``deploy/gunicorn.conf.py``, 2 workers), 2 dramatiq worker units
  (``dramatiq app:broker flexmail.tasks --processes 1``, restarted by this script after 2 s
  when one ends, as ``Restart=always`` does) and ``flask inbound serve``;
- an aiosmtpd relay in this process that records every mail it accepts and can answer 451.

A concurrent traffic generator (threads, httpx) plays people through the public pages, the
API and the inbound SMTP listener, keeping a ledger of what must result. Each person gets a
role: confirm; confirm then one-click unsubscribe; one-click while still pending; confirm then
forward to two friends; confirm then unsubscribe by mail (mailto); a hard bounce (5.1.1 DSN);
confirm then a soft bounce (4.2.2); or stay pending. A compliance export streams every few
seconds. Retried requests (after a 503, 409 in progress or a cut connection) carry the same
``Idempotency-Key`` or token, as a careful client's would.

Faults injected for real while traffic runs: the relay answers 451 to every recipient for
two minutes (scaled with ``--minutes``), PostgreSQL is stopped (``-m immediate``, a crash)
and started again, and one dramatiq worker process gets SIGKILL.

After the traffic, the outbox, the opt-out spool and the broker get a bounded time to drain,
then every count is checked against the ledger: subscriptions per state, consent events
per type (and per person), suppressions per reason, bounce decisions, the spool (every
spooled opt-out applied exactly once, ``flask spool status``/``drain``), each confirmation
and forward mail received by the relay exactly once, the campaign's forward counters, and
the exports (every one complete with a matching manifest; a final one holds every event and
passes ``flask proof verify``). 5xx: only 503 with Retry-After during the database restart,
and never for an opt-out. Exit 1 if any expectation fails.

    .venv/bin/python bench/soak.py [--minutes 10] [--tiny] [--json PATH] [--seed N]
"""

from __future__ import annotations

import argparse
import collections
import email
import email.policy
import hashlib
import itertools
import json
import os
import pwd
import queue
import random
import re
import secrets
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, machine, stop_processes  # noqa: E402

BIN = Path(sys.executable).parent
PG_BIN = Path(os.environ.get("FLEXMAIL_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
INBOUND_DOMAIN = "soak.flexmail.test"
ONE_CLICK = b"List-Unsubscribe=One-Click"

#: role -> (weight, consent events that must result, final status).
ROLES = {
    "confirm": (22, ["subscribe_requested", "confirmation_sent", "confirmed"], "subscribed"),
    "confirm_unsub": (16, ["subscribe_requested", "confirmation_sent", "confirmed", "unsubscribed"],
                      "unsubscribed"),
    "pending_unsub": (8, ["subscribe_requested", "confirmation_sent", "unsubscribed"], "unsubscribed"),
    "forward": (14, ["subscribe_requested", "confirmation_sent", "confirmed"], "subscribed"),
    "mailto_unsub": (8, ["subscribe_requested", "confirmation_sent", "confirmed", "unsubscribed"],
                     "unsubscribed"),
    "hard_bounce": (8, ["subscribe_requested", "confirmation_sent", "bounced", "suppressed"], "pending"),
    "soft_bounce": (8, ["subscribe_requested", "confirmation_sent", "confirmed", "bounced"], "subscribed"),
    "pending": (16, ["subscribe_requested", "confirmation_sent"], "pending"),
    # Confirmed, then an opt-out (one-click or mailto, alternately) held back until the
    # database is down, as a mailbox provider's POST arrives whatever our state.
    "outage_unsub": (8, ["subscribe_requested", "confirmation_sent", "confirmed", "unsubscribed"], "unsubscribed"),
}
OPT_OUT_KINDS = {"one-click"}


def wait_port(port: int, *, up: bool, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            if up:
                return
        except OSError:
            if not up:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not go {'up' if up else 'down'}")


# -- the servers this script owns ------------------------------------------------------------


class Postgres:
    """A private cluster (initdb + pg_ctl) that can crash and start again (as tests/faults.py)."""

    def __init__(self, root: Path):
        if not (PG_BIN / "initdb").exists():
            raise SystemExit(f"soak: PostgreSQL binaries not found in {PG_BIN} (FLEXMAIL_TEST_PG_BIN)")
        self.port = free_port()
        self.root = root / "pg"
        self.root.mkdir()
        self.user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        if self.user:  # initdb refuses to run as root
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self._run("initdb", "-D", str(self.root / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C.UTF-8")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(PG_BIN / tool), *args]
        if self.user:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.root)  # noqa: S603

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c max_connections=200")
        self._run("pg_ctl", "-D", str(self.root / "data"), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        wait_port(self.port, up=True)

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", mode, "-w", "stop")
        wait_port(self.port, up=False)

    def destroy(self) -> None:
        try:
            self.stop()
        except (subprocess.CalledProcessError, RuntimeError):
            pass


class Redis:
    def __init__(self):
        binary = shutil.which("redis-server")
        if not binary:
            raise SystemExit("soak: redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",  # noqa: S603
                                         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        wait_port(self.port, up=True)


class RelayHandler:
    """The outgoing relay: records every accepted mail; answers 451 at RCPT while ``refusing``."""

    def __init__(self, on_mail):
        self.refusing = threading.Event()
        self.on_mail = on_mail
        self.refused = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refusing.is_set():
            with self.lock:
                self.refused += 1
            return "451 4.3.2 soak: relay refusing for a while"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        for rcpt in envelope.rcpt_tos:
            self.on_mail(rcpt.lower(), data)
        return "250 OK queued"


# -- the topology ----------------------------------------------------------------------------


class Topology:
    """gunicorn, N dramatiq worker units and ``inbound serve``, each in its own process group.

    A dramatiq unit that ends is started again after 2 s (systemd's ``Restart=always``,
    ``RestartSec=2`` in deploy/systemd/flexmail-worker@.service)."""

    def __init__(self, env: dict, logs: Path, *, workers: int, threads: int, web_port: int, inbound_port: int):
        self.env, self.logs, self.threads = env, logs, threads
        self.web_port, self.inbound_port = web_port, inbound_port
        self.procs: dict[str, subprocess.Popen] = {}
        self.worker_names = [f"worker-{i + 1}" for i in range(workers)]
        self.restarts = collections.Counter()
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def _start(self, name: str, cmd: list[str], env: dict | None = None) -> None:
        out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env or self.env, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                start_new_session=True)
        out.close()
        self.procs[name] = proc

    def _start_worker(self, name: str) -> None:
        self._start(name, [str(BIN / "dramatiq"), "app:broker", "flexmail.tasks", "--processes", "1",
                           "--threads", str(self.threads)])

    def start(self) -> None:
        self._start("web", [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "app:app"],
                    {**self.env, "FLEXMAIL_BIND": f"127.0.0.1:{self.web_port}", "FLEXMAIL_WEB_WORKERS": "2",
                     "FLEXMAIL_WEB_THREADS": "4"})
        for name in self.worker_names:
            self._start_worker(name)
        self._start("inbound", [str(BIN / "flask"), "inbound", "serve", "--port", str(self.inbound_port)])
        threading.Thread(target=self._supervise, name="supervisor", daemon=True).start()

    def _supervise(self) -> None:
        while not self.stopping.wait(0.5):
            for name in self.worker_names:
                with self.lock:
                    proc = self.procs[name]
                    if proc.poll() is None or self.stopping.is_set():
                        continue
                time.sleep(2)  # RestartSec=2
                with self.lock:
                    if not self.stopping.is_set():
                        if _group_alive(proc.pid):  # what is left of the unit (systemd: KillMode)
                            os.killpg(proc.pid, signal.SIGKILL)
                        self._start_worker(name)
                        self.restarts[name] += 1

    def kill_worker(self, name: str) -> int:
        """SIGKILL the dramatiq worker process (the child that runs the actors) of unit ``name``."""
        with self.lock:
            master = self.procs[name].pid
        children = [c for c in _children(master) if b"resource_tracker" not in _cmdline(c)]
        if not children:
            raise RuntimeError(f"{name}: no worker process found under {master}")
        os.kill(children[0], signal.SIGKILL)
        return children[0]

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        wait_port(self.web_port, up=True, timeout=timeout)
        wait_port(self.inbound_port, up=True, timeout=max(1, deadline - time.monotonic()))
        for name in self.worker_names:  # a worker is ready when its child has booted
            while time.monotonic() < deadline and b"is ready" not in (self.logs / f"{name}.log").read_bytes():
                time.sleep(0.2)

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            stop_processes(list(self.procs.values()))


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


# -- the ledger ------------------------------------------------------------------------------


@dataclass
class Person:
    n: int
    email: str
    role: str
    ip: str
    idem: str = field(default_factory=lambda: uuid.uuid4().hex)
    sub_id: int | None = None
    mail: dict | None = None  # the confirmation mail the relay received first
    done: bool = False
    friends: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    unsubscribe: dict | None = None


class Ledger:
    """What the traffic generator did and therefore expects; every answer it got."""

    def __init__(self):
        self.lock = threading.Lock()
        self.people: dict[str, Person] = {}
        self.statuses = collections.Counter()  # (kind, status)
        self.bad: list[str] = []  # unexpected answers, described
        self.mail = collections.defaultdict(list)  # recipient -> [(message_id, bytes)]
        self.spool_202 = 0
        self.forwards_ok = 0
        self.exports = collections.Counter()
        self.db_down: list[list[float]] = []  # [stopped_at, started_at]
        self.waiters: dict[str, threading.Event] = {}

    def answer(self, kind: str, status: int | str) -> None:
        with self.lock:
            self.statuses[(kind, status)] += 1

    def problem(self, text: str) -> None:
        with self.lock:
            self.bad.append(text)

    def in_db_outage(self, at: float, grace: float) -> bool:
        return any(start - 5 <= at <= (end or time.monotonic()) + grace for start, end in self.db_down)


class Traffic:
    """Threads that play people; follow-up steps are queued when the relay receives their mail."""

    def __init__(self, args, ledger: Ledger, base: str, inbound_port: int, key: str, list_id: int, campaign_id: int):
        self.args, self.ledger, self.base = args, ledger, base
        self.inbound_port, self.key, self.list_id, self.campaign_id = inbound_port, key, list_id, campaign_id
        self.work: queue.Queue = queue.Queue()
        self.rng = random.Random(args.seed)
        self.counter = itertools.count(1)
        self.local = threading.local()
        self.run_id = secrets.token_hex(3)
        self.stop = threading.Event()
        self.roles = [r for r, (w, _, _) in ROLES.items() for _ in range(w)]
        #: Opt-outs held for the database restart: released (each in its own thread) when it stops.
        self.parked: list = []
        self.db_stopped = threading.Event()
        self.opt_out_threads: list[threading.Thread] = []
        self.released = 0

    # HTTP with retries ------------------------------------------------------------------

    def client(self) -> httpx.Client:
        if not hasattr(self.local, "client"):
            self.local.client = httpx.Client(base_url=self.base, timeout=60)
        return self.local.client

    def request(self, kind: str, method: str, path: str, *, ok=(200,), retry=(503,), client=None, **kw):
        """Send until the answer is in ``ok``; retry the ``retry`` statuses and cut connections
        after a pause, as a client honouring Retry-After would (but sooner: 1 s)."""
        client = client or self.client()
        api = path.startswith("/api/")
        for _ in range(600):
            started = time.monotonic()
            try:
                response = client.request(method, path, **kw)
            except httpx.TransportError as exc:
                self.ledger.answer(kind, type(exc).__name__)
                time.sleep(1)
                continue
            status = response.status_code
            self.ledger.answer(kind, status)
            if status >= 500:
                self._judge_5xx(kind, status, response, started, api)
            if status in ok:
                return response
            if status in retry or status == 409 and api and "idempotency_in_progress" in response.text:
                time.sleep(1)
                continue
            self.ledger.problem(f"{kind}: unexpected {status} {response.text[:200]!r}")
            return None
        self.ledger.problem(f"{kind}: gave up after 600 tries")
        return None

    def _judge_5xx(self, kind, status, response, started, api) -> None:
        if kind in OPT_OUT_KINDS:
            self.ledger.problem(f"{kind}: an opt-out answered {status}")
        elif status != 503 or "Retry-After" not in response.headers:
            self.ledger.problem(f"{kind}: {status} (only 503 + Retry-After is allowed) {response.text[:200]!r}")
        elif not self.ledger.in_db_outage(started, grace=15):
            self.ledger.problem(f"{kind}: 503 outside the database restart")

    def api(self, kind, method, path, **kw):
        headers = {"Authorization": f"Bearer {self.key}", **kw.pop("headers", {})}
        return self.request(kind, method, path, headers=headers, **kw)

    # the people -------------------------------------------------------------------------

    def generate(self, seconds: float, rate: float) -> None:
        """Start ``rate`` people a second for ``seconds`` (their first step: subscribe)."""
        end = time.monotonic() + seconds
        next_at = time.monotonic()
        while time.monotonic() < end and not self.stop.is_set():
            n = next(self.counter)
            # The first people hold opt-outs for the restart, so that it always meets some.
            role = "outage_unsub" if n <= self.args.held_opt_outs else self.rng.choice(self.roles)
            person = Person(n, f"p{n}-{self.run_id}@people.example.org", role,
                            f"198.51.{n // 250 % 250}.{n % 250 + 1}")
            with self.ledger.lock:
                self.ledger.people[person.email] = person
            self.work.put((self.subscribe, person))
            next_at += self.rng.expovariate(rate)
            time.sleep(max(0.0, next_at - time.monotonic()))

    def worker(self) -> None:
        while True:
            item = self.work.get()
            if item is None:
                return
            fn, person = item
            try:
                fn(person)
            except Exception as exc:  # a bug in the generator must show, not hang the run
                self.ledger.problem(f"generator: {fn.__name__} for person {person.n}: {exc!r}")
                person.done = True

    def subscribe(self, p: Person) -> None:
        response = self.api("subscribe", "POST", f"/api/v1/lists/{self.list_id}/subscriptions", ok=(202,),
                            headers={"Idempotency-Key": p.idem},
                            json={"email": p.email, "ip": p.ip, "user_agent": "soak/1", "source": "soak"})
        if response is None:
            p.done = True
            return
        p.sub_id = response.json()["subscription"]["id"]
        p.steps.append("subscribed")
        with self.ledger.lock:
            arrived = p.mail is not None
        if arrived:  # the mail came before we read the answer
            self.work.put((self.after_mail, p))

    def on_mail(self, rcpt: str, data: bytes) -> None:
        """The relay accepted ``data`` for ``rcpt`` (called in the relay's thread)."""
        message = email.message_from_bytes(data, policy=email.policy.default)
        with self.ledger.lock:
            self.ledger.mail[rcpt].append((message["Message-ID"], data))
            person = self.ledger.people.get(rcpt)
            first = person is not None and person.mail is None
            if first:
                person.mail = {"message_id": message["Message-ID"], "body": _text_of(message)}
            ready = first and person.sub_id is not None
        if ready:
            self.work.put((self.after_mail, person))

    def after_mail(self, p: Person) -> None:
        match = re.search(r"/confirm/([A-Za-z0-9_.\-]+)", p.mail["body"])
        role = p.role
        if role in ("confirm", "confirm_unsub", "forward", "mailto_unsub", "soft_bounce", "outage_unsub"):
            if match is None:
                self.ledger.problem(f"person {p.n}: no confirm link in the mail")
                p.done = True
                return
            if self.request("confirm", "POST", f"/confirm/{match.group(1)}") is None:
                p.done = True
                return
            p.steps.append("confirmed")
        if role in ("confirm_unsub", "pending_unsub"):
            self.one_click(p)
        elif role == "forward":
            self.forward(p)
        elif role == "mailto_unsub":
            self.mailto(p)
        elif role in ("hard_bounce", "soft_bounce"):
            self.bounce(p, hard=role == "hard_bounce")
        elif role == "outage_unsub":
            self.park(p)
            return
        p.done = True

    def park(self, p: Person) -> None:
        """Hold ``p``'s opt-out until the database is down (or send it now if it was already)."""
        detail = self.detail(p)
        if detail is None:
            p.done = True
            return
        p.unsubscribe = detail

        def opt_out():
            if p.n % 2:
                self.one_click(p, detail)
            else:
                self.mailto(p, detail)
            p.done = True

        with self.ledger.lock:
            if not self.db_stopped.is_set():
                self.parked.append(opt_out)
                return
        opt_out()

    def release_parked(self) -> None:
        """The database just stopped: every held opt-out goes now, concurrently."""
        with self.ledger.lock:
            self.db_stopped.set()
            parked, self.parked = self.parked, []
        self.released = len(parked)
        for fn in parked:
            thread = threading.Thread(target=fn, daemon=True)
            thread.start()
            self.opt_out_threads.append(thread)

    def detail(self, p: Person, campaign: bool = False) -> dict | None:
        query = f"?campaign_id={self.campaign_id}" if campaign else ""
        response = self.api("api-read", "GET", f"/api/v1/subscriptions/{p.sub_id}{query}")
        return response.json() if response is not None else None

    def one_click(self, p: Person, detail: dict | None = None) -> None:
        detail = detail or self.detail(p)
        if detail is None:
            return
        path = "/unsubscribe/" + detail["unsubscribe_url"].rsplit("/unsubscribe/", 1)[1]
        response = self.request("one-click", "POST", path, ok=(200, 202), retry=(),
                                content=ONE_CLICK, headers={"Content-Type": "application/x-www-form-urlencoded"})
        if response is not None:
            p.steps.append(f"one-click {response.status_code}")
            if response.status_code == 202:
                with self.ledger.lock:
                    self.ledger.spool_202 += 1

    def forward(self, p: Person) -> None:
        detail = self.detail(p, campaign=True)
        if detail is None or not detail.get("forward_url"):
            self.ledger.problem(f"person {p.n}: no forward_url")
            return
        path = "/forward/" + detail["forward_url"].rsplit("/forward/", 1)[1]
        friends = [f"f{p.n}-{i}-{self.run_id}@friends.example.org" for i in (1, 2)]
        with httpx.Client(base_url=self.base, timeout=60) as client:  # its own session cookie (CSRF)
            page = self.request("forward-page", "GET", path, client=client)
            if page is None:
                return
            csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
            response = self.request("forward", "POST", path, client=client,
                                    data={"csrf_token": csrf.group(1) if csrf else "", "friend": friends,
                                          "sender_name": "A reader", "note": ""})
            if response is None:
                return
        p.friends = friends
        p.steps.append("forwarded")
        with self.ledger.lock:
            self.ledger.forwards_ok += 1

    def mailto(self, p: Person, detail: dict | None = None) -> None:
        detail = detail or self.detail(p)
        if detail is None:
            return
        address = re.search(r"<mailto:([^?>]+)", detail["list_unsubscribe"]).group(1)
        message = (f"From: <{p.email}>\r\nTo: <{address}>\r\nSubject: unsubscribe\r\n"
                   f"Message-ID: <{uuid.uuid4().hex}@people.example.org>\r\n\r\nunsubscribe\r\n").encode()
        if self.smtp("mailto", p.email, address, message):
            p.steps.append("mailto")

    def bounce(self, p: Person, *, hard: bool) -> None:
        status, code, text = ("5.1.1", 550, "user unknown") if hard else ("4.2.2", 452, "mailbox full")
        dsn = (f"From: MAILER-DAEMON@mx.example.org\r\nTo: bounces@{INBOUND_DOMAIN}\r\n"
               "Subject: Undelivered Mail Returned to Sender\r\n"
               f"Message-ID: <{uuid.uuid4().hex}@mx.example.org>\r\n"
               "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
               "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
               "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
               f"Final-Recipient: rfc822; {p.email}\r\nAction: failed\r\nStatus: {status}\r\n"
               f"Diagnostic-Code: smtp; {code} {status} {text}\r\n\r\n"
               f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {p.mail['message_id']}\r\n"
               f"To: {p.email}\r\n\r\n--B--\r\n").encode()
        if self.smtp("bounce-dsn", "", f"bounces@{INBOUND_DOMAIN}", dsn):
            p.steps.append("bounced")

    def smtp(self, kind: str, sender: str, rcpt: str, data: bytes) -> bool:
        """Deliver to ``inbound serve`` as an MTA would: retry a 4xx (or no connection) later."""
        for _ in range(600):
            try:
                with smtplib.SMTP("127.0.0.1", self.inbound_port, timeout=60) as smtp:
                    smtp.sendmail(sender, [rcpt], data)
                self.ledger.answer(kind, 250)
                return True
            except smtplib.SMTPResponseException as exc:
                self.ledger.answer(kind, exc.smtp_code)
                if exc.smtp_code >= 500:
                    self.ledger.problem(f"{kind}: refused {exc.smtp_code}")
                    return False
            except smtplib.SMTPRecipientsRefused as exc:
                code = next(iter(exc.recipients.values()))[0]
                self.ledger.answer(kind, code)
                if code >= 500:
                    self.ledger.problem(f"{kind}: recipient refused {code}")
                    return False
            except (OSError, smtplib.SMTPException) as exc:
                self.ledger.answer(kind, type(exc).__name__)
            time.sleep(1)
        self.ledger.problem(f"{kind}: gave up")
        return False

    def exports(self, every: float) -> None:
        while not self.stop.wait(every):
            self.export_once("export")

    def export_once(self, kind: str) -> dict | None:
        """One export, retried until it arrives whole; returns its manifest."""
        for _ in range(100):
            started = time.monotonic()
            try:
                with self.client().stream("GET", "/api/v1/proof/export?format=jsonl",
                                          headers={"Authorization": f"Bearer {self.key}"}) as response:
                    status = response.status_code
                    body = response.read()
                    text = body.decode(errors="replace") if status != 200 else ""
            except httpx.TransportError:
                self.ledger.exports["cut"] += 1  # the restart cut the stream: take it again
                time.sleep(1)
                continue
            self.ledger.answer(kind, status)
            if status != 200:
                if status >= 500:
                    self._judge_5xx(kind, status, response, started, True)
                if status != 503:
                    self.ledger.problem(f"{kind}: {status} {text[:200]!r}")
                    return None
                time.sleep(1)
                continue
            lines = body.split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            manifest = json.loads(lines[-1]).get("manifest") if lines else None
            if manifest is None:
                self.ledger.exports["cut"] += 1
                time.sleep(1)
                continue
            data = b"".join(line + b"\n" for line in lines[:-1])
            if manifest["count"] != len(lines) - 1 or manifest["data_sha256"] != hashlib.sha256(data).hexdigest():
                self.ledger.problem(f"{kind}: the manifest does not match the rows ({manifest['count']} listed, "
                                    f"{len(lines) - 1} rows)")
                self.ledger.exports["bad"] += 1
                return None
            self.ledger.exports["complete"] += 1
            manifest["_body"] = body
            return manifest
        self.ledger.problem(f"{kind}: no complete export after 100 tries")
        return None


def _text_of(message) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


# -- the run ---------------------------------------------------------------------------------


def flask(env: dict, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "flask"), *args], cwd=ROOT, env=env, input=stdin,  # noqa: S603
                          capture_output=True, check=False, timeout=300)


def main() -> int:  # noqa: PLR0915 (one run, top to bottom)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="minutes of traffic (default 10)")
    parser.add_argument("--tiny", action="store_true", help="about a minute in all, small scale, every fault")
    parser.add_argument("--rate", type=float, default=None, help="new people a second (default 3; tiny 2)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--held-opt-outs", type=int, default=None,
                        help="the first N people send their opt-out as the database stops (default 8; tiny 6)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    seconds = 30.0 if args.tiny else args.minutes * 60
    rate = args.rate or (2.0 if args.tiny else 3.0)
    if args.held_opt_outs is None:
        args.held_opt_outs = 6 if args.tiny else 8
    args.seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    scale = seconds / 600  # the faults of a 10-minute run, scaled
    relay_window = max(6.0, 120 * scale)
    db_down = max(3.0, 20 * scale)
    drain_bound = 40.0 if args.tiny else 360.0

    tmp = Path(tempfile.mkdtemp(prefix="flexmail-soak-"))
    (tmp / "logs").mkdir()
    if os.geteuid() == 0:
        os.chmod(tmp, 0o755)
    pg = Postgres(tmp)
    redis = Redis()
    ledger = Ledger()
    traffic_ref: list[Traffic] = []
    handler = RelayHandler(lambda rcpt, data: traffic_ref[0].on_mail(rcpt, data) if traffic_ref else None)
    import logging

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    relay_port, web_port, inbound_port = free_port(), free_port(), free_port()
    relay = Controller(handler, hostname="127.0.0.1", port=relay_port)
    topology = None
    started = time.monotonic()
    try:
        pg.start()
        relay.start()
        env = {**os.environ,
               "FLEXMAIL_DATABASE_URL": pg.url, "FLEXMAIL_BROKER_URL": redis.url,
               "FLEXMAIL_RATELIMIT_STORAGE_URL": redis.url, "FLEXMAIL_MAIL_URL": f"smtp://127.0.0.1:{relay_port}",
               "FLEXMAIL_PUBLIC_URL": f"http://127.0.0.1:{web_port}", "FLEXMAIL_INBOUND_DOMAIN": INBOUND_DOMAIN,
               "FLEXMAIL_INSTANCE_PATH": str(tmp / "instance"), "FLEXMAIL_EMBEDDED_WORKER": "false",
               "FLEXMAIL_SPOOL_DIR": str(tmp / "instance" / "spool"),
               "FLEXMAIL_SECRET_KEYS": secrets.token_urlsafe(32), "FLEXMAIL_HASH_KEY": secrets.token_urlsafe(32),
               "FLEXMAIL_SIGNING_KEY": secrets.token_urlsafe(32),
               # Every person comes from this one machine: limits meant for strangers are opened.
               "FLEXMAIL_API_RATE_LIMIT": "", "FLEXMAIL_CONFIRM_PER_IP_PER_HOUR": "1000000",
               "FLEXMAIL_CONFIRM_PER_ACCOUNT_PER_HOUR": "1000000", "FLEXMAIL_FORWARD_RATE_LIMIT": "100000 per minute",
               "FLEXMAIL_FORM_RATE_LIMIT": "100000 per minute", "FLEXMAIL_FORWARD_CAMPAIGN_DAILY_FACTOR": "1000",
               "FLEXMAIL_DATABASE_CONNECT_TIMEOUT": "2",
               "FLASK_APP": "app", "PYTHONUNBUFFERED": "1"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if args.tiny:  # the same schedules, in seconds instead of minutes
            env.update({"FLEXMAIL_OUTBOX_RETRY_BASE": "1", "FLEXMAIL_OUTBOX_RETRY_CAP": "4",
                        "FLEXMAIL_OUTBOX_SWEEP_INTERVAL": "2", "FLEXMAIL_OUTBOX_SWEEP_GRACE": "1",
                        "FLEXMAIL_OUTBOX_LEASE_SECONDS": "10", "FLEXMAIL_SPOOL_DRAIN_INTERVAL": "2",
                        "FLEXMAIL_FORWARD_RETRY_DELAY_MS": "1500", "FLEXMAIL_IDEMPOTENCY_LEASE_SECONDS": "10",
                        "FLEXMAIL_BROKER_HEARTBEAT_TIMEOUT": "5000",
                        "FLEXMAIL_BROKER_MAINTENANCE_CHANCE": "100000"})
        for step in (("db", "upgrade"),):
            done = flask(env, *step)
            if done.returncode:
                raise SystemExit(f"soak: flask {' '.join(step)} failed: {done.stderr.decode()[-2000:]}")
        topology = Topology(env, tmp / "logs", workers=2, threads=4, web_port=web_port, inbound_port=inbound_port)
        topology.start()  # (while the account is made)
        made = flask(env, "accounts", "create", "Soak", "--scopes", "marketer,compliance", "--json")
        key = json.loads(made.stdout)["api_key"]
        topology.wait_ready()
        base = f"http://127.0.0.1:{web_port}"
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=auth, timeout=60) as c:
            list_id = c.post("/api/v1/lists", json={
                "name": "Soak news", "sender_name": "Soak", "sender_email": "news@soak.example",
                "consent_text": "News from the soak test.", "language": "en"}).raise_for_status().json()["id"]
            campaign_id = c.post("/api/v1/campaigns", json={
                "list_id": list_id, "subject": "Soak campaign",
                "web_url": "https://soak.example/c/1"}).raise_for_status().json()["id"]
        setup_seconds = time.monotonic() - started
        traffic = Traffic(args, ledger, base, inbound_port, key, list_id, campaign_id)
        traffic_ref.append(traffic)
        threads = [threading.Thread(target=traffic.worker, daemon=True) for _ in range(16)]
        for t in threads:
            t.start()
        exporter = threading.Thread(target=traffic.exports, args=(max(3.0, 20 * scale),), daemon=True)
        exporter.start()
        faults = []
        fault_thread = threading.Thread(target=inject, daemon=True, args=(
            seconds, relay_window, db_down, handler, pg, topology, ledger, traffic, faults))
        fault_thread.start()
        t0 = time.monotonic()
        traffic.generate(seconds, rate)
        traffic_seconds = time.monotonic() - t0
        fault_thread.join()
        traffic.stop.set()
        # Drain: every person's steps done, every expected mail in, nothing left in the spool.
        drain_started = time.monotonic()
        exporter.join()
        while time.monotonic() - drain_started < drain_bound:
            if _settled(ledger):
                break
            time.sleep(0.5)
        spool_dir = tmp / "instance" / "spool"
        while time.monotonic() - drain_started < drain_bound and not _quiet(pg, spool_dir):
            time.sleep(0.5)
        drained_in = time.monotonic() - drain_started
        for _ in threads:
            traffic.work.put(None)
        for thread in traffic.opt_out_threads:
            thread.join(timeout=max(1.0, drain_bound - (time.monotonic() - drain_started)))
        audit = Audit(env, pg, ledger, traffic, topology, faults)
        audit.relay_refused = handler.refused
        ok = audit.run()
        figures = audit.report(setup=setup_seconds, traffic=traffic_seconds, drained_in=drained_in,
                               drain_bound=drain_bound, relay_refused=handler.refused, rate=rate, seed=args.seed,
                               minutes=seconds / 60)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2, sort_keys=True))
        return 0 if ok else 1
    finally:
        if topology is not None:
            topology.stop()
        relay.stop()
        stop_processes([redis.process])
        pg.destroy()
        if args.keep:
            print(f"soak: logs kept in {tmp}/logs")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def inject(seconds, relay_window, db_down, handler, pg, topology, ledger, traffic, faults) -> None:
    """The three faults, in order, during the traffic: relay 451s, database crash, worker kill."""
    t0 = time.monotonic()

    def at(fraction):
        time.sleep(max(0.0, t0 + fraction * seconds - time.monotonic()))
        return time.monotonic() - t0

    start = at(0.10)
    handler.refusing.set()
    time.sleep(relay_window)
    handler.refusing.clear()
    faults.append(f"relay answered 451 from {start:.0f} s for {relay_window:.0f} s")
    start = at(0.45)
    ledger.db_down.append([time.monotonic(), None])
    pg.stop("immediate")
    traffic.release_parked()
    time.sleep(db_down)
    pg.start()
    ledger.db_down[-1][1] = time.monotonic()
    faults.append(f"PostgreSQL crashed (pg_ctl stop -m immediate) at {start:.0f} s, started {db_down:.0f} s later; "
                  f"{traffic.released} held opt-outs sent as it stopped")
    start = at(0.70)
    pid = topology.kill_worker("worker-1")
    faults.append(f"dramatiq worker process {pid} (worker-1) got SIGKILL at {start:.0f} s")


def _quiet(pg: Postgres, spool_dir: Path) -> bool:
    """No outbox row waiting or being sent, no opt-out waiting in the spool."""
    import psycopg

    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg.port}/postgres", connect_timeout=5) as conn:
            busy = conn.execute("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')").fetchone()[0]
    except psycopg.Error:
        return False
    waiting = [p for p in spool_dir.glob("*.jsonl") if p.name != "rejected.jsonl" and p.stat().st_size]
    return busy == 0 and not waiting


def _settled(ledger: Ledger) -> bool:
    """Every person's steps are done and every forward reached the relay."""
    with ledger.lock:
        people = list(ledger.people.values())
        arrived = set(ledger.mail)
    return all(p.done and all(f in arrived for f in p.friends) for p in people)


class Audit:
    """Compares what the service holds, the relay received and the spool did with the ledger."""

    def __init__(self, env, pg: Postgres, ledger: Ledger, traffic: Traffic, topology: Topology, faults: list):
        self.env, self.pg, self.ledger, self.traffic = env, pg, ledger, traffic
        self.topology, self.faults = topology, faults
        self.checks: list[tuple[str, object, object]] = []  # (what, expected, found)
        self.figures: dict = {}

    def expect(self, what: str, expected, found) -> None:
        self.checks.append((what, expected, found))

    def sql(self, query: str) -> list[tuple]:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.pg.port}/postgres", autocommit=True) as conn:
            return conn.execute(query).fetchall()

    def run(self) -> bool:
        ledger = self.ledger
        people = list(ledger.people.values())
        subscribed = [p for p in people if p.sub_id is not None]
        self.expect("every person's subscribe answered 202", len(people), len(subscribed))

        # Mail at the relay: one confirmation per person, two forwards per forwarding person.
        by_rcpt = {rcpt: list(copies) for rcpt, copies in ledger.mail.items()}
        sent_once = lost = same_id = other_id = forward_dup = 0
        for p in subscribed:
            copies = by_rcpt.pop(p.email, [])
            ids = collections.Counter(mid for mid, _ in copies)
            lost += not copies
            sent_once += len(copies) == 1
            other_id += max(0, len(ids) - 1)
            same_id += sum(n - 1 for n in ids.values())
            for friend in p.friends:
                got = by_rcpt.pop(friend, [])
                lost += not got
                sent_once += len(got) == 1
                forward_dup += max(0, len(got) - 1)
        unexpected = sum(len(v) for v in by_rcpt.values())
        duplicated = same_id + other_id + forward_dup
        self.figures["mail"] = {"sent_once": sent_once, "duplicated": duplicated, "lost": lost,
                                "same_message_id_again": same_id, "second_confirmation": other_id,
                                "forward_twice": forward_dup, "unexpected": unexpected}
        self.expect("mails lost", 0, lost)
        self.expect("people sent a second, different confirmation", 0, other_id)
        self.expect("forward mails received twice", 0, forward_dup)
        # Documented (docs/guarantees.md, Mail delivery): a worker killed between the relay's 250 and
        # recording it sends that mail again, same Message-ID, at most OUTBOX_RECORD_EVERY per thread.
        self.expect("confirmations received again with their Message-ID, within the kill -9 bound (<= 100)",
                    True, same_id <= 25 * 4)
        self.expect("mails to nobody we know", 0, unexpected)

        # Subscriptions per state and consent events per type, in total and per person.
        want_status = collections.Counter(ROLES[p.role][2] for p in subscribed)
        got_status = collections.Counter(dict(self.sql("SELECT status, count(*) FROM subscriptions GROUP BY status")))
        self.expect("subscriptions per state", dict(sorted(want_status.items())), dict(sorted(got_status.items())))
        want_events = collections.Counter(t for p in subscribed for t in ROLES[p.role][1])
        got_events = collections.Counter(dict(self.sql("SELECT type, count(*) FROM consent_events GROUP BY type")))
        self.expect("consent events per type", dict(sorted(want_events.items())), dict(sorted(got_events.items())))
        per_sub = collections.defaultdict(collections.Counter)
        for sub_id, kind, n in self.sql("SELECT subscription_id, type, count(*) FROM consent_events GROUP BY 1, 2"):
            per_sub[sub_id][kind] = n
        wrong = [p.n for p in subscribed if per_sub.get(p.sub_id, collections.Counter())
                 != collections.Counter(ROLES[p.role][1])]
        self.expect("people whose events differ from their role's", [], wrong[:10])

        # Suppressions and bounce decisions.
        hard = sum(p.role == "hard_bounce" for p in subscribed)
        soft = sum(p.role == "soft_bounce" for p in subscribed)
        got = dict(self.sql("SELECT reason, count(*) FROM suppressions GROUP BY reason"))
        self.expect("suppressions per reason", {"hard_bounce": hard} if hard else {}, got)
        got = dict(self.sql("SELECT decision, count(*) FROM bounce_records GROUP BY decision"))
        self.expect("bounce decisions", {k: v for k, v in (("suppressed", hard), ("counted", soft)) if v}, got)

        # Opt-outs: spooled (the services' own log lines) = applied (spool_applied rows), spool empty.
        spooled = sum(path.read_text(errors="replace").count("opt-out spooled as")
                      for path in (self.topology.logs).glob("*.log"))
        applied = self.sql("SELECT count(*) FROM spool_applied")[0][0]
        drain = json.loads(flask(self.env, "spool", "drain").stdout or b"{}")
        status = json.loads(flask(self.env, "spool", "status").stdout or b"{}")
        one_click_202 = ledger.spool_202
        self.figures["opt_outs"] = {"one_click_answered_202": one_click_202, "spooled": spooled, "applied": applied,
                                    "last_drain": drain, "spool_status": {k: status.get(k) for k in
                                                                          ("pending", "rejected")}}
        self.expect("spooled opt-outs applied exactly once", spooled, applied)
        self.expect("the restart made opt-outs go to the spool", True, spooled > 0)
        self.expect("one-click 202s among the spooled", True, one_click_202 <= spooled)
        self.expect("spool left (pending, rejected)", (0, 0), (status.get("pending"), status.get("rejected")))
        self.expect("a last drain applies nothing", 0, drain.get("applied"))

        # The outbox: every mail sent, nothing waiting.
        got = dict(self.sql("SELECT status, count(*) FROM outbox GROUP BY status"))
        self.expect("outbox rows per state", {"sent": len(subscribed)}, got)

        # Forwards: counted once each, none failed.
        forwards, recipients, failed = self.sql(
            "SELECT forwards, forwarded_recipients, forwards_failed FROM campaigns")[0]
        self.expect("campaign forward counters (forwards, recipients, failed)",
                    (ledger.forwards_ok, 2 * ledger.forwards_ok, 0), (forwards, recipients, failed))

        # Exports: every one complete; a last one, cut after sealing, holds every event and verifies.
        manifest = self.traffic.export_once("export-final")
        total = self.sql("SELECT count(*) FROM consent_events")[0][0]
        self.expect("final export rows = events", total, manifest and manifest["count"])
        verified = None
        if manifest:
            path = self.topology.logs / "final-export.jsonl"
            path.write_bytes(manifest.pop("_body"))
            done = flask(self.env, "proof", "verify", str(path))
            verified = done.returncode == 0
            if not verified:
                ledger.problem(f"proof verify: {done.stdout.decode()[-300:]} {done.stderr.decode()[-300:]}")
        self.expect("final export passes flask proof verify", True, verified)
        self.figures["exports"] = dict(ledger.exports)

        problems = collections.Counter(text[:160] for text in ledger.bad)
        self.expect("unexpected answers", {}, dict(problems.most_common(8)))
        self.expect("the relay refused mail (451) and the killed worker unit was restarted", (True, True),
                    (self.relay_refused > 0, sum(self.topology.restarts.values()) >= 1))
        return all(expected == found for _, expected, found in self.checks)

    def report(self, **run) -> dict:
        ledger = self.ledger
        by_status = collections.Counter()
        by_kind = collections.defaultdict(collections.Counter)
        for (kind, status), n in ledger.statuses.items():
            by_status[str(status)] += n
            by_kind[kind][str(status)] += n
        requests = sum(n for (kind, status), n in ledger.statuses.items() if isinstance(status, int))
        roles = collections.Counter(p.role for p in ledger.people.values())
        print(f"soak: {machine()}")
        print(f"soak: {run['minutes']:.1f} min of traffic at {run['rate']:.1f} new people/s (seed {run['seed']}), "
              f"{len(ledger.people)} people: " + ", ".join(f"{r} {n}" for r, n in sorted(roles.items())))
        print(f"soak: set-up {run['setup']:.0f} s, traffic {run['traffic']:.0f} s, "
              f"drained in {run['drained_in']:.0f} s (bound {run['drain_bound']:.0f} s)")
        for fault in self.faults:
            print(f"fault: {fault}")
        print(f"fault: the relay refused {run['relay_refused']} recipients with 451; "
              f"worker units restarted: {dict(self.topology.restarts) or 'none'}")
        print(f"requests: {requests} (HTTP and SMTP answers; retries included)")
        print("answers by status: " + ", ".join(f"{s} {n}" for s, n in sorted(by_status.items())))
        for kind in sorted(by_kind):
            print(f"  {kind:<14} " + ", ".join(f"{s} {n}" for s, n in sorted(by_kind[kind].items())))
        five = {k: n for k, n in by_status.items() if k.startswith("5") and len(k) == 3 and k != "550"}
        print(f"5xx: {five or 'none'} (503 + Retry-After allowed only during the database restart, "
              "never for an opt-out)")
        o = self.figures["opt_outs"]
        print(f"opt-outs: one-click answered 202 (spooled) {o['one_click_answered_202']}, spooled in all "
              f"{o['spooled']}, applied {o['applied']}, spool now {o['spool_status']}")
        m = self.figures["mail"]
        print(f"mail: sent once {m['sent_once']}, duplicated {m['duplicated']} (same Message-ID again "
              f"{m['same_message_id_again']}, a second confirmation {m['second_confirmation']}, forward twice "
              f"{m['forward_twice']}), lost {m['lost']} (to unknown recipients {m['unexpected']})")
        print("exports: " + ", ".join(f"{k} {v}" for k, v in sorted(self.figures["exports"].items())))
        failed = 0
        for what, expected, found in self.checks:
            good = expected == found
            failed += not good
            print(f"{'ok  ' if good else 'FAIL'} {what}: expected {expected}, found {found}")
        print(f"soak: {'PASSED' if not failed else f'FAILED ({failed} expectation(s))'}")
        return {"run": run, "people": len(ledger.people), "roles": dict(roles), "requests": requests,
                "by_status": dict(by_status), "faults": self.faults, **self.figures,
                "failed_expectations": failed}


if __name__ == "__main__":
    sys.exit(main())
