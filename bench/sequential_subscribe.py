"""Benchmark: one client subscribing one address after another (issue 11 target 6, third line).

Two comparisons, each measured in the same run on this machine:

1. Flexmail's API subscribe against django-newsletter's subscribe form (PyPI
   ``django-newsletter``, installed here into its own virtualenv under the cache folder), both
   under gunicorn with ``deploy/gunicorn.conf.py`` on the same PostgreSQL server, each with
   its own database. django-newsletter sends its activation mail inside the request (Django's
   SMTP backend, to an aiosmtpd sink on loopback: its default way of working); Flexmail
   commits the signup with its outbox row and enqueues the id on Redis, and a worker (not
   running here) sends later. Target: Flexmail >= 2x django-newsletter.
2. Flexmail on an empty table against the same with ``--pending`` (default 1,000,000) pending
   signups of the same account, with their confirmation rows of the last hour (what the flood
   limits read). Target: >= 0.9 (flat).

One keep-alive HTTP connection per client, ``--requests`` requests each, runs interleaved
``--repeat`` times; medians. Nothing here asserts a time.

    .venv/bin/python bench/sequential_subscribe.py [--requests 400] [--repeat 3] [--pending 1000000] [--tiny]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402

from bench.common import machine, stop_processes  # noqa: E402
from bench.http_paths import app_env, clone_rows, free_port, start_gunicorn, wait_http  # noqa: E402

DJANGO_PINS = ["Django==5.2.9", "django-newsletter==1.2.1", "gunicorn==27.0.1", "psycopg[binary]==3.3.9",
               "aiosmtpd==1.4.6", "sorl-thumbnail==12.11.0"]
CACHE = Path(os.environ.get("FLEXMAIL_BENCH_CACHE", ROOT / "bench" / ".cache"))

DJANGO_SETTINGS = """
SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sites",
                  "django.contrib.sessions", "django.contrib.messages", "sorl.thumbnail", "newsletter"]
# CSRF is left out so that a plain form POST subscribes, as Flexmail's API needs no cookie.
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware",
              "django.middleware.common.CommonMiddleware",
              "django.contrib.auth.middleware.AuthenticationMiddleware",
              "django.contrib.messages.middleware.MessageMiddleware"]
ROOT_URLCONF = "benchsite.urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                 "django.contrib.auth.context_processors.auth",
                                                 "django.contrib.messages.context_processors.messages"]}}]
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "{db}", "USER": "postgres",
                         "HOST": "127.0.0.1", "PORT": "5432", "CONN_MAX_AGE": 600}}
SITE_ID = 1
USE_TZ = True
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = {smtp_port}
NEWSLETTER_THUMBNAIL = "sorl-thumbnail"
NEWSLETTER_USE_HTTPS = False
NEWSLETTER_CONFIRM_EMAIL_SUBSCRIBE = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING = {"version": 1, "disable_existing_loggers": True}
"""

DJANGO_URLS = """
from django.urls import include, path
urlpatterns = [path("newsletter/", include("newsletter.urls"))]
"""


def django_venv() -> Path:
    """A virtualenv with django-newsletter, made once under the cache folder."""
    venv = CACHE / "django-newsletter-venv"
    marker = venv / "pins.txt"
    if not marker.exists() or marker.read_text() != "\n".join(DJANGO_PINS):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *DJANGO_PINS],
                       check=True)
        marker.write_text("\n".join(DJANGO_PINS))
    return venv


def sequential(port: int, requests: list[tuple[str, dict, bytes]]) -> float:
    """Requests per second of one client sending ``requests`` one after another on one connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    bad = 0
    start = time.perf_counter()
    for path, headers, body in requests:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
        if response.status >= 400:
            bad += 1
            last = f"{response.status} {answer[:300]!r}"
    elapsed = time.perf_counter() - start
    conn.close()
    if bad:
        raise RuntimeError(f"{bad} of {len(requests)} requests to port {port} failed; last: {last}")
    return len(requests) / elapsed


