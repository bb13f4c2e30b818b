"""Benchmark: the three consent hot paths over real HTTP, against an insert-and-commit baseline.

Starts, in one run on this machine: a fresh PostgreSQL database (created here, dropped at the
end), Flexmail under gunicorn with ``deploy/gunicorn.conf.py`` and a Redis broker (no worker
runs: enqueueing is part of the request, sending is not), and ``bench/baseline_app.py`` on the
same gunicorn settings and the same database. Then wrk drives, interleaved, ``--repeat`` times:

- baseline: ``POST /insert`` (one INSERT, one COMMIT);
- one-click: ``POST /unsubscribe/<token>`` with ``List-Unsubscribe=One-Click``, a distinct
  subscribed person per request (RFC 8058 as a mailbox provider sends it);
- confirm: ``POST /confirm/<token>``, a distinct pending person per request;
- subscribe: ``POST /api/v1/lists/<id>/subscriptions``, a new address per request;

each for two data shapes: every request for ONE account (the campaign burst), and requests
spread over ``--accounts`` accounts. It prints requests/s, p99 latency and non-2xx answers per
path, and each path's median ratio to the baseline's median. Issue 11 targets: one-click >= 0.6
(p99 <= 100 ms), confirm >= 0.5, subscribe >= 0.4. Nothing here asserts a time.

Seeding is by the services for one template person per list, then by ``INSERT ... SELECT``
copies of those rows (every column copied, only identity columns changed), so it keeps working
when tables gain columns.

    .venv/bin/python bench/http_paths.py [--seconds 10] [--connections 64] [--repeat 3] [--tiny]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402

from bench.common import free_port, machine, stop_processes  # noqa: E402

LUA = r"""
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  lines = {}
  local nthreads, i = tonumber(args[2]), 0
  for line in io.lines(args[1]) do
    if i % nthreads == tid then lines[#lines + 1] = line end
    i = i + 1
  end
  n = 0
end
function request()
  n = n + 1
  if n > #lines then n = 1 end
  local path, auth, ctype, body = lines[n]:match("([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)")
  local headers = {["Content-Type"] = ctype}
  if auth ~= "" then headers["Authorization"] = "Bearer " .. auth end
  return wrk.format("POST", path, headers, body)
end
function done(summary, latency, requests)
  io.write(string.format("RESULT p99_us=%d p50_us=%d\n", latency:percentile(99), latency:percentile(50)))
end
"""

ONE_CLICK = "application/x-www-form-urlencoded\tList-Unsubscribe=One-Click"
CONFIRM = "application/x-www-form-urlencoded\tmethod=button"


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()  # noqa: S310 (loopback only)
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def app_env(db_url: str, redis_url: str, instance: Path, public_url: str) -> dict:
    env = dict(os.environ)
    env.update({
        "FLEXMAIL_DATABASE_URL": db_url, "FLEXMAIL_BROKER_URL": redis_url,
        "FLEXMAIL_RATELIMIT_STORAGE_URL": redis_url, "FLEXMAIL_MAIL_URL": f"maildir:{instance}/mail",
        "FLEXMAIL_PUBLIC_URL": public_url, "FLEXMAIL_SECRET_KEYS": "bench-secret-key-0123456789abcdef",
        "FLEXMAIL_HASH_KEY": "bench-hash-key-0123456789abcdef", "FLEXMAIL_INSTANCE_PATH": str(instance),
        "FLEXMAIL_SIGNING_KEY": "YmVuY2gtc2lnbmluZy1rZXktMzItYnl0ZXMtbG9uZyE",
        "FLEXMAIL_EMBEDDED_WORKER": "false", "FLEXMAIL_OUTBOX_SWEEP_INTERVAL": "0", "FLEXMAIL_LOG_LEVEL": "WARNING",
        # The flood limits stay on (their cost is part of the path) but high enough that a
        # benchmark's burst from one account is not refused.
        "FLEXMAIL_CONFIRM_PER_ACCOUNT_PER_HOUR": "100000000", "FLEXMAIL_CONFIRM_PER_IP_PER_HOUR": "100000000",
        "FLEXMAIL_FORM_RATE_LIMIT": "100000000 per minute",
        "FLEXMAIL_API_RATE_LIMIT": "",  # no per-key limit: the bench measures the paths, not the limiter
    })
    return env


def clone_rows(conn, table: str, template_id: int, count: int, overrides: dict[str, str],
               params: tuple = ()) -> list[int]:
    """Copy one row ``count`` times with every column kept but ``overrides`` (SQL over ``g``,
    1..count, in order; ``params`` fill the overrides' placeholders). Ids come back in ``g`` order."""
    cols = [r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND column_name <> 'id' "
        "ORDER BY ordinal_position", (table,))]
    select = ", ".join(overrides.get(c, c) for c in cols)
    rows = conn.execute(
        f"WITH made AS (INSERT INTO {table} ({', '.join(cols)}) SELECT {select} FROM {table}, "  # noqa: S608
        f"generate_series(1, %s) AS g WHERE {table}.id = %s ORDER BY g RETURNING id) SELECT id FROM made ORDER BY id",
        (*params, count, template_id))
    return [r[0] for r in rows]


def seed(env: dict, db_dsn: str, accounts: int, per_account: int, out: Path, tag: str) -> dict:
    """Accounts, lists, keys, subscribed and pending people; token files for wrk."""
    code = f"""
import json, sys
from flexmail import create_app
from flexmail.services.consent import subscriptions
from flexmail.services.marketer import accounts, lists
from flexmail.services.platform.context import RequestMeta
app = create_app()
result = []
with app.app_context():
    for i in range({accounts}):
        account_id, key = accounts.create_account(f"bench-{tag}-{{i}}", scopes=["marketer"])
        lst = lists.create_list(account_id, name=f"List {{i}}", sender_name="Bench", sender_email="news@bench.example",
                                consent_text="Yes, send me the bench newsletter.")
        sub = subscriptions.request_subscription(account_id, lst.id, email=f"template-{tag}-{{i}}@bench.example",
                                                 meta=RequestMeta(ip="198.51.100.7", user_agent="bench"))
        result.append({{"account_id": account_id, "key": key, "list_id": lst.id}})
print(json.dumps(result))
"""
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    tenants = json.loads(proc.stdout.strip().splitlines()[-1])
    ids = {"subscribed": [], "pending": []}
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_baseline (id bigserial PRIMARY KEY, note text, "
                     "at timestamptz DEFAULT now())")
        for tenant in tenants:
            sub_id, outbox_id = conn.execute(
                "SELECT s.id, o.id FROM subscriptions s JOIN outbox o ON o.subscription_id = s.id "
                "WHERE s.list_id = %s", (tenant["list_id"],)).fetchone()
            conn.execute("UPDATE outbox SET status = 'sent', sent_at = now() WHERE id = %s", (outbox_id,))
            unique = {"email": "'p' || g || '-' || id || '@bench.example'", "address_hash": "md5(random()::text || g)"}
            subscribed = clone_rows(conn, "subscriptions", sub_id, per_account, {
                **unique, "status": "'subscribed'", "confirmed_at": "now()", "pending_since": "NULL"})
            pending = clone_rows(conn, "subscriptions", sub_id, per_account, unique)
            # One confirmation mail per pending person (its round), in one statement: g is the
            # person's place in ``pending``, so ``pending[g - 1]`` is its subscription.
            outbox = clone_rows(conn, "outbox", outbox_id, len(pending), {
                "subscription_id": "(%s::bigint[])[g]", "message_id": "'<' || md5(random()::text || g) || '@bench>'"},
                params=(pending,))
            ids["subscribed"] += subscribed
            round_of = dict(conn.execute("SELECT subscription_id, id FROM outbox WHERE id = ANY(%s)", (outbox,)))
            ids["pending"] += [(pid, round_of[pid]) for pid in pending]
        conn.execute("ANALYZE")
    code = f"""
import json
from flexmail import create_app
from flexmail.domain.tokens import Purpose
from flexmail.services.platform.context import signer
ids = json.load(open({str(out / 'ids.json')!r}))
app = create_app()
with app.app_context():
    s = signer()
    unsub = [s.dumps_untimed(Purpose.UNSUBSCRIBE, [i]) for i in ids["subscribed"]]
    confirm = [s.dumps(Purpose.CONFIRM, [a, b]) for a, b in ids["pending"]]
print(json.dumps({{"unsubscribe": unsub, "confirm": confirm}}))
"""
    (out / "ids.json").write_text(json.dumps(ids))
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    tokens = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"tenants": tenants, "tokens": tokens}


