"""Webhooks: signed consent events written with the event, delivered in order by a real
dramatiq worker to a real HTTP receiver, retried on the row's schedule, logged, replayed."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from flexmail import clock
from flexmail.domain import webhook_signatures
from flexmail.domain.retry import covered_seconds
from tests.api.test_readme import _block
from tests.conftest import BACKEND
from tests.webhook_support import receiver

ALL = ["subscription.requested", "subscription.confirmed", "subscription.unsubscribed", "subscription.cancelled",
       "suppression.added", "suppression.lifted", "erasure.completed"]


@pytest.fixture
def app_config(app_config):
    """Receivers in these tests listen on 127.0.0.1: the operator allows private addresses."""
    return {**app_config, "WEBHOOKS_ALLOW_PRIVATE": True}


def register(client, account, url, events=None):
    response = client.post("/api/v1/webhooks", json={"url": url, "events": events or ALL}, headers=account.headers)
    assert response.status_code == 201, response.json
    return response.json


def sweep_and_drain(app, worker, *, advance: dt.timedelta | None = None):
    from flexmail.services.delivery import webhook_delivery

    if advance is not None:
        clock.freeze(clock.now() + advance)
    with app.app_context():
        webhook_delivery.sweep()
    worker.drain()


def test_deliveries_retry_then_arrive_in_order_once_each(app, client, account, create_list, subscribe, worker):
    """A receiver failing the first two attempts gets every event, signed, in sequence order,
    each exactly once after it answered 2xx; the log shows the attempts and a short answer."""
    clock.freeze(clock.now())
    lst = create_list()
    with receiver(fail_first=2) as rx:
        hook = register(client, account, rx.url)
        assert "secret" in hook and hook["secret"].startswith("whsec_")
        assert "secret" not in client.get(f"/api/v1/webhooks/{hook['id']}", headers=account.headers).json
        sub = subscribe(lst["id"], email="first@example.com").json["subscription"]
        assert client.delete(f"/api/v1/subscriptions/{sub['id']}", headers=account.headers).status_code == 200
        assert client.post("/api/v1/suppressions", json={"email": "gone@example.com", "reason": "manual"},
                           headers=account.headers).status_code == 201
        worker.drain()
        assert len(rx.requests) == 1 and rx.requests[0].status == 500  # later ones wait their turn
        for _ in range(6):
            sweep_and_drain(app, worker, advance=dt.timedelta(hours=1))
        assert [r.status for r in rx.requests] == [500, 500, 204, 204, 204]
        bodies = [r.json for r in rx.delivered]
        numbers = [b["sequence"] for b in bodies]
        assert numbers == sorted(numbers) and len(set(numbers)) == 3
        assert [b["type"] for b in bodies] == ["subscription.requested", "subscription.unsubscribed",
                                               "suppression.added"]
        assert bodies[0]["data"]["email"] == "first@example.com"
        assert bodies[2]["data"]["email"] == "gone@example.com" and bodies[2]["data"]["reason"] == "manual"
        assert len({r.headers["webhook-id"] for r in rx.requests}) == 3  # a retry keeps its id
        for r in rx.requests:
            webhook_signatures.verify(hook["secret"], r.headers, r.body, now=int(r.headers["webhook-timestamp"]))
        log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=account.headers).json["items"]
        assert [(d["sequence"], d["status"], d["attempts"]) for d in log] == [
            (numbers[0], "delivered", 3), (numbers[1], "delivered", 1), (numbers[2], "delivered", 1)]
        assert log[0]["response_status"] == 204 and log[0]["last_error"] is None
        sweep_and_drain(app, worker, advance=dt.timedelta(days=2))
        assert len(rx.requests) == 5  # nothing sent twice


def test_failures_back_off_exponentially_and_keep_a_short_answer(app, client, account, create_list, subscribe,
                                                                 worker):
    """A failed attempt is retried only when its time comes (30 s, then 60 s, doubling), the
    answer kept is at most 300 characters, and the schedule covers more than 24 hours."""
    clock.freeze(clock.now())
    lst = create_list()
    with receiver(fail_first=100) as rx:
        hook = register(client, account, rx.url, ["subscription.requested"])
        subscribe(lst["id"])
        worker.drain()
        sweep_and_drain(app, worker, advance=dt.timedelta(seconds=20))
        assert len(rx.requests) == 1  # not due yet (30 s +- 10 %)
        sweep_and_drain(app, worker, advance=dt.timedelta(seconds=15))
        assert len(rx.requests) == 2
        sweep_and_drain(app, worker, advance=dt.timedelta(seconds=50))
        assert len(rx.requests) == 2  # the second wait is about 60 s
        sweep_and_drain(app, worker, advance=dt.timedelta(seconds=20))
        assert len(rx.requests) == 3
        (entry,) = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=account.headers).json["items"]
        assert entry["status"] == "pending" and entry["attempts"] == 3 and entry["last_error"] == "HTTP 500"
        assert 0 < len(entry["response_body"]) <= 300
    assert covered_seconds(app.config["WEBHOOK_MAX_ATTEMPTS"], base=app.config["WEBHOOK_RETRY_BASE"],
                           cap=app.config["WEBHOOK_RETRY_CAP"]) > 24 * 3600


def test_readme_snippet_verifies_a_real_delivery(app, client, account, create_list, subscribe, worker):
    """A delivery as the receiver got it verifies with the README's snippet and the secret
    from registration, and not with another secret or a changed body."""
    scope: dict = {}
    exec(compile(_block("### Verify a webhook signature"), "README.md", "exec"), scope)  # noqa: S102
    verify = scope["verify_webhook"]
    lst = create_list()
    with receiver() as rx:
        hook = register(client, account, rx.url, ["subscription.requested"])
        subscribe(lst["id"])
        worker.drain()
    (got,) = rx.requests
    assert got.headers["content-type"] == "application/json"
    assert verify(hook["secret"], got.headers, got.body)
    assert not verify(hook["secret"], got.headers, got.body.replace(b"requested", b"confirmed"))
    other = register(client, account, "http://127.0.0.1:9/other", ["suppression.added"])["secret"]
    assert not verify(other, got.headers, got.body)


def test_redirects_are_not_followed(app, client, account, create_list, subscribe, worker):
    """A 302 from the receiver is a failed attempt: the Location is never requested."""
    lst = create_list()
    with receiver(status=302) as rx, receiver() as elsewhere:
        rx.headers["Location"] = elsewhere.url
        hook = register(client, account, rx.url, ["subscription.requested"])
        subscribe(lst["id"])
        worker.drain()
        assert len(rx.requests) == 1 and elsewhere.requests == []
    (entry,) = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=account.headers).json["items"]
    assert entry["status"] == "pending" and entry["response_status"] == 302


def test_event_and_delivery_commit_together(app, client, account, create_list, subscribe):
    """A refused signup (suppressed address) writes no delivery; a taken one writes exactly one
    per endpoint that asked for the event, none for the one that did not."""
    from flexmail.models import WebhookDelivery

    lst = create_list()
    a = register(client, account, "http://127.0.0.1:9/a", ["subscription.requested"])
    b = register(client, account, "http://127.0.0.1:9/b", ["subscription.unsubscribed"])
    client.post("/api/v1/suppressions", json={"email": "blocked@example.com", "reason": "manual"},
                headers=account.headers)
    assert subscribe(lst["id"], email="blocked@example.com").status_code == 409
    assert subscribe(lst["id"], email="ok@example.com").status_code == 202
    with app.app_context():
        from flexmail.extensions import db

        rows = db.session.scalars(select(WebhookDelivery)).all()
        assert [(r.endpoint_id, r.event_type) for r in rows] == [(a["id"], "subscription.requested")]
    assert client.get(f"/api/v1/webhooks/{a['id']}", headers=account.headers).json["last_sequence"] == rows[0].sequence
    assert b["last_sequence"] == 0


def test_no_address_after_erasure_even_in_replays(app, client, account, create_list, subscribe, worker):
    """Before erasure a delivery carries the address the account holds; after it, no stored
    delivery and no retry or replay carries it, and erasure.completed names ids only."""
    from flexmail.extensions import db
    from flexmail.models import WebhookDelivery

    clock.freeze(clock.now())
    start = clock.now()
    lst = create_list()
    with receiver() as rx:
        hook = register(client, account, rx.url)
        subscribe(lst["id"], email="Erase.Me@Example.com")
        worker.drain()
        assert rx.delivered[0].json["data"]["email"].lower() == "erase.me@example.com"
        assert client.post("/api/v1/erasures", json={"email": "erase.me@example.com"},
                           headers=account.headers).status_code == 200
        worker.drain()
        types = [r.json["type"] for r in rx.delivered]
        assert types[-1] == "erasure.completed" and "subscription.unsubscribed" in types
        assert rx.delivered[-1].json["data"]["email"] is None
        replay = client.post(f"/api/v1/webhooks/{hook['id']}/replay", json={"since": start.isoformat()},
                             headers=account.headers)
        assert replay.status_code == 202 and replay.json["replayed"] == len(types)
        worker.drain()
        after = rx.requests[len(types):]
        assert len(after) == len(types)
        assert all(b"erase.me" not in r.body.lower() for r in after)
    with app.app_context():
        assert all(r.email is None for r in db.session.scalars(select(WebhookDelivery)))


def test_replay_one_delivery_keeps_its_id_and_sequence(app, client, account, create_list, subscribe, worker):
    """Replaying one delivery sends it again with the same webhook-id and sequence; an unknown
    delivery is 404 and a body with neither or both of delivery_id/since is 422."""
    lst = create_list()
    with receiver() as rx:
        hook = register(client, account, rx.url)
        subscribe(lst["id"])
        subscribe(lst["id"], email="two@example.com")
        worker.drain()
        log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=account.headers).json["items"]
        url = f"/api/v1/webhooks/{hook['id']}/replay"
        answer = client.post(url, json={"delivery_id": log[0]["id"]}, headers=account.headers)
        assert answer.status_code == 202 and answer.json == {"replayed": 1, "delivery_ids": [log[0]["id"]]}
        worker.drain()
        assert len(rx.requests) == 3
        assert rx.requests[2].headers["webhook-id"] == rx.requests[0].headers["webhook-id"]
        assert rx.requests[2].json["sequence"] == rx.requests[0].json["sequence"] == log[0]["sequence"]
    assert client.post(url, json={"delivery_id": 999_999}, headers=account.headers).status_code == 404
    assert client.post(url, json={}, headers=account.headers).status_code == 422
    both = {"delivery_id": log[0]["id"], "since": "2020-01-01T00:00:00Z"}
    assert client.post(url, json=both, headers=account.headers).status_code == 422


def test_other_tenant_gets_404_and_missing_scope_403(app, client, account, create_account):
    """Another account cannot see, list deliveries of, replay or delete an endpoint (404); a key
    without the marketer scope may not use webhooks at all (403)."""
    hook = register(client, account, "http://127.0.0.1:9/x")
    other = create_account("Other", scopes=("marketer",))
    base = f"/api/v1/webhooks/{hook['id']}"
    assert client.get(base, headers=other.headers).status_code == 404
    assert client.get(f"{base}/deliveries", headers=other.headers).status_code == 404
    assert client.post(f"{base}/replay", json={"since": "2020-01-01T00:00:00Z"},
                       headers=other.headers).status_code == 404
    assert client.delete(base, headers=other.headers).status_code == 404
    assert client.get("/api/v1/webhooks", headers=other.headers).json == []
    compliance = create_account("Compliance", scopes=("compliance",))
    assert client.get("/api/v1/webhooks", headers=compliance.headers).status_code == 403
    answer = client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ALL},
                         headers=compliance.headers)
    assert answer.status_code == 403 and answer.json["error"]["code"] == "forbidden"
    assert client.get(base, headers=account.headers).status_code == 200


def test_delete_stops_deliveries(app, client, account, create_list, subscribe, worker):
    """After DELETE nothing more is sent to the endpoint: a delivery waiting for its retry is
    cancelled and later events make none."""
    clock.freeze(clock.now())
    lst = create_list()
    with receiver(fail_first=1) as rx:
        hook = register(client, account, rx.url)
        subscribe(lst["id"])
        worker.drain()
        assert len(rx.requests) == 1
        assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=account.headers).status_code == 200
        subscribe(lst["id"], email="later@example.com")
        sweep_and_drain(app, worker, advance=dt.timedelta(hours=2))
        assert len(rx.requests) == 1
    assert client.get(f"/api/v1/webhooks/{hook['id']}", headers=account.headers).status_code == 404
    assert client.get("/api/v1/webhooks", headers=account.headers).json == []


def test_bad_registration_is_422_and_changes_nothing(client, account):
    """Unknown events, no events, a non-http URL or user info in it: 422 with the field named."""
    for body, field in [({"url": "http://127.0.0.1:9/x", "events": ["nope"]}, "events"),
                        ({"url": "http://127.0.0.1:9/x", "events": []}, "events"),
                        ({"url": "ftp://127.0.0.1/x", "events": ALL}, "url"),
                        ({"url": "http://user:pw@127.0.0.1:9/x", "events": ALL}, "url")]:
        answer = client.post("/api/v1/webhooks", json=body, headers=account.headers)
        assert answer.status_code == 422, body
        assert field in answer.json["error"]["fields"]
    assert client.get("/api/v1/webhooks", headers=account.headers).json == []


def test_finished_deliveries_leave_the_log_after_its_retention(app, client, account, create_list, subscribe, worker):
    """A delivered delivery stays in the log for WEBHOOK_LOG_DAYS and is gone after; a pending
    one (still being retried) stays."""
    clock.freeze(clock.now())
    lst = create_list()
    with receiver() as rx:
        hook = register(client, account, rx.url, ["subscription.requested"])
        subscribe(lst["id"])
        worker.drain()
    url = f"/api/v1/webhooks/{hook['id']}/deliveries"
    sweep_and_drain(app, worker, advance=dt.timedelta(days=app.config["WEBHOOK_LOG_DAYS"] - 1))
    first = client.get(url, headers=account.headers).json["items"]
    assert len(first) == 1
    subscribe(lst["id"], email="later@example.com")  # receiver gone: this one stays pending
    worker.drain()
    sweep_and_drain(app, worker, advance=dt.timedelta(days=2))
    items = client.get(url, headers=account.headers).json["items"]
    assert [d["status"] for d in items] == ["pending"] and items[0]["sequence"] > first[0]["sequence"]


@pytest.mark.skipif(BACKEND != "postgres", reason="row locks: PostgreSQL")
def test_two_subscriptions_events_are_numbered_without_waiting_on_each_other(app, client, account, create_list,
                                                                             subscribe):
    """While one transaction holds an uncommitted event (and its delivery) of one subscription,
    another subscription's event, for the same endpoint, is numbered and committed without
    waiting: no counter row is shared by two subscribers."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from flexmail.domain.consent import EventType
    from flexmail.extensions import db
    from flexmail.models import Subscription, WebhookDelivery
    from flexmail.services.evidence import proof
    from flexmail.services.platform.context import RequestMeta

    lst = create_list()
    register(client, account, "http://127.0.0.1:9/hook", ["subscription.confirmed"])
    ids = [subscribe(lst["id"], email=f"p{i}@example.com").json["subscription"]["id"] for i in (1, 2)]
    with app.app_context():
        first, second = Session(db.engine), Session(db.engine)
        try:
            sub1, sub2 = first.get(Subscription, ids[0]), second.get(Subscription, ids[1])
            proof.record_event(first, sub1, EventType.CONFIRMED, meta=RequestMeta(ip="192.0.2.1"), source="test",
                               applied=True)
            first.flush()  # the event and its delivery are written; the transaction stays open
            second.execute(text("SET LOCAL lock_timeout = '2s'"))  # a wait would raise, not hang
            proof.record_event(second, sub2, EventType.CONFIRMED, meta=RequestMeta(ip="192.0.2.2"), source="test",
                               applied=True)
            second.commit()
            first.commit()
        finally:
            first.close()
            second.close()
        rows = db.session.execute(select(WebhookDelivery.sequence, WebhookDelivery.data)
                                  .where(WebhookDelivery.event_type == "subscription.confirmed")).all()
    assert sorted(data["subscription_id"] for _, data in rows) == sorted(ids)
    assert len({number for number, _ in rows}) == 2


