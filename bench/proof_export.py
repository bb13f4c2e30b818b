"""Benchmark: the proof export of N sealed events vs PostgreSQL's own COPY of the same rows.

    .venv/bin/python bench/proof_export.py [--rows 1000000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

Seeds a dedicated database (flexmail_bench_export, dropped at the end) with one account whose
Merkle tree holds N valid sealed events (rows, tree nodes and a signed head written with COPY),
then, in the same run and on the same database, measures:
  baseline  COPY (SELECT <the export's columns, same join and order>) TO STDOUT (FORMAT csv)
  ours      the export service's stream (CSV and JSON Lines), every byte consumed
and prints seconds, rows/s, the speed ratio COPY-time / export-time (target >= 0.5), and the
peak RSS of a fresh process doing each export (target <= 150 MB), at N and at N/10 to show
that memory does not grow with N. ``--rows 1000`` is the tiny size CI runs; at up to 20,000
rows each export is also verified offline (``proof verify``'s code), so the benchmark cannot
measure a broken export.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import multiprocessing
import os
import resource
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.common import machine  # noqa: E402

DB = "flexmail_bench_export"
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _config(url):
    return {"TESTING": True, "EMBEDDED_WORKER": False, "OUTBOX_SWEEP_INTERVAL": 0, "LEDGER_SEAL_INTERVAL": 0,
            "DATABASE_URL": url, "BROKER_URL": "stub", "SECRET_KEYS": ["bench"], "HASH_KEY": "bench-pepper",
            "SIGNING_KEY": "YmVuY2gtc2lnbmluZy1rZXktMzItYnl0ZXMtbG9uZyE", "MAIL_URL": "maildir:/tmp/bench-mail"}


def seed(url: str, n: int) -> int:
    """One account, 1,000 subscriptions, ``n`` events sealed as leaves 0..n-1, written with COPY."""
    from flexmail import create_app
    from flexmail.domain import ledger, merkle
    from flexmail.extensions import db
    from flexmail.services.evidence.ledger import sign_head
    from flexmail.services.marketer import accounts, lists

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
                                "pending", "C", "en", START, START, START))
        tree, nodes = merkle.CompactRange(), []
        details = {"method": "GET"}
        details_hash = ledger.details_digest(details)
        with cur.copy("COPY consent_events (account_id, seq, subscription_id, list_id, type, at, ip, user_agent, "
                      "source, details, details_hash, salt, commitments, content_hash) FROM STDIN") as copy:
            for seq in range(1, n + 1):
                sub = (seq % 1000) + 1
                at = START + dt.timedelta(seconds=seq, microseconds=(seq * 7919) % 1_000_000)
                ip, ua, salt = f"192.0.{seq % 250}.{seq % 200}", "Mozilla/5.0 (bench)", secrets.token_hex(16)
                commits = ledger.commitments("bench-pepper", salt, {"email": f"person{sub}@example.com", "ip": ip,
                                                                    "user_agent": ua})
                content = {"account_id": account_id, "subscription_id": sub, "list_id": list_id,
                           "type": "link_fetched", "at": at.isoformat().replace("+00:00", "Z"), "source": "page",
                           "details_hash": details_hash, "commitments": commits}
                chash = ledger.content_hash(content)
                nodes += tree.append(ledger.leaf(chash))
                copy.write_row((account_id, seq, sub, list_id, "link_fetched", at, ip, ua, "page",
                                json.dumps(details), details_hash, salt, json.dumps(commits), chash))
        with cur.copy("COPY ledger_nodes (account_id, level, idx, hash) FROM STDIN") as copy:
            for level, idx, value in nodes:
                copy.write_row((account_id, level, idx, value.hex()))
        head = sign_head(account_id, tree.size, tree.root())
        cur.execute("INSERT INTO ledger_tree_heads (account_id, tree_size, root_hash, timestamp, key_id, signature) "
                    "VALUES (%s, %s, %s, %s, %s, %s)", (account_id, head["tree_size"], head["root_hash"],
                                                        head["timestamp"], head["key_id"], head["signature"]))
        cur.execute("SELECT setval('subscriptions_id_seq', 1001)")
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
        raw.close()
        db.engine.dispose()
    return account_id


def copy_baseline(url: str, account_id: int) -> tuple[float, int]:
    """COPY of the export's rows and columns (same join, order and bound), nothing escaped or formatted."""
    engine = create_engine(url)
    raw = engine.raw_connection()
    cur = raw.cursor()
    sql = ("COPY (SELECT e.seq, e.id, e.at, e.type, e.account_id, e.subscription_id, e.list_id, e.source, s.email, "
           "e.ip, e.user_agent, e.details, e.details_hash, e.commitments, e.salt, e.content_hash, e.prev_hash, "
           "e.entry_hash, e.redacted, e.tombstoned_at FROM consent_events e "
           "LEFT JOIN subscriptions s ON s.id = e.subscription_id "
           f"WHERE e.account_id = {int(account_id)} AND e.seq BETWEEN 1 AND 2147483647 ORDER BY e.seq) "
           "TO STDOUT (FORMAT csv)")
    started, size = time.perf_counter(), 0
    with cur.copy(sql) as copy:
        for chunk in copy:
            size += len(chunk)
    elapsed = time.perf_counter() - started
    raw.close()
    engine.dispose()
    return elapsed, size


