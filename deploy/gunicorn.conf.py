"""gunicorn settings for production: `gunicorn -c deploy/gunicorn.conf.py app:app`.

The access log leaves out the client address (%(h)s) and Flexmail's log record factory
(flexmail.redact) replaces tokens in paths, so no IP or token reaches the log.
"""

import os

bind = os.environ.get("FLEXMAIL_BIND", "0.0.0.0:8000")
# Two processes per core, four threads each (docs/scaling.md): a request mostly waits on
# PostgreSQL, and a second process keeps the core busy while the first waits for its GIL.
workers = int(os.environ.get("FLEXMAIL_WEB_WORKERS", str(2 * (os.cpu_count() or 1))))
threads = int(os.environ.get("FLEXMAIL_WEB_THREADS", "4"))
worker_class = "gthread"
worker_connections = int(os.environ.get("FLEXMAIL_WEB_CONNECTIONS", "1000"))
# Each worker listens on its own SO_REUSEPORT socket and the kernel spreads new connections
# over them. With one shared socket, the worker that wakes first accepts most keep-alive
# connections: measured with wrk (64 connections, 4 workers), one worker ran at 85% CPU
# (one core, its GIL) while the other three idled, whatever the machine had left. (With
# SO_REUSEPORT a second server started on the same port by the same user shares it instead
# of failing: run one per port.)
reuse_port = os.environ.get("FLEXMAIL_WEB_REUSE_PORT", "1").lower() in {"1", "true", "yes", "on"}
timeout = 30
accesslog = "-"
access_log_format = '"%(m)s %(U)s" %(s)s %(B)s %(M)sms "%(a)s"'
# Query strings are left out (%(U)s is the path only): they may hold addresses.
forwarded_allow_ips = os.environ.get("FLEXMAIL_FORWARDED_ALLOW_IPS", "127.0.0.1")

# Prometheus (flexmail.observability): the web workers' counters live in files in one directory,
# summed at each scrape of /metrics. `./dev up` sets the directory (and shares it with
# `inbound serve`); otherwise this process makes its own and clears it on start.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_own_metrics_dir = not _metrics_dir
if _own_metrics_dir:
    import tempfile

    _metrics_dir = tempfile.mkdtemp(prefix="flexmail-prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir
os.makedirs(_metrics_dir, exist_ok=True)


def child_exit(server, worker):
    """A dead worker's live gauges leave the sums (its counters stay: they are history)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _own_metrics_dir:
        import shutil

        shutil.rmtree(_metrics_dir, ignore_errors=True)
