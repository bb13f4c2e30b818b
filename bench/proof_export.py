"""Benchmark: stream N consent events as a proof export vs PostgreSQL's own COPY of the same rows.

    .venv/bin/python bench/proof_export.py [--events 1000000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

Seeds a dedicated database (flexmail_bench_export, dropped at the end) with one account whose
chain has N valid events, then, in the same run and on the same database, measures:
  baseline  COPY (SELECT <the export's columns, same join and order>) TO STDOUT (FORMAT csv)
  ours      the export service's stream (CSV and JSON Lines), every chunk consumed
and prints rows/s, the ratio ours/COPY, and the peak RSS of a fresh process doing each export
(at N and at N/10, to show that memory does not grow with N).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import resource
import secrets
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import create_engine, text  # noqa: E402

DB = "flexmail_bench_export"


def _config(url):
    return {"TESTING": True, "EMBEDDED_WORKER": False, "OUTBOX_SWEEP_INTERVAL": 0, "DATABASE_URL": url,
            "BROKER_URL": "stub", "SECRET_KEYS": ["bench"], "HASH_KEY": "bench-pepper",
            "SIGNING_KEY": "YmVuY2gtc2lnbmluZy1rZXktMzItYnl0ZXMtbG9uZyE", "MAIL_URL": "maildir:/tmp/bench-mail"}


def seed(url: str, n: int) -> int:
    """One account, 1,000 subscriptions, ``n`` chained events written with COPY."""
    from flexmail import create_app
    from flexmail.domain import ledger
    from flexmail.extensions import db
    from flexmail.services import accounts, lists

    app = create_app(_config(url))
    with app.app_context():
        db.create_all()
        account_id, _ = accounts.create_account("Bench", scopes=["compliance"])
        list_id = lists.create_list(account_id, name="L", sender_name="S", sender_email="s@example.com",
                                    consent_text="C").id
        raw = db.engine.raw_connection()
        cur = raw.cursor()
        with cur.copy("COPY subscriptions (id, account_id, list_id, email, address_hash, status, consent_text, "
                      "language, created_at, requested_at, updated_at) FROM STDIN") as copy:
            for i in range(1, 1001):
                copy.write_row((i, account_id, list_id, f"person{i}@example.com", secrets.token_hex(32),
                                "pending", "C", "en", "2026-01-01", "2026-01-01", "2026-01-01"))
        prev, start = ledger.GENESIS, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        with cur.copy("COPY consent_events (account_id, seq, subscription_id, list_id, type, at, ip, user_agent, "
                      "source, details, salt, commitments, prev_hash, content_hash, entry_hash) FROM STDIN") as copy:
            for seq in range(1, n + 1):
                sub = (seq % 1000) + 1
                at = start + dt.timedelta(seconds=seq)
                ip, ua, salt = f"192.0.{seq % 250}.{seq % 200}", "Mozilla/5.0 (bench)", secrets.token_hex(16)
                commits = ledger.commitments("bench-pepper", salt, {"email": f"person{sub}@example.com", "ip": ip,
                                                                    "user_agent": ua})
                content = {"account_id": account_id, "seq": seq, "subscription_id": sub, "list_id": list_id,
                           "type": "link_fetched", "at": at.isoformat().replace("+00:00", "Z"), "source": "page",
                           "details": {"method": "GET"}, "commitments": commits}
                chash = ledger.content_hash(content)
                ehash = ledger.entry_hash(prev, chash)
                copy.write_row((account_id, seq, sub, list_id, "link_fetched", at, ip, ua, "page",
                                json.dumps(content["details"]), salt, json.dumps(commits), prev, chash, ehash))
                prev = ehash
        cur.execute("UPDATE ledger_heads SET seq = %s, entry_hash = %s WHERE account_id = %s", (n, prev, account_id))
        cur.execute("SELECT setval('subscriptions_id_seq', 1001)")
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
        raw.close()
        db.engine.dispose()
    return account_id


def copy_baseline(url: str, account_id: int) -> tuple[float, int]:
    engine = create_engine(url)
    raw = engine.raw_connection()
    cur = raw.cursor()
    sql = ("COPY (SELECT e.seq, e.id, e.at, e.type, e.account_id, e.subscription_id, e.list_id, e.source, s.email, "
           "e.ip, e.user_agent, e.details, e.commitments, e.salt, e.prev_hash, e.content_hash, e.entry_hash, "
           "e.redacted, e.tombstoned_at FROM consent_events e LEFT JOIN subscriptions s ON s.id = e.subscription_id "
           f"WHERE e.account_id = {int(account_id)} ORDER BY e.seq) TO STDOUT (FORMAT csv)")
    started, size = time.perf_counter(), 0
    with cur.copy(sql) as copy:
        for chunk in copy:
            size += len(chunk)
    elapsed = time.perf_counter() - started
    raw.close()
    engine.dispose()
    return elapsed, size


def _export_child(url, account_id, fmt, limit_seq, queue):
    from flexmail import create_app
    from flexmail.services import export

    app = create_app(_config(url))
    with app.app_context():
        request = export.ExportRequest(account_id, None, None, None, fmt)
        if limit_seq:  # the first N/10 events: same code path, smaller export
            request = export.ExportRequest(account_id, None, None,
                                           dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
                                           + dt.timedelta(seconds=limit_seq + 1), fmt)
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started, size, rows = time.perf_counter(), 0, 0
        for chunk in export.start_export(request, principal=None):
            size += len(chunk)
            rows += chunk.count("\n")
        elapsed = time.perf_counter() - started
        queue.put((elapsed, size, rows, base_rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def run_export(url, account_id, fmt, limit_seq=None):
    queue = multiprocessing.get_context("spawn").Queue()
    proc = multiprocessing.get_context("spawn").Process(target=_export_child,
                                                       args=(url, account_id, fmt, limit_seq, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    url = args.pg.rsplit("/", 1)[0] + "/" + DB
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {DB}"))
    try:
        t0 = time.perf_counter()
        account_id = seed(url, args.events)
        print(f"seeded {args.events:,} chained events in {time.perf_counter() - t0:.1f} s")
        copy_s, copy_bytes = copy_baseline(url, account_id)
        print(f"baseline COPY TO STDOUT: {copy_s:.2f} s, {args.events / copy_s:,.0f} rows/s, {copy_bytes / 1e6:.0f} MB")
        for fmt in ("csv", "jsonl"):
            elapsed, size, rows, base, peak = run_export(url, account_id, fmt)
            small = run_export(url, account_id, fmt, limit_seq=args.events // 10)
            print(f"export {fmt:5}: {elapsed:.2f} s, {args.events / elapsed:,.0f} rows/s, {size / 1e6:.0f} MB, "
                  f"ratio to COPY {elapsed / copy_s:.2f}x; peak RSS {peak / 1024:.0f} MB "
                  f"(process start {base / 1024:.0f} MB; at N/10 rows: peak {small[4] / 1024:.0f} MB)")
            assert rows >= args.events, rows
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        admin.dispose()


if __name__ == "__main__":
    main()