def _peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM). ru_maxrss is not used: on Linux it keeps the
    parent's high-water mark across fork and exec, so it would report the seeding process."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _export_child(url, account_id, fmt, limit_seq, verify, queue):
    from flexmail import create_app
    from flexmail.services.evidence import export

    app = create_app(_config(url))
    with app.app_context():
        until = START + dt.timedelta(seconds=limit_seq + 1) if limit_seq else None
        request = export.ExportRequest(account_id, None, None, until, fmt)  # N/10: same code, fewer rows
        base_rss = _peak_rss_kb()
        kept = io.BytesIO() if verify else None
        started, size, rows = time.perf_counter(), 0, 0
        for chunk in export.start_export(request, principal=None):
            size += len(chunk)
            rows += chunk.count(b"\n")
            if kept is not None:
                kept.write(chunk)
        elapsed = time.perf_counter() - started
        peak = _peak_rss_kb()
        verdict = None
        if kept is not None:
            check = export.verify_export(io.StringIO(kept.getvalue().decode(), newline=""))
            verdict = check.message if check.ok else f"FAILED at row {check.row}: {check.message}"
        queue.put((elapsed, size, rows, base_rss, peak, verdict))


def run_export(url, account_id, fmt, limit_seq=None, verify=False):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    proc = context.Process(target=_export_child, args=(url, account_id, fmt, limit_seq, verify, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", "--events", dest="rows", type=int, default=1_000_000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--db", default=DB, help="name of the scratch database (created and dropped)")
    parser.add_argument("--tiny", action="store_true", help="300 events: for CI (no figures)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.tiny:
        args.rows = 300
    figures = {"machine": machine(), "rows": args.rows}
    db_name = args.db
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    url = args.pg.rsplit("/", 1)[0] + "/" + db_name
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {db_name}"))
    failed = False
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f}")
    try:
        t0 = time.perf_counter()
        account_id = seed(url, args.rows)
        print(f"seeded {args.rows:,} sealed events (rows, tree nodes, signed head) in {time.perf_counter() - t0:.1f} s")
        copy_baseline(url, account_id)  # warm the cache: both sides then read from memory
        copy_s, copy_bytes = copy_baseline(url, account_id)
        print(f"baseline COPY TO STDOUT: {copy_s:.2f} s, {args.rows / copy_s:,.0f} rows/s, {copy_bytes / 1e6:.0f} MB")
        figures["copy_seconds"] = copy_s
        for fmt in ("csv", "jsonl"):
            elapsed, size, rows, base, peak, verdict = run_export(url, account_id, fmt,
                                                                  verify=args.rows <= 20_000)
            small = run_export(url, account_id, fmt, limit_seq=max(args.rows // 10, 1))
            ratio = copy_s / elapsed
            figures[fmt] = {"seconds": elapsed, "speed_vs_copy": ratio, "peak_rss_mb": peak / 1024}
            print(f"export {fmt:5}: {elapsed:.2f} s, {args.rows / elapsed:,.0f} rows/s, {size / 1e6:.0f} MB; "
                  f"speed vs COPY {ratio:.2f} (target >= 0.5: {'met' if ratio >= 0.5 else 'MISSED'}), "
                  f"time {elapsed / copy_s:.2f}x; peak RSS {peak / 1024:.0f} MB (target <= 150: "
                  f"{'met' if peak / 1024 <= 150 else 'MISSED'}; process start {base / 1024:.0f} MB; "
                  f"at N/10 rows: peak {small[4] / 1024:.0f} MB)")
            if verdict is not None:
                print(f"  proof verify: {verdict}")
                failed |= not verdict.startswith("OK")
            if rows < args.rows:
                print(f"  only {rows} lines for {args.rows} rows")
                failed = True
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
        admin.dispose()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
