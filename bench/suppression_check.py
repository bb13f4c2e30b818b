"""Benchmark: bulk suppression check against a large list on PostgreSQL.

Seeds a dedicated database (created here, dropped at the end) with ``--entries`` suppression
entries (default 1,000,000), then checks ``--checks`` addresses (default 100,000, half of them
suppressed) three ways, in the same run, on the same database:

- raw: one SQL query, ``SELECT address_hash FROM suppressions WHERE account_id = %s AND
  address_hash = ANY(%s)``, given the keyed hashes already computed (the floor: only the
  database's work and the transfer);
- service: ``services.suppression.suppressions.check_many`` with the raw addresses (normalising, keyed
  hashing of address and domain, the account's and platform-wide entries, per-input results);
- http: ``POST /api/v1/suppressions/check`` through the Flask test client (adds auth, JSON
  parsing and validation, and the JSON answer).

A second raw variant sends the keys as one text (``string_to_array``), as the service does,
and the service's own CPU work (normalising and hashing) is timed on its own.
Each is run ``--repeat`` times, interleaved; the median is reported with the ratio to raw.
Target: service within 3x of raw. This is a benchmark, not a test: nothing asserts times.

    .venv/bin/python bench/suppression_check.py [--entries N] [--checks M] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.common import machine  # noqa: E402

BIG_PROVIDERS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "gmx.de", "web.de",
                 "t-online.de", "aol.com", "proton.me", "orange.fr", "libero.it"]


def address(i: int) -> str:
    """A plausible address: a third at big providers, the rest at 20,000 company domains."""
    rng = random.Random(i)
    domain = BIG_PROVIDERS[i % len(BIG_PROVIDERS)] if i % 3 == 0 else f"company{rng.randrange(20_000)}.example"
    first = rng.choice(["anna", "ben", "chris", "dana", "eva", "finn", "gina", "hugo", "ida", "jan"])
    return f"{first}.{rng.choice(['Miller', 'schmidt', 'rossi', 'DUPONT', 'Kowalski'])}{i}@{domain}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--checks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--server", default=os.environ.get("FLEXMAIL_BENCH_POSTGRES_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="A PostgreSQL URL with the right to create databases.")
    parser.add_argument("--database", default="flexmail_bench")
    parser.add_argument("--keep", action="store_true", help="Do not drop the database at the end.")
    parser.add_argument("--tiny", action="store_true", help="seconds, not minutes: for CI (no figures)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.tiny:
        args.entries, args.checks, args.repeat = 2_000, 1_000, 1
    if args.checks > 100_000:
        parser.error("the check endpoint takes at most 100,000 addresses")
    half = args.checks // 2
    if half > args.entries:
        parser.error("need at least checks/2 entries")

    server = make_url(args.server)
    with psycopg.connect(server.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{args.database}"')
        admin.execute(f'CREATE DATABASE "{args.database}"')
    url = server.set(drivername="postgresql+psycopg", database=args.database)
    try:
        run(args, url.render_as_string(hide_password=False), half)
    finally:
        if not args.keep:
            with psycopg.connect(server.set(drivername="postgresql").render_as_string(hide_password=False),
                                 autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


def run(args, url: str, half: int) -> None:
    os.environ["FLEXMAIL_INSTANCE_PATH"] = tempfile.mkdtemp(prefix="flexmail-bench-")
    from flexmail import create_app
    from flexmail.domain.matching import Hasher
    from flexmail.extensions import db
    from flexmail.services.marketer import accounts
    from flexmail.services.suppression import suppressions

    app = create_app({"DATABASE_URL": url, "BROKER_URL": "stub", "EMBEDDED_WORKER": False, "TESTING": True,
                      "SECRET_KEYS": ["bench-secret"], "HASH_KEY": "bench-pepper", "LOG_LEVEL": "WARNING"})
    with app.app_context():
        db.create_all()
        account_id, key = accounts.create_account("Bench", scopes=["marketer"])
        other_id, _ = accounts.create_account("Other", scopes=["marketer"])
        hasher = Hasher(app.config["HASH_KEY"])

        print(f"seeding {args.entries:,} entries ...", flush=True)
        started = time.perf_counter()
        raw = db.engine.raw_connection()
        try:
            with raw.cursor() as cursor, cursor.copy(
                    "COPY suppressions (account_id, kind, address_hash, email, reason, source, created_by, created_at)"
                    " FROM STDIN") as copy:
                for i in range(args.entries):
                    owner = None if i % 100 == 1 else other_id if i % 100 == 2 else account_id
                    normalized = address(i)
                    copy.write_row((owner, "address", hasher.address(normalized), normalized,
                                    "unsubscribed" if i % 4 else "hard_bounce", "bench", "bench", "2026-01-01 00:00Z"))
            raw.commit()
            with raw.cursor() as cursor:
                cursor.execute("ANALYZE suppressions")
            raw.commit()
        finally:
            raw.close()
        seeded = time.perf_counter() - started
        print(f"seeded in {seeded:.1f} s", flush=True)

        # Half the checks hit entries of this account (or platform-wide ones), half are new.
        hits = [i for i in range(args.entries) if i % 100 not in (2,)][:half]
        emails = [address(i).swapcase() if n % 2 else address(i) for n, i in enumerate(hits)]
        emails += [f"new.person{i}@{BIG_PROVIDERS[i % len(BIG_PROVIDERS)]}" for i in range(args.checks - len(emails))]
        random.Random(7).shuffle(emails)
        hashes = [hasher.address(suppressions.normalizer()(e).normalized) for e in emails]
        body = json.dumps({"emails": emails}).encode()
        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    times: dict[str, list[float]] = {"raw": [], "raw-text": [], "service": [], "http": [], "keys": []}
    found: dict[str, int] = {}

    def timed_sql(label, sql, params):
        """One raw query through the same driver, timed without connection setup."""
        with app.app_context():
            connection = db.engine.raw_connection()
            try:
                with connection.cursor() as cursor:
                    started = time.perf_counter()
                    cursor.execute(sql, params)
                    rows = cursor.fetchall()
                    elapsed = time.perf_counter() - started
                connection.rollback()
            finally:
                connection.close()
        found[label] = len(rows)
        return elapsed

    def raw_query():
        return timed_sql("raw", "SELECT address_hash FROM suppressions WHERE account_id = %s"
                                " AND address_hash = ANY(%s)", (account_id, hashes))

    def raw_text_query():
        # The same query with the keys as one text that PostgreSQL splits (what the service
        # sends): cheaper to transmit and to plan than a 100,000-element array parameter.
        return timed_sql("raw-text", "SELECT address_hash FROM suppressions WHERE account_id = %s"
                                     " AND address_hash = ANY(string_to_array(%s, ','))",
                         (account_id, ",".join(hashes)))

    def keys_only():
        # The service's own CPU work before any query: normalising and keyed hashing.
        with app.app_context():
            started = time.perf_counter()
            norm, h = suppressions.normalizer(), suppressions.hasher()
            for e in emails:
                h.keys(norm.normalized(e))
            return time.perf_counter() - started

    def service():
        with app.app_context():
            started = time.perf_counter()
            results = suppressions.check_many(account_id, emails)
            elapsed = time.perf_counter() - started
            db.session.remove()
        found["service"] = sum(r["suppressed"] for r in results)
        return elapsed

    def http():
        started = time.perf_counter()
        response = client.post("/api/v1/suppressions/check", data=body, headers=headers)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        found["http"] = sum(r["suppressed"] for r in response.get_json()["results"])
        return elapsed

    runs = (("raw", raw_query), ("raw-text", raw_text_query), ("service", service), ("http", http),
            ("keys", keys_only))
    for _, fn in runs:  # warm-up: caches, connection pool, imports
        fn()
    for _ in range(args.repeat):
        for name, fn in runs:
            times[name].append(fn())

    with app.app_context():
        version = db.session.scalar(db.text("SHOW server_version"))
    print()
    print(f"machine: {machine()}, PostgreSQL {version}")
    print(f"entries: {args.entries:,} (98% this account, 1% another, 1% platform-wide); checks: {args.checks:,}; "
          f"repeat: {args.repeat}")
    print(f"suppressed found: raw {found['raw']:,} (this account's entries only), service {found['service']:,} "
          f"(also platform-wide), http {found['http']:,}")
    raw_median = statistics.median(times["raw"])
    for name, label in (("raw", "raw SQL, array parameter (baseline)"), ("raw-text", "raw SQL, keys as one text"),
                        ("service", "service check_many"), ("http", "HTTP POST /check (test client)"),
                        ("keys", "  of which normalise + hash")):
        median = statistics.median(times[name])
        measured = ", ".join(f"{t:.3f}" for t in times[name])
        print(f"{label:38s} median {median:6.3f} s  {median / raw_median:5.2f}x raw  (runs: {measured})")
    print(f"service vs raw SQL with keys as one text: "
          f"{statistics.median(times['service']) / statistics.median(times['raw-text']):.2f}x")
    if args.json:
        medians = {name: statistics.median(values) for name, values in times.items()}
        args.json.write_text(json.dumps({
            "machine": machine(), "postgresql": version, "entries": args.entries, "checks": args.checks,
            "repeat": args.repeat, "seconds": medians,
            "ratio": {name: medians[name] / raw_median for name in medians}}, indent=2))


if __name__ == "__main__":
    main()
