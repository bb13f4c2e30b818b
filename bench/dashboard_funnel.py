"""Benchmark: the dashboard's funnel figures of one list over 1,000,000 consent events, vs a count.

    .venv/bin/python bench/dashboard_funnel.py [--events 1000000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

Seeds a scratch database (flexmail_bench_funnel, dropped at the end) with the schema of the models
(indexes included) and N consent events written by one ``INSERT ... SELECT generate_series`` (no
ORM): 20 events per subscription in a realistic mix (signup requests, confirmation mails, early
link fetches, confirmations, unsubscribes by four methods with reasons, suppressions of four
reasons, bounces, expiries), spread evenly over the last 365 days, on two lists of one account
(four in five subscriptions on the measured list). Then, in the same run, it times (median of
``--repeat`` runs, after one warm-up):

  baseline   ``SELECT count(*) FROM consent_events`` (the whole table, an index-only scan)
  ours       ``services.marketer.funnel.list_funnel`` for 30, 90 and 365 days: the grouped events, the
             median time to confirm and the forwards, as the dashboard page runs them

and prints the absolute milliseconds and the ratio ours / baseline, then the same without the
funnel's index ``ix_consent_events_list_type_at`` (dropped for the measurement, then restored) to show
what it buys. ``--tiny`` (2,000 events) is what CI runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.common import machine  # noqa: E402

DB = "flexmail_bench_funnel"
EVENTS_PER_SUBSCRIPTION = 20
RANGES = (30, 90, 365)

#: Event type by position (g % 20) inside a subscription's block of 20 events.
SEED_SQL = """
INSERT INTO consent_events (account_id, subscription_id, list_id, type, at, source, details, content_hash)
SELECT :account_id, s.id, s.list_id,
  CASE WHEN k < 5 THEN 'subscribe_requested' WHEN k < 9 THEN 'confirmation_sent'
       WHEN k < 12 THEN 'link_fetched' WHEN k < 15 THEN 'confirmed' WHEN k < 17 THEN 'unsubscribed'
       WHEN k = 17 THEN 'suppressed' WHEN k = 18 THEN 'bounced' ELSE 'expired' END,
  :start + (g::bigint * :span_seconds / :events) * interval '1 second',
  CASE WHEN k IN (15, 16) THEN (ARRAY['one-click', 'page', 'mailto', 'api'])[1 + g % 4] ELSE 'page' END,
  (CASE WHEN k IN (9, 10, 11) THEN json_build_object('method', 'GET', 'before_click_gate', g % 3 = 0)
        WHEN k IN (12, 13, 14) THEN json_build_object('method', CASE WHEN g % 7 = 0 THEN 'auto' ELSE 'button' END)
        WHEN k IN (15, 16) THEN json_build_object('method', 'page', 'reason',
             (ARRAY['too_many', 'not_relevant', 'never_signed_up', 'other', NULL])[1 + g % 5])
        WHEN k = 17 THEN json_build_object('scope', 'account', 'kind', 'address',
             'reason', (ARRAY['hard_bounce', 'complaint', 'manual', 'unsubscribed'])[1 + g % 4])
        ELSE json_build_object('message_id', 'm' || g) END),
  md5(g::text) || md5((g + 1)::text)