def test_one_subscriptions_events_carry_increasing_numbers(app, client, account, create_list, subscribe):
    """The events of one subscription are numbered in the order they happened, also when other
    subscriptions' events come in between, and an event sent to two endpoints has the same
    number at both, so a receiver can order one subscription's events by it."""
    from flexmail.extensions import db
    from flexmail.models import WebhookDelivery

    lst = create_list()
    a = register(client, account, "http://127.0.0.1:9/a")
    b = register(client, account, "http://127.0.0.1:9/b", ["subscription.requested", "subscription.unsubscribed"])
    one = subscribe(lst["id"], email="one@example.com").json["subscription"]["id"]
    subscribe(lst["id"], email="other@example.com")
    assert client.delete(f"/api/v1/subscriptions/{one}", headers=account.headers).status_code == 200
    subscribe(lst["id"], email="third@example.com")
    assert subscribe(lst["id"], email="one@example.com").status_code == 202
    with app.app_context():
        rows = db.session.execute(select(WebhookDelivery.endpoint_id, WebhookDelivery.sequence,
                                         WebhookDelivery.event_type, WebhookDelivery.data)
                                  .order_by(WebhookDelivery.id)).all()
    mine = [(number, kind) for endpoint, number, kind, data in rows
            if endpoint == a["id"] and data.get("subscription_id") == one]
    assert [kind for _, kind in mine] == ["subscription.requested", "subscription.unsubscribed",
                                          "subscription.requested"]
    numbers = [number for number, _ in mine]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
    at_b = [number for endpoint, number, _, data in rows if endpoint == b["id"] and data.get("subscription_id") == one]
    assert at_b == numbers


