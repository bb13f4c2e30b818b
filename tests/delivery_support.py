"""A relay (aiosmtpd) whose answers a test scripts, and a clock a test steps through a schedule."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

from sqlalchemy import func, select

from flexmail import clock
from flexmail.extensions import db
from flexmail.models import OutboxMessage
from flexmail.services.delivery import outbox
from tests.helpers import smtp_server


class ScriptedRelay:
    """Answers RCPT and DATA from scripts (a list of replies used in turn, then "250"),
    and keeps every message it received, accepted or not."""

    def __init__(self, rcpt=(), data=()):
        self.rcpt_script = list(rcpt)
        self.data_script = list(data)
        self.rcpt_count = 0
        self.data_seen: list[bytes] = []
        self.delivered: list = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_count += 1
        if self.rcpt_script:
            reply = self.rcpt_script.pop(0)
            if not reply.startswith("250"):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_seen.append(envelope.content)
        if self.data_script:
            reply = self.data_script.pop(0)
            if not reply.startswith("250"):
                return reply
        self.delivered.append(envelope)
        return "250 OK"


@contextmanager
def relay(handler, port: int | None = None):
    """Run ``handler`` as a relay, on ``port`` if given (a relay coming back)."""
    if port is None:
        with smtp_server(handler) as running:
            yield running
        return
    from aiosmtpd.controller import Controller

    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    handler.url = f"smtp://127.0.0.1:{port}"
    try:
        yield handler
    finally:
        controller.stop()


def next_due(app) -> dt.datetime | None:
    """The earliest next attempt of a row still waiting, or None when none waits."""
    with app.app_context():
        at = db.session.scalar(select(func.min(OutboxMessage.next_attempt_at))
                               .where(OutboxMessage.status == "pending"))
        db.session.rollback()
        return clock.as_utc(at)


def step(app, worker) -> None:
    """Move the frozen clock to the next due attempt, then let the sweeper and workers act."""
    at = next_due(app)
    if at is not None and at > clock.now():
        clock.freeze(at)
    with app.app_context():
        outbox.sweep(grace_seconds=0)
    worker.drain()


def run_until(app, worker, until: dt.datetime, *, limit: int = 500) -> int:
    """Step through the schedule until the clock passes ``until`` or nothing waits; returns steps."""
    for steps in range(1, limit + 1):
        step(app, worker)
        due = next_due(app)
        if due is None or due > until:
            return steps
    raise AssertionError("schedule did not end")


def rows(app) -> list[OutboxMessage]:
    with app.app_context():
        found = list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        db.session.expunge_all()
        return found
