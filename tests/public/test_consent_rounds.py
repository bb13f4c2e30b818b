"""Confirm and "this was not me" links belong to their round, expire, and never undo a
marketer's suppression; parallel confirms record one event (issue 12, builds 6 and 9)."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from flexmail import clock
from flexmail.extensions import db
from flexmail.models import ConsentEvent, Suppression, SuppressionLift
from flexmail.services.platform.context import hash_address
from tests.consent_support import http, in_parallel, serve
from tests.helpers import link_from, token_of


def _mail_to(maildir, email):
    return [m for m in maildir() if m["To"].addresses[0].addr_spec.lower() == email.lower()][-1]


def _round(client, subscribe, worker, maildir, list_id, email="reader@example.com"):
    """A signup and its confirmation mail; returns (subscription id, confirm path, not-me path)."""
    response = subscribe(list_id, email=email)
    assert response.status_code == 202, response.json
    worker.drain()
    mail = _mail_to(maildir, email)
    return (response.json["subscription"]["id"], "/confirm/" + token_of(link_from(mail, "confirm")),
            "/not-me/" + token_of(link_from(mail, "not-me")))


def _detail(client, account, sub_id):
    return client.get(f"/api/v1/subscriptions/{sub_id}", headers=account.headers).json


def _one_click(client, account, sub_id):
    url = _detail(client, account, sub_id)["unsubscribe_url"]
    response = client.post(url.removeprefix("http://flexmail.test"), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200


def test_confirm_link_of_an_earlier_round_no_longer_confirms(client, account, create_list, subscribe, worker,
                                                             maildir):
    """After a round ends (unsubscribe) and a new signup starts another, the first mail's
    link answers 410 and confirms nothing; the new mail's link confirms."""
    lst = create_list()
    sub_id, old_confirm, _ = _round(client, subscribe, worker, maildir, lst["id"])
    _one_click(client, account, sub_id)
    clock.freeze(clock.now() + dt.timedelta(seconds=5))
    _, new_confirm, _ = _round(client, subscribe, worker, maildir, lst["id"])
    assert _detail(client, account, sub_id)["status"] == "pending"
    stale = client.post(old_confirm, data={"method": "button"})
    assert stale.status_code == 410
    assert _detail(client, account, sub_id)["status"] == "pending"
    assert client.post(new_confirm, data={"method": "button"}).status_code == 200
    assert _detail(client, account, sub_id)["status"] == "subscribed"


def test_not_me_link_of_an_earlier_round_never_cancels_a_later_one(app, client, account, create_list, subscribe,
                                                                     worker, maildir):
    """An old "this was not me" link (from a round that ended) answers 410, cancels nothing
    and stops nothing; the later round confirms normally."""
    lst = create_list()
    sub_id, _, old_not_me = _round(client, subscribe, worker, maildir, lst["id"])
    _one_click(client, account, sub_id)
    clock.freeze(clock.now() + dt.timedelta(seconds=5))
    _, new_confirm, _ = _round(client, subscribe, worker, maildir, lst["id"])
    assert client.get(old_not_me).status_code == 410
    assert client.post(old_not_me).status_code == 410
    assert _detail(client, account, sub_id)["status"] == "pending"
    with app.app_context():
        assert db.session.scalars(select(Suppression)).all() == []
    assert client.post(new_confirm, data={"method": "button"}).status_code == 200
    assert _detail(client, account, sub_id)["status"] == "subscribed"


def test_not_me_link_expires_like_the_confirm_link(app, client, account, create_list, subscribe, worker, maildir):
    """After FLEXMAIL_CONFIRM_MAX_AGE the "not me" link cancels nothing (410)."""
    lst = create_list()
    sub_id, _, not_me = _round(client, subscribe, worker, maildir, lst["id"])
    clock.freeze(clock.now() + dt.timedelta(seconds=app.config["CONFIRM_MAX_AGE"] + 60))
    assert client.post(not_me).status_code == 410
    assert _detail(client, account, sub_id)["status"] == "pending"
    with app.app_context():
        assert db.session.scalars(select(Suppression)).all() == []


