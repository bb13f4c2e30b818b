"""Nobody can bomb a mailbox through us: limits per account and address, per signup IP, per
account, and a platform-wide cap per address that no account can see."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from flexmail import clock
from flexmail.extensions import db
from flexmail.models import FloodCounter, OutboxMessage
from tests.conftest import BACKEND
from tests.consent_support import http, in_parallel, serve


def _outbox(app, *, status=None):
    with app.app_context():
        query = select(OutboxMessage)
        if status:
            query = query.where(OutboxMessage.status == status)
        return [SimpleNamespace(id=r.id, account_id=r.account_id, status=r.status, message_id=r.message_id)
                for r in db.session.scalars(query)]


def test_per_address_limit_is_per_account(client, account, create_account, create_list, subscribe, worker, maildir):
    """Three confirmation mails a day per address and account (the fourth is a 429), and
    another account's signups of the same address never make this account's a 429."""
    other = create_account("Globex")
    mine, theirs = [create_list(), create_list(name="Two")], create_list(acct=other)
    codes = [subscribe(theirs["id"], email="victim@example.com", acct=other, ip=f"192.0.2.{i}").status_code
             for i in range(4)]
    assert codes == [202, 202, 202, 429]
    codes = [subscribe(lst["id"], email="victim@example.com", ip=f"198.51.100.{i}").status_code
             for i, lst in enumerate([mine[0], mine[1], mine[0], mine[1]])]
    assert codes == [202, 202, 202, 429]
    worker.drain()
    assert len(maildir()) == 6


def test_per_address_limit_lifts_after_a_day(client, create_list, subscribe):
    """Windows are UTC days: 24 hours after the first mail, one more is allowed."""
    lst = create_list()
    for _ in range(3):
        assert subscribe(lst["id"]).status_code == 202
    limited = subscribe(lst["id"])
    assert limited.status_code == 429 and 0 < int(limited.headers["Retry-After"]) <= 86400
    clock.freeze(clock.now() + dt.timedelta(hours=24, seconds=1))
    assert subscribe(lst["id"]).status_code == 202


def test_per_signup_ip_limit(app_with_list):
    """One signup IP can trigger only CONFIRM_PER_IP_PER_HOUR confirmation mails an hour."""
    _, client, list_id, headers = app_with_list(CONFIRM_PER_IP_PER_HOUR=2)

    def sub(email, ip):
        return client.post(f"/api/v1/lists/{list_id}/subscriptions", json={"email": email, "ip": ip},
                           headers=headers)

    assert [sub(f"u{i}@example.com", "198.51.100.5").status_code for i in range(3)] == [202, 202, 429]
    assert sub("other@example.com", "198.51.100.6").status_code == 202


def test_per_account_limit(app_with_list):
    """An account can trigger only CONFIRM_PER_ACCOUNT_PER_HOUR confirmation mails an hour."""
    _, client, list_id, headers = app_with_list(CONFIRM_PER_ACCOUNT_PER_HOUR=2)
    codes = [client.post(f"/api/v1/lists/{list_id}/subscriptions",
                         json={"email": f"u{i}@example.com", "ip": f"192.0.2.{i}"}, headers=headers).status_code
             for i in range(3)]
    assert codes == [202, 202, 429]
    body = client.post(f"/api/v1/lists/{list_id}/subscriptions", json={"email": "z@example.com"},
                       headers=headers)
    assert body.json["error"]["code"] == "rate_limited" and "account" in body.json["error"]["message"]


def test_rate_limited_signup_changes_nothing(app, client, account, create_list, subscribe):
    """A refused signup records no event, queues no mail and counts on no other limit."""
    lst = create_list()
    for _ in range(3):
        subscribe(lst["id"])
    with app.app_context():
        before = {(c.key, c.hits) for c in db.session.scalars(select(FloodCounter))}
    assert subscribe(lst["id"]).status_code == 429
    sub_id = client.get(f"/api/v1/lists/{lst['id']}/subscriptions", headers=account.headers).json["items"][0]["id"]
    events = client.get(f"/api/v1/subscriptions/{sub_id}", headers=account.headers).json["events"]
    assert [e["type"] for e in events].count("subscribe_requested") == 3
    assert len(_outbox(app)) == 3
    with app.app_context():
        assert {(c.key, c.hits) for c in db.session.scalars(select(FloodCounter))} == before


def test_counters_keep_no_address_or_ip(app, client, create_list, subscribe):
    """The counter keys are hashes and ids: no address or IP in clear."""
    subscribe(create_list()["id"], email="Secret.Person@example.com", ip="203.0.113.99")
    with app.app_context():
        keys = " ".join(c.key for c in db.session.scalars(select(FloodCounter)))
    assert keys and "example.com" not in keys.lower() and "203.0.113" not in keys


def test_platform_cap_holds_the_mail_and_answers_as_success(make_app, app_config, maildir_for):
    """Past the platform-wide cap per address the signup answers 202 like any other, the
    account sees its mail as queued, nothing is sent, and the admin lists the held mail."""
    from flexmail.services.marketer import accounts, lists

    app = make_app({**app_config, "CONFIRM_PLATFORM_PER_ADDRESS_PER_DAY": 2})
    client = app.test_client()
    keys = []
    with app.app_context():
        for name in ("A", "B", "C"):
            account_id, key = accounts.create_account(name, scopes=["marketer", "compliance"])
            list_id = lists.create_list(account_id, name="L", sender_name="S", sender_email="s@example.com",
                                        consent_text="C").id
            keys.append((account_id, list_id, {"Authorization": f"Bearer {key}"}))
    answers = [client.post(f"/api/v1/lists/{list_id}/subscriptions", json={"email": "target@example.com"},
                           headers=headers) for _, list_id, headers in keys]
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert [a.json["confirmation_queued"] for a in answers] == [True, True, True]
    assert answers[2].json["subscription"]["status"] == "pending"
    (held,) = _outbox(app, status="held")
    assert held.account_id == keys[2][0]
    # The account cannot tell: its proof and access report show the mail as queued.
    _, _, headers = keys[2]
    proof = client.get("/api/v1/proof", query_string={"email": "target@example.com"}, headers=headers).json
    assert proof["subscriptions"][0]["confirmation_mails"][0]["status"] == "pending"
    people = client.get("/api/v1/people", query_string={"email": "target@example.com"}, headers=headers)
    assert "held" not in people.get_data(as_text=True)
    # The held mail is never sent, not even by a sweep.
    from flexmail.services.delivery import outbox

    with app.app_context():
        outbox.sweep(grace_seconds=0)
        assert outbox.send_outbox(held.id) == "not-claimed"
    # A worker's batch may send the other accounts' due mails meanwhile, never the held one.
    assert held.message_id not in {m["Message-ID"] for m in maildir_for(app)}
    (still,) = _outbox(app, status="held")
    assert still.id == held.id
    # The platform admin sees it (CLI), by ids and a hash prefix only.
    result = app.test_cli_runner().invoke(args=["outbox", "held"])
    assert result.exit_code == 0, result.output
    (line,) = result.output.strip().splitlines()
    row = json.loads(line)
    assert row["outbox_id"] == held.id and row["account_id"] == keys[2][0] and len(row["address"]) == 12
    assert "target" not in result.output


def _api_app(make_app, app_config, **overrides):
    from flexmail.services.marketer import accounts, lists

    app = make_app({**app_config, **overrides})
    with app.app_context():
        account_id, key = accounts.create_account("A", scopes=["marketer"])
        list_id = lists.create_list(account_id, name="L", sender_name="S", sender_email="s@example.com",
                                    consent_text="C").id
    return app, list_id, {"Authorization": f"Bearer {key}"}


def test_fifty_parallel_signups_of_one_address_pass_exactly_three(make_app, app_config):
    """50 signups of one address in one account, on real threads over HTTP at once: exactly
    three 202s and three mails, the rest 429."""
    app, list_id, headers = _api_app(make_app, app_config)
    with serve(app) as base:
        statuses = in_parallel(50, lambda i: http(
            "POST", f"{base}/api/v1/lists/{list_id}/subscriptions", headers=headers,
            json_body={"email": "one@example.com", "ip": f"10.0.{i // 200}.{i % 200 + 1}"})[0], threads=25)
    assert sorted(statuses) == [202] * 3 + [429] * 47
    assert len(_outbox(app, status="pending")) == 3


@pytest.mark.parametrize("limit,signups", [(40, 60)])
def test_per_account_limit_is_exact_under_concurrency(make_app, app_config, limit, signups):
    """With CONFIRM_PER_ACCOUNT_PER_HOUR = N, parallel signups of different addresses pass
    exactly N, never N + a few."""
    app, list_id, headers = _api_app(make_app, app_config, CONFIRM_PER_ACCOUNT_PER_HOUR=limit,
                                     CONFIRM_PER_IP_PER_HOUR=10_000)
    with serve(app) as base:
        statuses = in_parallel(signups, lambda i: http(
            "POST", f"{base}/api/v1/lists/{list_id}/subscriptions", headers=headers,
            json_body={"email": f"p{i}@example.com", "ip": "192.0.2.1"})[0], threads=20)
    assert statuses.count(202) == limit and statuses.count(429) == signups - limit
    assert len(_outbox(app)) == limit


def test_flood_check_reads_no_outbox_rows(app, client, account, create_list, subscribe):
    """The flood check is one upsert of counter rows: it never scans the outbox, however many
    confirmation mails the account already has."""
    from tests.perf.statements import count_statements

    lst = create_list()
    subscribe(lst["id"], email="warm@example.com")
    with count_statements(app) as seen:
        assert subscribe(lst["id"], email="fresh@example.com").status_code == 202
    assert not any("FROM outbox" in s for s in seen)
    assert sum("flood_counters" in s for s in seen) == 1


def _hash_on_shard(app, account_id: int, shard: int) -> str:
    """An address hash whose account-counter shard is ``shard``."""
    from flexmail.services.consent import flood

    with app.app_context():
        count = len(flood.account_shards(account_id))
    return next(h for h in (f"{i:08x}" + "0" * 56 for i in range(1000)) if int(h[:8], 16) % count == shard)


@pytest.mark.skipif(BACKEND != "postgres", reason="row locks: PostgreSQL")
def test_signups_of_two_addresses_of_one_account_do_not_wait_for_each_other(app):
    """The account's hourly counter is no lock shared by two people: while one signup's
    transaction is open (its counters locked until it commits), another address's signup of
    the same account counts at once (it would otherwise wait and hit the lock timeout)."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from flexmail.services.consent import flood

    first, second = _hash_on_shard(app, 7, 0), _hash_on_shard(app, 7, 1)
    with app.app_context(), Session(db.engine) as one, Session(db.engine) as two:
        assert flood.count_confirmation(one, account_id=7, address_hash=first, ip_hash=None) is False
        two.execute(text("SET LOCAL lock_timeout = '200ms'"))
        assert flood.count_confirmation(two, account_id=7, address_hash=second, ip_hash=None) is False
        two.commit()
        one.commit()
        hits = dict(db.session.execute(select(FloodCounter.key, FloodCounter.hits)
                                       .where(FloodCounter.key.like("ac:7:%"))).all())
    assert hits == {"ac:7:0": 1, "ac:7:1": 1}


def test_a_full_shard_borrows_from_the_others_up_to_the_exact_cap(make_app, app_config):
    """Addresses that all fall on one shard still get the account's whole hourly cap, and
    not one more (the other shards lend their room)."""
    from flexmail.services.consent import flood

    app = make_app({**app_config, "CONFIRM_PER_ACCOUNT_PER_HOUR": 5})
    hashes = [_hash_on_shard(app, 3, 0)[:8] + f"{i:056x}" for i in range(7)]
    outcomes = []
    with app.app_context():
        for address_hash in hashes:
            try:
                flood.count_confirmation(db.session, account_id=3, address_hash=address_hash, ip_hash=None)
                db.session.commit()
                outcomes.append("counted")
            except flood.RateLimited:
                db.session.rollback()
                outcomes.append("refused")
        total = db.session.scalar(select(db.func.sum(FloodCounter.hits)).where(FloodCounter.key.like("ac:3:%")))
    assert outcomes == ["counted"] * 5 + ["refused"] * 2
    assert total == 5