def main() -> None:  # noqa: C901 (a script: one straight sequence)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--skip-django", action="store_true", help="only the flatness comparison")
    parser.add_argument("--tiny", action="store_true", help="seconds, not minutes: for CI (no figures)")
    parser.add_argument("--server", default=os.environ.get("FLEXMAIL_BENCH_POSTGRES_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis", default=os.environ.get("FLEXMAIL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.tiny:
        args.requests, args.repeat, args.pending = 20, 1, 500

    base = args.server.rsplit("/", 1)[0]
    databases = {"empty": "flexmail_bench_seq_empty", "full": "flexmail_bench_seq_full",
                 "django": "flexmail_bench_seq_django"}
    with psycopg.connect(args.server, autocommit=True) as admin:
        for name in databases.values():
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {name}")
    work = Path(tempfile.mkdtemp(prefix="flexmail-bench-seq-"))
    procs: list[subprocess.Popen] = []
    ports: dict[str, int] = {}
    targets: dict[str, list[tuple[str, dict, bytes]]] = {}
    try:
        # Flexmail twice: an empty database and one with many pending signups of the account.
        for name in ("empty", "full"):
            dsn = f"{base}/{databases[name]}"
            url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
            ports[name] = free_port()
            env = app_env(url, args.redis.rsplit("/", 1)[0] + f"/{13 if name == 'empty' else 12}",
                          work / name, f"http://127.0.0.1:{ports[name]}")
            subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "app", "db", "upgrade"],
                           cwd=ROOT, env=env, check=True, capture_output=True)
            code = textwrap.dedent("""
                import json
                from flexmail import create_app
                from flexmail.services.consent import subscriptions
                from flexmail.services.marketer import accounts, lists
                from flexmail.services.platform.context import RequestMeta
                app = create_app()
                with app.app_context():
                    account_id, key = accounts.create_account("bench", scopes=["marketer"])
                    lst = lists.create_list(account_id, name="List", sender_name="Bench",
                                            sender_email="news@bench.example", consent_text="Yes, send me news.")
                    subscriptions.request_subscription(account_id, lst.id, email="template@bench.example",
                                                       meta=RequestMeta(ip="198.51.100.7", user_agent="bench"))
                    print(json.dumps({"key": key, "list_id": lst.id}))
            """)
            seeded = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                                    check=False)
            if seeded.returncode:
                raise RuntimeError(seeded.stderr[-3000:])
            tenant = json.loads(seeded.stdout.strip().splitlines()[-1])
            if name == "full":
                t0 = time.monotonic()
                with psycopg.connect(dsn, autocommit=True) as conn:
                    sub_id, outbox_id = conn.execute(
                        "SELECT s.id, o.id FROM subscriptions s JOIN outbox o ON o.subscription_id = s.id").fetchone()
                    unique = {"email": "'p' || g || '@bench.example'", "address_hash": "md5(g::text)"}
                    first = clone_rows(conn, "subscriptions", sub_id, args.pending, unique)[0]
                    # One confirmation row per pending person, within the hour the flood limit reads.
                    conn.execute(
                        "INSERT INTO outbox (account_id, subscription_id, kind, address_hash, signup_ip_hash, "
                        "status, message_id, attempts, created_at) "
                        "SELECT o.account_id, %s + g - 1, o.kind, md5(g::text), o.signup_ip_hash, 'sent', "
                        "'<' || g || '@bench>', 1, now() - (g %% 3000) * interval '1 second' "
                        "FROM outbox o, generate_series(1, %s) g WHERE o.id = %s",
                        (first, args.pending, outbox_id))
                    conn.execute("VACUUM ANALYZE")
                print(f"seeded {args.pending:,} pending signups in {time.monotonic() - t0:.1f} s", flush=True)
            procs.append(start_gunicorn("app:app", ports[name], env, work / f"{name}.log"))
            wait_http(f"http://127.0.0.1:{ports[name]}/health")
            headers = {"Authorization": f"Bearer {tenant['key']}", "Content-Type": "application/json"}
            targets[name] = [
                (f"/api/v1/lists/{tenant['list_id']}/subscriptions", headers, json.dumps({
                    "email": f"seq-{name}-{i}@bench{i % 97}.example", "ip": f"203.0.113.{i % 250 + 1}",
                    "user_agent": "bench", "source": "bench"}).encode())
                for i in range(args.requests * args.repeat + 20)]

        if not args.skip_django:
            venv = django_venv()
            smtp_port, ports["django"] = free_port(), free_port()
            procs.append(subprocess.Popen(
                [str(venv / "bin" / "python"), "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}", "-c",
                 "aiosmtpd.handlers.Sink"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True))
            site = work / "django"
            (site / "benchsite").mkdir(parents=True)
            (site / "benchsite" / "__init__.py").write_text("")
            (site / "benchsite" / "settings.py").write_text(
                DJANGO_SETTINGS.replace("{db}", databases["django"]).replace("{smtp_port}", str(smtp_port)))
            (site / "benchsite" / "urls.py").write_text(DJANGO_URLS)
            denv = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchsite.settings", "PYTHONPATH": str(site),
                    "FLEXMAIL_BIND": f"127.0.0.1:{ports['django']}"}
            py = str(venv / "bin" / "python")
            subprocess.run([py, "-m", "django", "migrate", "-v", "0"], cwd=site, env=denv, check=True)
            subprocess.run([py, "-c", "import django; django.setup(); from newsletter.models import Newsletter; "
                            "Newsletter.objects.create(title='Bench', slug='bench', email='news@bench.example', "
                            "sender='Bench', visible=True).site.set([1])"], cwd=site, env=denv, check=True)
            procs.append(subprocess.Popen(
                [str(venv / "bin" / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                 "--access-logfile", "/dev/null", "django.core.wsgi:get_wsgi_application()"],
                cwd=site, env=denv, stdout=(work / "django.log").open("wb"), stderr=subprocess.STDOUT,
                start_new_session=True))
            time.sleep(1)
            deadline = time.monotonic() + 60
            while True:
                try:
                    sequential(ports["django"], [("/newsletter/bench/subscribe/",
                                                  {"Content-Type": "application/x-www-form-urlencoded"},
                                                  urlencode({"name_field": "W", "email_field": "warm@bench.example"})
                                                  .encode())])
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            form = {"Content-Type": "application/x-www-form-urlencoded"}
            targets["django"] = [
                ("/newsletter/bench/subscribe/", form,
                 urlencode({"name_field": f"Person {i}", "email_field": f"seq-{i}@bench{i % 97}.example"}).encode())
                for i in range(args.requests * args.repeat + 20)]

        # Warm up each server (imports, pools), then interleave the measured runs.
        results: dict[str, list[float]] = {name: [] for name in targets}
        offsets = {name: 0 for name in targets}
        for name in targets:
            sequential(ports[name], targets[name][:20])
            offsets[name] = 20
        for run in range(args.repeat):
            for name in targets:
                batch = targets[name][offsets[name]:offsets[name] + args.requests]
                offsets[name] += args.requests
                results[name].append(sequential(ports[name], batch))
                print(f"  run {run + 1} {name:>7}: {results[name][-1]:7.1f} req/s", flush=True)

        medians = {name: statistics.median(values) for name, values in results.items()}
        print(f"\n{machine()}\none client, {args.requests} requests per run, {args.repeat} interleaved runs, medians")
        print(f"  Flexmail API subscribe, empty table:            {medians['empty']:7.1f} req/s")
        print(f"  Flexmail API subscribe, {args.pending:>9,} pending:      {medians['full']:7.1f} req/s  "
              f"ratio {medians['full'] / medians['empty']:.2f} (target >= 0.9)")
        summary = {"machine": machine(), "requests": args.requests, "repeat": args.repeat, "pending": args.pending,
                   "rps": medians, "flat_ratio": medians["full"] / medians["empty"]}
        if "django" in medians:
            ratio = medians["empty"] / medians["django"]
            summary["vs_django_newsletter"] = ratio
            print(f"  django-newsletter subscribe (mail in request): {medians['django']:7.1f} req/s  "
                  f"Flexmail/django {ratio:.2f} (target >= 2)")
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2))
    finally:
        stop_processes(procs)
        with psycopg.connect(args.server, autocommit=True) as admin:
            for name in databases.values():
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        for db_index in (12, 13):
            redis.Redis.from_url(args.redis.rsplit("/", 1)[0] + f"/{db_index}").flushdb()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
