"""Named roles that one process of the installation holds at a time (the sweepers).

A lease is a row in ``leases``: taken with a guarded UPDATE when it is free or has lapsed,
renewed by its holder, so it works alike on SQLite and PostgreSQL and across machines
that share the database. A holder that dies stops renewing; another process takes over
once ``ttl`` has passed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models import Lease

log = logging.getLogger(__name__)


def holder_id() -> str:
    """A name for this process, unique across restarts: host, pid and a random part."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(4)}"


def acquire(name: str, holder: str, *, ttl: float) -> bool:
    """Take or renew lease ``name`` for ``holder`` for ``ttl`` seconds; False if another holds it."""
    at = now()
    until = at + dt.timedelta(seconds=ttl)
    try:
        taken = db.session.execute(
            update(Lease).where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < at))
            .values(holder=holder, expires_at=until).execution_options(synchronize_session=False)
        ).rowcount
        if not taken:
            if db.session.get(Lease, name) is not None:
                db.session.rollback()
                return False
            db.session.add(Lease(name=name, holder=holder, expires_at=until))
        db.session.commit()
        return True
    except IntegrityError:  # two processes made the first row at once: the other one won
        db.session.rollback()
        return False


def release(name: str, holder: str) -> None:
    """Give the lease up at once (on a clean shutdown), so another process need not wait."""
    db.session.execute(
        update(Lease).where(Lease.name == name, Lease.holder == holder)
        .values(expires_at=now() - dt.timedelta(seconds=1)).execution_options(synchronize_session=False)
    )
    db.session.commit()


def run_while_holding(app, name: str, interval: float, stop: threading.Event, work: Callable[[], object]) -> None:
    """Every ``interval`` seconds until ``stop`` is set: take or renew lease ``name``, and run
    ``work`` only while holding it, so one process of the installation does it however many
    workers offer. A holder that dies stops renewing; another takes over after ``3 * interval``."""
    holder = holder_id()
    held = False
    while True:
        try:
            with app.app_context():
                held = acquire(name, holder, ttl=max(3 * interval, 5))
                if held:
                    work()
        except Exception:
            log.exception("%s failed", name)
        if stop.wait(interval):
            break
    if held:
        try:
            with app.app_context():
                release(name, holder)
        except Exception:
            log.exception("could not release the %s lease", name)