def _deliveries(app, endpoint_id, event_type):
    from flexmail.extensions import db
    from flexmail.models import WebhookDelivery

    with app.app_context():
        return [(d.data, d.email) for d in db.session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id,
                                          WebhookDelivery.event_type == event_type).order_by(WebhookDelivery.id))]


def test_platform_wide_entries_reach_the_accounts_that_hold_the_address(app, client, account, create_account,
                                                                        create_list, subscribe):
    """A platform-wide entry (an operator's complaint, hard bounce or manual entry) and its lift
    send suppression.added / .lifted to each account holding a subscription of the address, with
    the address it holds, scope "global" and not the operator's reason; an account that does not
    hold the address hears nothing."""
    from tests.suppression_support import add

    admin = create_account("Operator", scopes=("admin",))
    stranger = create_account("Stranger", scopes=("marketer",))
    mine = register(client, account, "http://127.0.0.1:9/mine", ["suppression.added", "suppression.lifted"])
    theirs = client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/theirs", "events": ALL},
                         headers=stranger.headers).json
    lst = create_list()
    subscribe(lst["id"], email="Trap@Example.com")
    subscribe(create_list(name="Second")["id"], email="trap@example.com")
    entry = add(client, admin, email="trap@example.com", reason="complaint", scope="global").json["entries"][0]
    added = _deliveries(app, mine["id"], "suppression.added")
    assert added == [({"suppression_id": entry["id"], "kind": "address", "scope": "global", "reason": None,
                       "source": None, "domain": None}, "Trap@example.com")]
    assert client.delete(f"/api/v1/suppressions/{entry['id']}", headers=admin.headers).status_code == 200
    lifted = _deliveries(app, mine["id"], "suppression.lifted")
    assert [(data["suppression_id"], data["scope"], data["reason"]) for data, _ in lifted] == [
        (entry["id"], "global", None)]
    assert _deliveries(app, theirs["id"], "suppression.added") == []
    assert _deliveries(app, theirs["id"], "suppression.lifted") == []


