"""Profile the three consent hot paths in-process: statements and CPU per request, cProfile top.

    .venv/bin/python bench/consent_profile.py [--n 300] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
                                             [--profile subscribe|confirm|one-click]

Runs, through Flask's test client (no HTTP server, so the figures are the application's own
cost): N API subscribes of new addresses, N confirm POSTs, N one-click POSTs, against a fresh
PostgreSQL database (created and dropped here) or SQLite (``--sqlite``). Prints per path the SQL
statements per request (counted on the engine) and the mean wall time per request, and with
``--profile PATH`` the cProfile functions of that path by cumulative time. Run it on two
checkouts to compare them: it uses only the HTTP interface and two services that both have.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.getcwd())

from sqlalchemy import create_engine, event, text  # noqa: E402


def build(url: str, tmp: str):
    from flexmail import create_app
    from flexmail.extensions import db

    app = create_app({
        "TESTING": True, "EMBEDDED_WORKER": False, "OUTBOX_SWEEP_INTERVAL": 0, "DATABASE_URL": url,
        "BROKER_URL": "stub", "SECRET_KEYS": ["bench-secret"], "HASH_KEY": "bench-pepper",
        "MAIL_URL": f"maildir:{tmp}/mail", "PUBLIC_URL": "http://bench.test", "LOG_LEVEL": "WARNING",
        "SIGNING_KEY": "YmVuY2gtc2lnbmluZy1rZXktMzItYnl0ZXMtbG9uZyE",
        "CONFIRM_PER_ACCOUNT_PER_HOUR": 10**8, "CONFIRM_PER_IP_PER_HOUR": 10**8,
    })
    with app.app_context():
        db.create_all()
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--profile", choices=["subscribe", "confirm", "one-click"])
    parser.add_argument("--sort", default="cumulative", help="pstats order: cumulative, tottime, ...")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--calls", action="store_true",
                        help="profile every path and print Python function calls per request (a CPU "
                             "figure that does not move with the machine's load)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="flexmail-profile-")
    admin, name = None, f"flexmail_profile_{uuid.uuid4().hex[:8]}"
    if args.sqlite:
        url = f"sqlite:///{tmp}/bench.db"
    else:
        admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        url = args.pg.rsplit("/", 1)[0] + "/" + name
    try:
        run(build(url, tmp), args)
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def run(app, args) -> None:  # noqa: C901 (a script)
    import dramatiq

    from flexmail.domain.tokens import Purpose
    from flexmail.extensions import db
    from flexmail.models import OutboxMessage, Subscription
    from flexmail.services.marketer import accounts, lists
    from flexmail.services.optout import unsubscribe
    from flexmail.services.platform.context import signer

    dramatiq.get_broker().get_actor("send_outbox").send = lambda *a, **k: None  # no worker here
    with app.app_context():
        account_id, key = accounts.create_account("Bench", scopes=["marketer"])
        list_id = lists.create_list(account_id, name="L", sender_name="S", sender_email="s@example.com",
                                    consent_text="C").id
        engine = db.engine
    client, headers = app.test_client(), {"Authorization": f"Bearer {key}"}
    counted = []
    event.listen(engine, "before_cursor_execute",
                 lambda c, cur, stmt, p, ctx, many: counted.append(stmt)
                 if not stmt.lstrip().upper().startswith(("BEGIN", "COMMIT")) else None)
    client.post(f"/api/v1/lists/{list_id}/subscriptions", json={"email": "warm@example.com"}, headers=headers)

    def subscribe(i):
        r = client.post(f"/api/v1/lists/{list_id}/subscriptions",
                        json={"email": f"p{i}@example.com", "ip": "192.0.2.1", "user_agent": "bench"},
                        headers=headers)
        assert r.status_code == 202, r.data

    tokens: dict[str, list[str]] = {}

    def prepare():
        with app.app_context():
            rows = db.session.execute(
                text("SELECT s.id, o.id FROM subscriptions s JOIN outbox o ON o.subscription_id = s.id "
                     "WHERE s.email LIKE 'p%' ORDER BY s.id")).all()
            db.session.execute(OutboxMessage.__table__.update().values(status="sent", sent_at=db.func.now()))
            db.session.commit()
            tokens["confirm"] = ["/confirm/" + signer().dumps(Purpose.CONFIRM, [sid, oid]) for sid, oid in rows]
            tokens["one-click"] = [unsubscribe.unsubscribe_url(sid).removeprefix("http://bench.test")
                                   for sid, _ in rows]
            assert Subscription  # imported for the side effect of the models

    def confirm(i):
        assert client.post(tokens["confirm"][i], data={"method": "button"}).status_code == 200

    def one_click(i):
        assert client.post(tokens["one-click"][i], data={"List-Unsubscribe": "One-Click"}).status_code == 200

    for path, fn in (("subscribe", subscribe), ("confirm", confirm), ("one-click", one_click)):
        if path == "confirm":
            prepare()
        counted.clear()
        profiler = cProfile.Profile() if args.profile == path or args.calls else None
        started, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        for i in range(args.n):
            fn(i)
        if profiler:
            profiler.disable()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        ledger = sum("ledger_heads" in s for s in counted)
        print(f"{path:10s} statements/request {len(counted) / args.n:5.2f} "
              f"(of which ledger head lock {ledger / args.n:4.2f})  ms/request {1000 * elapsed / args.n:6.2f}  "
              f"CPU ms/request {1000 * cpu / args.n:6.2f}")
        if profiler and args.calls:
            calls = pstats.Stats(profiler).total_calls
            print(f"{'':10s} Python function calls/request {calls / args.n:8.0f}")
        if profiler and args.profile == path:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.top)
            print(out.getvalue())


if __name__ == "__main__":
    main()