def _form_signup(client, list_id, email):
    page = client.get(f"/subscribe/{list_id}")
    csrf = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()
    response = client.post(f"/subscribe/{list_id}", data={"csrf_token": csrf, "email": email, "website": ""},
                           environ_base={"REMOTE_ADDR": "192.0.2.80"})
    assert response.status_code == 200


def test_not_me_stop_is_lifted_by_the_persons_own_confirmed_form_signup(app, client, account, create_list,
                                                                         subscribe, worker, maildir):
    """"Not me" stops the account's API signups of the address; the person's own signup on
    the hosted form still gets a mail, and confirming it lifts the stop, recorded as an
    ``unsuppressed`` event and a lift by the recipient."""
    lst, other = create_list(), create_list(name="Offers")
    sub_id, _, not_me = _round(client, subscribe, worker, maildir, lst["id"])
    assert client.post(not_me).status_code == 200
    assert _detail(client, account, sub_id)["status"] == "cancelled"
    assert subscribe(other["id"]).status_code == 409
    clock.freeze(clock.now() + dt.timedelta(minutes=5))
    _form_signup(client, other["id"], "reader@example.com")
    worker.drain()
    mail = _mail_to(maildir, "reader@example.com")
    assert client.post("/confirm/" + token_of(link_from(mail, "confirm")), data={"method": "button"}).status_code == 200
    subs = client.get(f"/api/v1/lists/{other['id']}/subscriptions", headers=account.headers).json["items"]
    assert [s["status"] for s in subs] == ["subscribed"]
    types = [e["type"] for e in _detail(client, account, subs[0]["id"])["events"]]
    assert "unsuppressed" in types and types.index("unsuppressed") > types.index("confirmed")
    with app.app_context():
        assert db.session.scalars(select(Suppression)).all() == []
        (lift,) = db.session.scalars(select(SuppressionLift)).all()
        assert (lift.reason, lift.lifted_by) == ("not_me", "recipient")
    assert subscribe(lst["id"]).status_code == 202  # the account may ask again


def test_confirmation_never_lifts_a_manual_suppression_added_after_the_mail(app, client, account, create_list,
                                                                             subscribe, worker, maildir):
    """A marketer's manual suppression added after the mail left wins over the confirm click:
    the page says the person is not subscribed, the subscription stays pending, the entry stays."""
    lst = create_list()
    sub_id, confirm, _ = _round(client, subscribe, worker, maildir, lst["id"])
    added = client.post("/api/v1/suppressions", json={"email": "reader@example.com", "reason": "manual"},
                        headers=account.headers)
    assert added.status_code in (200, 201), added.json
    response = client.post(confirm, data={"method": "button"})
    assert response.status_code == 409
    assert b"You are not subscribed" in response.data
    assert _detail(client, account, sub_id)["status"] == "pending"
    assert "confirmed" not in [e["type"] for e in _detail(client, account, sub_id)["events"]]
    with app.app_context():
        (entry,) = db.session.scalars(select(Suppression)).all()
        assert entry.reason == "manual" and entry.address_hash == hash_address("reader@example.com")


def test_twenty_parallel_confirms_record_one_confirmed_event(app, client, account, create_list, subscribe, worker,
                                                             maildir):
    """20 POSTs of one confirm link at once over real HTTP: all answer 200, one ``confirmed``."""
    lst = create_list()
    sub_id, confirm, _ = _round(client, subscribe, worker, maildir, lst["id"])
    with serve(app) as base:
        statuses = in_parallel(20, lambda i: http("POST", base + confirm, form={"method": "button"})[0])
    assert statuses == [200] * 20
    with app.app_context():
        confirmed = db.session.scalars(select(ConsentEvent).where(
            ConsentEvent.subscription_id == sub_id, ConsentEvent.type == "confirmed")).all()
    assert len(confirmed) == 1
    assert _detail(client, account, sub_id)["status"] == "subscribed"