def interleave(items: list, groups: int) -> list:
    """Round-robin over ``groups`` equal slices, so consecutive requests hit different accounts."""
    size = len(items) // groups
    return [items[g * size + i] for i in range(size) for g in range(groups)]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(url: str, lines: Path, lua: Path, *, seconds: int, connections: int, threads: int) -> dict:
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(lua),
           url, "--", str(lines), str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = int(re.search(r"RESULT p99_us=(\d+)", out).group(1)) / 1000
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p99_ms": p99, "requests": total, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else ""}


def start_gunicorn(module: str, port: int, env: dict, log: Path) -> subprocess.Popen:
    env = {**env, "FLEXMAIL_BIND": f"127.0.0.1:{port}"}
    return subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", "deploy/gunicorn.conf.py",
                             "--access-logfile", "/dev/null", module],
                            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def main() -> None:  # noqa: C901 (a script: one straight sequence)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=1000, help="accounts of the spread case")
    parser.add_argument("--per-request-budget", type=int, default=1500,
                        help="expected max req/s: sizes the token files so no token repeats")
    parser.add_argument("--tiny", action="store_true", help="seconds, not minutes: for CI (no figures)")
    parser.add_argument("--server", default=os.environ.get("FLEXMAIL_BENCH_POSTGRES_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis", default=os.environ.get("FLEXMAIL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--database", default="flexmail_bench_http")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.tiny:
        args.seconds, args.connections, args.repeat, args.accounts = 1, 4, 1, 3
        args.per_request_budget = min(args.per_request_budget, 300)  # tokens enough for ~300 req/s
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk); ./dev bench installs it")

    base = args.server.rsplit("/", 1)[0]
    db_dsn = f"{base}/{args.database}"
    db_url = db_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {args.database}")
    work = Path(tempfile.mkdtemp(prefix="flexmail-bench-http-"))
    port, base_port = free_port(), free_port()
    env = app_env(db_url, args.redis, work / "instance", f"http://127.0.0.1:{port}")
    env.update({"FLEXMAIL_BENCH_BASELINE_URL": db_url, "PYTHONPATH": str(ROOT)})
    procs: list[subprocess.Popen] = []
    try:
        subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "app", "db", "upgrade"], cwd=ROOT,
                       env=env, check=True, capture_output=True)
        per_run = args.per_request_budget * args.seconds
        cases = {"one account": 1, f"{args.accounts} accounts": args.accounts}
        need = per_run * args.repeat
        seeded = {}
        for case, accounts in cases.items():
            per_account = max(1, -(-need // accounts))
            t0 = time.monotonic()
            seeded[case] = seed(env, db_dsn, accounts, per_account, work, tag=str(len(seeded)))
            print(f"seeded {case}: {accounts} account(s) x {per_account} subscribed + pending "
                  f"in {time.monotonic() - t0:.1f} s", flush=True)
        procs.append(start_gunicorn("app:app", port, env, work / "flexmail.log"))
        procs.append(start_gunicorn("bench.baseline_app:app", base_port, env, work / "baseline.log"))
        wait_http(f"http://127.0.0.1:{port}/health")
        wait_http(f"http://127.0.0.1:{base_port}/health")
        lua = work / "post.lua"
        lua.write_text(LUA)

        results: dict[str, dict[str, list[dict]]] = {}
        for case, accounts in cases.items():
            data = seeded[case]
            unsub = interleave(data["tokens"]["unsubscribe"], accounts)
            confirm = interleave(data["tokens"]["confirm"], accounts)
            tenants = data["tenants"]
            for run in range(args.repeat):
                chunk = slice(run * per_run, (run + 1) * per_run)
                files = {
                    "baseline": (f"http://127.0.0.1:{base_port}", [
                        f"/insert/{i}\t\ttext/plain\tx" for i in range(per_run)]),
                    "one-click": (f"http://127.0.0.1:{port}", [
                        f"/unsubscribe/{t}\t\t{ONE_CLICK}" for t in unsub[chunk]]),
                    "confirm": (f"http://127.0.0.1:{port}", [
                        f"/confirm/{t}\t\t{CONFIRM}" for t in confirm[chunk]]),
                    "subscribe": (f"http://127.0.0.1:{port}", [
                        f"/api/v1/lists/{tn['list_id']}/subscriptions\t{tn['key']}\tapplication/json\t" + json.dumps({
                            "email": f"new-{len(results)}-{run}-{i}@bench{i % 97}.example",
                            "ip": f"203.0.113.{i % 250 + 1}",
                            "user_agent": "bench", "source": "bench"})
                        for i in range(per_run) for tn in [tenants[i % len(tenants)]]]),
                }
                for path, (url, lines) in files.items():
                    result = run_wrk(url, write_lines(work / f"{path}.lines", lines), lua, seconds=args.seconds,
                                     connections=args.connections, threads=args.threads)
                    results.setdefault(case, {}).setdefault(path, []).append(result)
                    print(f"  {case:>14} run {run + 1} {path:>10}: {result['rps']:8.1f} req/s  "
                          f"p99 {result['p99_ms']:7.1f} ms  non-2xx {result['non_2xx']}", flush=True)

        summary = {"machine": machine(), "seconds": args.seconds, "connections": args.connections,
                   "repeat": args.repeat, "cases": {}}
        targets = {"one-click": 0.6, "confirm": 0.5, "subscribe": 0.4}
        print(f"\n{machine()}\nwrk -c {args.connections} -d {args.seconds}s, {args.repeat} interleaved runs, medians")
        print(f"{'case':>14} {'path':>10} {'req/s':>9} {'ratio':>6} {'target':>6} {'p99 ms':>8} {'non-2xx':>8}")
        for case, paths in results.items():
            base_rps = statistics.median(r["rps"] for r in paths["baseline"])
            summary["cases"][case] = {}
            for path, runs in paths.items():
                rps = statistics.median(r["rps"] for r in runs)
                p99 = statistics.median(r["p99_ms"] for r in runs)
                bad = sum(r["non_2xx"] for r in runs)
                ratio = rps / base_rps if base_rps else 0
                summary["cases"][case][path] = {"rps": rps, "ratio": ratio, "p99_ms": p99, "non_2xx": bad}
                target = targets.get(path)
                print(f"{case:>14} {path:>10} {rps:9.1f} {ratio:6.2f} {target or '':>6} {p99:8.1f} {bad:8d}")
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2))
        if any(v["non_2xx"] for c in summary["cases"].values() for v in c.values()):
            print("!! some requests were not answered 2xx: the figures above are not comparable; see "
                  f"{work}/flexmail.log", file=sys.stderr)
            sys.exit(1)
    finally:
        stop_processes(procs)
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
        redis.Redis.from_url(args.redis).flushdb()  # the bench's own Redis database: queued mails, limits
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
