"""One sweeper per installation (a lease in the database), and no worker in CLI processes."""

from __future__ import annotations

import datetime as dt
import threading
import time

import dramatiq
import pytest

from flexmail import clock
from flexmail.services.delivery import outbox, webhook_delivery
from flexmail.services.platform import leases


def _wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def test_the_lease_has_one_holder_until_it_lapses(app):
    """A second process cannot take the sweeper lease while the first renews it; it can once it lapsed."""
    clock.freeze(dt.datetime(2026, 5, 1, tzinfo=dt.UTC))
    with app.app_context():
        assert leases.acquire("outbox-sweeper", "a", ttl=30)
        assert not leases.acquire("outbox-sweeper", "b", ttl=30)
        clock.freeze(clock.now() + dt.timedelta(seconds=20))
        assert leases.acquire("outbox-sweeper", "a", ttl=30)  # renewed
        clock.freeze(clock.now() + dt.timedelta(seconds=20))
        assert not leases.acquire("outbox-sweeper", "b", ttl=30)
        clock.freeze(clock.now() + dt.timedelta(seconds=31))
        assert leases.acquire("outbox-sweeper", "b", ttl=30)
        assert not leases.acquire("outbox-sweeper", "a", ttl=30)


@pytest.mark.parametrize("sweeper", [outbox, webhook_delivery], ids=["outbox", "webhooks"])
def test_of_several_sweeper_loops_only_the_lease_holder_sweeps_and_another_takes_over(app, monkeypatch, sweeper):
    """Three sweeper loops (as three worker processes run them) sweep from one thread only;
    when that one stops, another takes over. The outbox and the webhook deliveries alike."""
    swept: list[str] = []
    real_sweep = sweeper.sweep

    def recording_sweep(**kw):
        swept.append(threading.current_thread().name)
        return real_sweep(**kw)

    monkeypatch.setattr(sweeper, "sweep", recording_sweep)
    stops = {f"sweeper-{i}": threading.Event() for i in range(3)}
    threads = [threading.Thread(target=sweeper.run_sweeper, args=(app, 0.1, stop), name=name, daemon=True)
               for name, stop in stops.items()]
    for thread in threads:
        thread.start()
    try:
        _wait_for(lambda: len(swept) >= 10)
        first = set(swept)
        assert len(first) == 1, first
        holder = first.pop()
        stops[holder].set()
        count = len(swept)
        _wait_for(lambda: len(swept) >= count + 5)
        after = set(swept[count + 1:])
        assert len(after) == 1 and holder not in after, after
    finally:
        for stop in stops.values():
            stop.set()
        for thread in threads:
            thread.join(5)


def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if isinstance(t, dramatiq.worker._WorkerThread) or t.name == "outbox-sweeper"]


def test_cli_commands_never_start_a_worker_or_sweeper_but_the_web_process_does(make_app, app_config, tmp_path):
    """On the embedded default, `inbound deliver`, `outbox sweep` and other commands start no
    worker thread and no sweeper; the first HTTP request of the web process starts both."""
    app = make_app({**app_config, "BROKER_URL": "stub", "EMBEDDED_WORKER": True, "OUTBOX_SWEEP_INTERVAL": 1})
    before = set(_worker_threads())
    runner = app.test_cli_runner()
    runner.invoke(args=["inbound", "deliver", "-r", "nobody@flexmail.test"], input=b"Subject: x\r\n\r\nhi\r\n")
    runner.invoke(args=["outbox", "sweep"])
    runner.invoke(args=["retention", "run"])
    assert "dramatiq_worker" not in app.extensions
    assert set(_worker_threads()) == before
    try:
        assert app.test_client().get("/api/v1/lists").status_code == 401
        assert "dramatiq_worker" in app.extensions
        _wait_for(lambda: any(t.name == "outbox-sweeper" for t in _worker_threads()))
    finally:
        if "dramatiq_worker" in app.extensions:
            app.extensions["dramatiq_worker"].stop()
