"""Benchmark: a contact import of 100,000 rows with proof on PostgreSQL, against a raw COPY.

Creates a dedicated database (dropped at the end), one account and one list, and a CSV of
``--rows`` rows each carrying existing proof (signup and confirmation time and IP, source,
wording). In the same run, on the same database:

- copy: ``COPY`` of the same rows into a plain table with the same columns (the floor:
  parsing the CSV and writing the rows, no checks, no proof);
- import: ``services.marketer.contact_imports`` (``create_import`` from a stream, then ``run_import``,
  as the ``import_contacts`` actor runs it): spooling and counting the upload and storing it
  in parts; per batch of 5,000 rows parsing and classifying each row, normalising and hashing
  the address, one suppression query, one query for the list's existing addresses, the
  subscriptions in one bulk insert and their two consent events (HMAC commitments, details
  digest, content hash) in one COPY, progress committed with the batch.

Prints rows/s of each and the ratio (target: within 3x). Not a test: nothing asserts times.

    .venv/bin/python bench/contact_import.py [--rows N] [--tiny]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.common import machine  # noqa: E402

HEADER = "email,signup_at,signup_ip,confirmed_at,confirm_ip,source,consent_text"


def csv_rows(n: int) -> str:
    lines = [HEADER]
    for i in range(n):
        lines.append(f"reader{i}@company{i % 5000}.example,2024-03-01T10:{i % 60:02d}:00Z,"
                     f"203.0.{i % 250}.{i % 200 + 1},2024-03-01T11:{i % 60:02d}:00Z,198.51.{i % 250}.{i % 200 + 1},https://acme.example/signup,"
                     "Send me the weekly Acme newsletter. I can unsubscribe at any time.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--tiny", action="store_true", help="1,000 rows (CI: the benchmark still runs)")
    parser.add_argument("--server", default=os.environ.get("FLEXMAIL_BENCH_POSTGRES_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--database", default=f"flexmail_bench_import_{os.getpid()}")
    args = parser.parse_args()
    rows = 1_000 if args.tiny else args.rows
    server = make_url(args.server)
    admin_url = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{args.database}"')
        admin.execute(f'CREATE DATABASE "{args.database}"')
    url = server.set(drivername="postgresql+psycopg", database=args.database).render_as_string(hide_password=False)
    try:
        run(url, rows)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


def run(url: str, rows: int) -> dict:
    os.environ["FLEXMAIL_INSTANCE_PATH"] = tempfile.mkdtemp(prefix="flexmail-bench-")
    from flexmail import create_app
    from flexmail.extensions import db
    from flexmail.services.marketer import accounts, contact_imports, lists

    app = create_app({"DATABASE_URL": url, "BROKER_URL": "stub", "EMBEDDED_WORKER": False, "TESTING": True,
                      "SECRET_KEYS": ["bench-secret"], "HASH_KEY": "bench-pepper", "LOG_LEVEL": "WARNING"})
    content = csv_rows(rows)
    with app.app_context():
        db.create_all()
        account_id, _ = accounts.create_account("Bench", scopes=["marketer"])
        list_id = lists.create_list(account_id, name="L", sender_name="S", sender_email="s@example.com",
                                    consent_text="C").id
        raw = db.engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                cursor.execute("CREATE TABLE plain_contacts (email text, signup_at timestamptz, signup_ip inet,"
                               " confirmed_at timestamptz, confirm_ip inet, source text, consent_text text)")
            raw.commit()
            started = time.perf_counter()
            with raw.cursor() as cursor, cursor.copy("COPY plain_contacts FROM STDIN WITH (FORMAT csv, HEADER true)"
                                                     ) as copy:
                copy.write(content)
            raw.commit()
            copy_seconds = time.perf_counter() - started
        finally:
            raw.close()
        started = time.perf_counter()
        job = contact_imports.create_import(account_id, list_id, io.BytesIO(content.encode()),
                                            max_bytes=app.config["CONTACT_IMPORT_MAX_BYTES"], enqueue=False)
        contact_imports.run_import(job.id)
        import_seconds = time.perf_counter() - started
        job = contact_imports.get_import(account_id, list_id, job.id)
        db.session.refresh(job)
        assert job.subscribed == rows, (job.subscribed, job.rejected, job.results[:3])
        version = db.session.scalar(db.text("SHOW server_version"))
    figures = {"rows": rows, "copy_rows_per_s": rows / copy_seconds, "import_rows_per_s": rows / import_seconds,
               "ratio": import_seconds / copy_seconds}
    print(f"machine: {machine()}, PostgreSQL {version}")
    print(f"rows: {rows:,} (each with proof: two consent events in the hash chain)")
    print(f"copy:   {figures['copy_rows_per_s']:>10,.0f} rows/s  ({copy_seconds:.2f} s)")
    print(f"import: {figures['import_rows_per_s']:>10,.0f} rows/s  ({import_seconds:.2f} s)")
    print(f"ratio import/copy: {figures['ratio']:.1f}x (target: within 3x)")
    return figures


if __name__ == "__main__":
    main()