def test_not_me_and_stop_all_send_suppression_added(app, client, account, create_list, subscribe, worker, maildir):
    """The account-wide entries a person makes ("this was not me" on a confirmation mail, "stop
    all mail from this sender" on the unsubscribe page) send suppression.added like any other."""
    from tests.helpers import link_from, token_of

    hook = register(client, account, "http://127.0.0.1:9/hook", ["suppression.added"])
    lst = create_list()
    sub = subscribe(lst["id"], email="someone@example.com").json["subscription"]
    worker.drain()
    (mail,) = maildir()
    assert client.post("/not-me/" + token_of(link_from(mail, "not-me"))).status_code == 200
    other = subscribe(create_list(name="Other")["id"], email="reader@example.com").json["subscription"]
    unsubscribe_url = client.get(f"/api/v1/subscriptions/{other['id']}", headers=account.headers
                                 ).json["unsubscribe_url"]
    path = "/unsubscribe/" + token_of(unsubscribe_url)
    assert client.post(path, data={"via": "page", "all_lists": "1"}).status_code == 200
    added = _deliveries(app, hook["id"], "suppression.added")
    assert [(data["reason"], data["scope"], data["source"], email) for data, email in added] == [
        ("not_me", "account", f"subscription:{sub['id']}", None),
        ("unsubscribed", "account", f"unsubscribe:{other['id']}", "reader@example.com")]
