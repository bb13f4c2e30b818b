"""The loop that applies the opt-out spool: in workers, web processes and ``inbound serve``.

Every long-running process drains its spool on start and then every
``FLEXMAIL_SPOOL_DRAIN_INTERVAL`` seconds (0: never). Only one drains at a time (the
spool's ``drain.lock``); the others find it busy and wait for their next turn. CLI
commands start no loop: ``flask spool drain`` drains once.
"""

from __future__ import annotations

import logging
import os
import threading

from dramatiq.middleware import Middleware

log = logging.getLogger(__name__)

_started: dict[int, threading.Event] = {}
_lock = threading.Lock()


def _loop(app, interval: int, stop: threading.Event) -> None:
    from flexmail.services.optout import spool

    while True:
        try:
            with app.app_context():
                spool.drain()
        except Exception:
            log.exception("spool drain failed; trying again in %s s", interval)
        if stop.wait(interval):
            return


def start(app) -> threading.Event | None:
    """Start this process's drain thread once (per app and process id); returns its stop event."""
    interval = int(app.config.get("SPOOL_DRAIN_INTERVAL") or 0)
    if interval <= 0:
        return None
    key = hash((id(app), os.getpid()))
    with _lock:
        if key in _started:
            return _started[key]
        stop = _started[key] = threading.Event()
    threading.Thread(target=_loop, args=(app, interval, stop), name="spool-drain", daemon=True).start()
    return stop


def stop(app) -> None:
    """Stop this process's drain thread for ``app`` (it finishes the line it is on)."""
    with _lock:
        event = _started.pop(hash((id(app), os.getpid())), None)
    if event is not None:
        event.set()


class SpoolDrainMiddleware(Middleware):
    """Dramatiq workers (a process or the embedded thread) drain the spool too."""

    def __init__(self, app):
        self.app = app

    def after_worker_boot(self, broker, worker):
        start(self.app)

    def before_worker_shutdown(self, broker, worker):
        stop(self.app)


def init_app(app, broker) -> None:
    """Drain in workers, and in web processes from their first request (after a fork)."""
    broker.add_middleware(SpoolDrainMiddleware(app))

    @app.before_request
    def _start_drain():
        start(app)