FROM generate_series(0, :events - 1) AS g
CROSS JOIN LATERAL (SELECT g % 20 AS k) AS kk
JOIN subscriptions s ON s.id = 1 + g / 20
"""


def _config(url):
    return {"TESTING": True, "EMBEDDED_WORKER": False, "OUTBOX_SWEEP_INTERVAL": 0, "LEDGER_SEAL_INTERVAL": 0,
            "DATABASE_URL": url, "BROKER_URL": "stub", "SECRET_KEYS": ["bench"], "HASH_KEY": "bench-pepper",
            "MAIL_URL": "maildir:/tmp/bench-mail"}


def seed(app, events: int, now: dt.datetime) -> tuple[int, int, float]:
    """The schema, an account with two lists and two campaigns, ``events`` events; (account, list, seconds)."""
    from flexmail.extensions import db
    from flexmail.services.marketer import accounts, lists

    started = time.perf_counter()
    with app.app_context():
        db.create_all()
        account_id, _ = accounts.create_account("Bench", scopes=["marketer", "compliance"])
        list_ids = [lists.create_list(account_id, name=f"L{i}", sender_name="S", sender_email="s@example.com",
                                      consent_text="C").id for i in (1, 2)]
        subscriptions = -(-events // EVENTS_PER_SUBSCRIPTION)
        start = now - dt.timedelta(days=365)
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO subscriptions (id, account_id, list_id, email, address_hash, status, consent_text, "
                "language, created_at, requested_at, updated_at) "
                "SELECT g, :account_id, CASE WHEN g % 5 = 0 THEN :other ELSE :measured END, "
                "'person' || g || '@example.com', md5(g::text) || md5(g::text), 'unsubscribed', 'C', 'en', "
                ":start, :start, :start FROM generate_series(1, :n) AS g"),
                {"account_id": account_id, "other": list_ids[1], "measured": list_ids[0], "start": start,
                 "n": subscriptions})
            conn.execute(text("SELECT setval('subscriptions_id_seq', :n)"), {"n": subscriptions})
            conn.execute(text(SEED_SQL), {"account_id": account_id, "start": start, "events": events,
                                          "span_seconds": 365 * 86400})
            conn.execute(text(
                "INSERT INTO campaigns (account_id, list_id, subject, web_url, forwards, forwarded_recipients, "
                "forwards_failed, created_at) VALUES (:a, :l, 'One', 'https://example.com/1', 0, 0, 0, :s), "
                "(:a, :l, 'Two', 'https://example.com/2', 0, 0, 0, :s)"), {"a": account_id, "l": list_ids[0],
                                                                           "s": start})
            conn.execute(text(
                "INSERT INTO campaign_forward_days (campaign_id, day, forwards, recipients) "
                "SELECT c.id, CAST(:start AS date) + d, 1 + d % 3, 2 + d % 4 FROM campaigns c "
                "CROSS JOIN generate_series(0, 364) AS d"), {"start": start})
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return account_id, list_ids[0], time.perf_counter() - started


def _median_ms(call, repeat: int) -> float:
    call()  # warm-up: plans cached, pages in memory, for both sides alike
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(app, account_id: int, list_id: int, repeat: int, today: dt.date) -> dict:
    from flexmail.extensions import db
    from flexmail.services.marketer import funnel

    with app.app_context():
        baseline = _median_ms(lambda: db.session.execute(text("SELECT count(*) FROM consent_events")).scalar(),
                              repeat)
        figures = {"baseline_count_ms": baseline}
        for days in RANGES:
            result = funnel.list_funnel(account_id, list_id, days=days, today=today)
            ours = _median_ms(lambda d=days: funnel.list_funnel(account_id, list_id, days=d, today=today), repeat)
            figures[f"days_{days}"] = {"ms": ours, "ratio": ours / baseline, "signups": result.signups,
                                       "confirmations": result.confirmations,
                                       "events_in_range": _in_range(db, list_id, days, today)}
        db.session.remove()
    return figures


def _in_range(db, list_id: int, days: int, today: dt.date) -> int:
    from flexmail.services.marketer.funnel import date_range

    rng = date_range(days, today=today)
    return db.session.execute(text("SELECT count(*) FROM consent_events WHERE list_id = :l AND at >= :s AND at < :u"),
                              {"l": list_id, "s": rng.since, "u": rng.until}).scalar()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--db", default=DB, help="name of the scratch database (created and dropped)")
    parser.add_argument("--tiny", action="store_true", help="2,000 events: for CI (no figures)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.tiny:
        args.events, args.repeat = 2_000, 1
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    url = args.pg.rsplit("/", 1)[0] + "/" + args.db
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {args.db} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {args.db}"))
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f}")
    figures = {"machine": machine(), "events": args.events}
    from flexmail import create_app

    app = create_app(_config(url))
    now = dt.datetime.now(dt.UTC)
    try:
        account_id, list_id, seconds = seed(app, args.events, now)
        print(f"seeded {args.events:,} consent events (INSERT ... SELECT generate_series) in {seconds:.1f} s")
        figures["seed_seconds"] = seconds
        for label, drop in (("with_index", False), ("without_index", True)):
            if drop:
                with app.app_context():
                    from flexmail.extensions import db

                    with db.engine.begin() as conn:
                        conn.execute(text("DROP INDEX ix_consent_events_list_type_at"))
            found = measure(app, account_id, list_id, args.repeat, now.date())
            figures[label] = found
            print(f"{label.replace('_', ' ')}: baseline SELECT count(*) over {args.events:,} events "
                  f"{found['baseline_count_ms']:.1f} ms")
            for days in RANGES:
                f = found[f"days_{days}"]
                print(f"  funnel, last {days:3} days ({f['events_in_range']:,} events of the list in range): "
                      f"{f['ms']:.1f} ms, {f['ratio']:.2f}x the count")
    finally:
        with app.app_context():
            from flexmail.extensions import db

            db.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {args.db} WITH (FORCE)"))
        admin.dispose()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
