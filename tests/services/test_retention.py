"""Retention with --as-of deletes and truncates exactly what it should, and the chain still verifies."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from flexmail import clock
from flexmail.extensions import db
from flexmail.models import ConsentEvent, OutboxMessage, Subscription
from flexmail.services.evidence.retention import truncate_ip
from tests.helpers import link_from, token_of

AS_OF = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def _at(days_ago):
    clock.freeze(AS_OF - dt.timedelta(days=days_ago))


def _mail_to(maildir, address):
    return [m for m in maildir() if m["To"].addresses[0].addr_spec == address][-1]


def test_retention_as_of_a_date(app, client, runner, tmp_path, account, create_list, subscribe, worker, maildir):
    """Old unconfirmed signups and long-withdrawn consent go, old IPs are truncated, the rest stays."""
    lst = create_list()

    def signup(email, days_ago, ip):
        _at(days_ago)
        response = subscribe(lst["id"], email=email, ip=ip)
        assert response.status_code == 202
        worker.drain()
        return response.json["subscription"]["id"]

    pending_old = signup("old-pending@example.com", 4 * 365, "192.0.2.10")
    confirmed_old = signup("loyal@example.com", 4 * 365, "192.0.2.11")
    _at(4 * 365 - 1)
    client.post("/confirm/" + token_of(link_from(_mail_to(maildir, "loyal@example.com"), "confirm")),
                data={"method": "button"}, environ_base={"REMOTE_ADDR": "2001:db8:1:2::7"})
    withdrawn_old = signup("gone@example.com", 4 * 365, "192.0.2.12")
    client.post("/not-me/" + token_of(link_from(_mail_to(maildir, "gone@example.com"), "not-me")))
    withdrawn_recent = signup("recent-no@example.com", 2 * 365, "192.0.2.13")
    _at(2 * 365)
    client.post("/not-me/" + token_of(link_from(_mail_to(maildir, "recent-no@example.com"), "not-me")))
    pending_fresh = signup("fresh@example.com", 10, "192.0.2.14")
    clock.freeze(None)

    result = runner.invoke(args=["retention", "run", "--as-of", "2026-11-20T12:00:00"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output.strip().splitlines()[-1])
    assert counts["pending_deleted"] == 1 and counts["withdrawn_deleted"] == 1
    assert counts["pending_expired"] == 0

    with app.app_context():
        remaining = {s.id for s in db.session.scalars(select(Subscription))}
        assert remaining == {confirmed_old, withdrawn_recent, pending_fresh}
        assert db.session.scalars(select(OutboxMessage).where(
            OutboxMessage.subscription_id.in_([pending_old, withdrawn_old]))).all() == []
        events = list(db.session.scalars(select(ConsentEvent).order_by(ConsentEvent.seq)))
        tombstones = [e for e in events if e.tombstoned_at is not None]
        assert tombstones and all(e.type is None and e.ip is None and e.details is None for e in tombstones)
        assert counts["events_tombstoned"] == len(tombstones)
        by_sub = {}
        for e in events:
            by_sub.setdefault(e.subscription_id, []).append(e)
        loyal = by_sub[confirmed_old]
        assert {e.ip for e in loyal if e.ip} == {"192.0.2.0", "2001:db8:1::"}
        assert all("ip" in e.redacted for e in loyal if e.ip)
        recent = [e for e in by_sub[withdrawn_recent] if e.ip]
        assert {e.ip for e in recent} == {"192.0.2.0", "127.0.0.0"}  # two years old: truncated, kept
        fresh = [e for e in by_sub[pending_fresh] if e.ip]
        assert {e.ip for e in fresh} == {"192.0.2.14"}  # ten days old: untouched
        assert counts["ips_truncated"] == sum(1 for e in events if e.redacted and "ip" in e.redacted)

    export = client.get("/api/v1/proof/export?format=csv", headers=account.headers).data
    head = client.get("/api/v1/proof/head", headers=account.headers).json
    path = tmp_path / "after-retention.csv"
    path.write_bytes(export)
    verify = runner.invoke(args=["proof", "verify", str(path), "--head", json.dumps(head)])
    assert verify.exit_code == 0, verify.output
    audit = client.get("/api/v1/audit", headers=account.headers).json["items"]
    assert audit == [a for a in audit if a["action"] != "retention.run"]  # platform job: not an account's


def test_retention_is_idempotent(app, runner, create_list, subscribe, worker):
    """A second run with the same date changes nothing more."""
    lst = create_list()
    _at(40)
    subscribe(lst["id"], email="a@example.com")
    clock.freeze(None)
    first = json.loads(runner.invoke(args=["retention", "run", "--as-of", "2026-11-20"]).output.splitlines()[-1])
    second = json.loads(runner.invoke(args=["retention", "run", "--as-of", "2026-11-20"]).output.splitlines()[-1])
    assert first["pending_deleted"] == 1
    assert all(v == 0 for v in second.values())


def test_retention_rejects_a_bad_date(runner):
    """A malformed --as-of is a usage error."""
    result = runner.invoke(args=["retention", "run", "--as-of", "next tuesday"])
    assert result.exit_code == 2


def test_truncate_ip():
    """IPv4 keeps /24, IPv6 keeps /48."""
    assert truncate_ip("203.0.113.77") == "203.0.113.0"
    assert truncate_ip("2001:db8:abcd:12::1") == "2001:db8:abcd::"
