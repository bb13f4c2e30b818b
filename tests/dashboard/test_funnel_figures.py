"""The dashboard's figures equal what the database holds: a list gets a mix of events through
the real paths (API signups, confirmation pages fetched early by a "scanner" and clicked,
unsubscribes by one-click, page and API with reasons, suppressions of several classes,
forwards of two campaigns), and every figure is recomputed here from the rows themselves."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter

import pytest
from sqlalchemy import select

from flexmail import clock
from tests.dashboard_support import sign_in
from tests.forward_support import create_campaign, forward_url, mails_to, own_client_ip, post_forward
from tests.helpers import link_from, token_of
from tests.unsubscribe_support import unsubscribe_path

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(days=7, hours=3)
PEOPLE = ("ann", "bob", "cyd", "dee", "eve", "fay")
#: Seconds from the confirmation mail to the click, per person (``fay`` never confirms).
CLICK_AFTER = {"ann": 120, "bob": 600, "cyd": 3600, "dee": 7200, "eve": 86400}
#: Early page fetches (before the 300 s click gate: scanner hits) and one late one, per person.
FETCHES = {"ann": [60], "bob": [600], "dee": [30, 45]}
#: The suppression class the test expects per reason (the dashboard's vocabulary).
CLASSES = {"unsubscribed": "recipient", "manual": "marketer", "complaint": "complaint", "hard_bounce": "bounce"}


def at(delta: dt.timedelta | float) -> None:
    clock.freeze(T0 + (delta if isinstance(delta, dt.timedelta) else dt.timedelta(seconds=delta)))


def email(name: str) -> str:
    return f"{name}.walker@example.com"


@pytest.fixture
def seeded(app, client, account, create_account, create_list, subscribe, worker, maildir):
    """The mix of events; returns the ids the test needs."""
    own_client_ip(client)
    lst, other_list = create_list(name="Trail News"), create_list(name="Other News")
    stranger = create_account("Stranger Co", scopes=["marketer"])
    stranger_list = create_list(acct=stranger, name="Stranger News")

    clock.freeze(T0 - dt.timedelta(days=60))
    assert subscribe(lst["id"], email=email("old")).status_code == 202  # in the 90-day range only
    at(0)
    subs = {}
    for name in PEOPLE:
        response = subscribe(lst["id"], email=email(name))
        assert response.status_code == 202, response.json
        subs[name] = response.json["subscription"]["id"]
    assert subscribe(other_list["id"], email=email("gus")).status_code == 202  # another list
    assert subscribe(stranger_list["id"], email=email("hal"), acct=stranger).status_code == 202  # another account
    worker.drain()
    mails = maildir()
    links = {name: "/confirm/" + token_of(link_from(mails_to(mails, email(name))[-1], "confirm")) for name in PEOPLE}
    for name, seconds in sorted(CLICK_AFTER.items(), key=lambda item: item[1]):
        for fetch in FETCHES.get(name, []):
            at(fetch)
            assert client.get(links[name]).status_code == 200
        at(seconds)
        assert client.post(links[name], data={"method": "button"}).status_code == 200

    campaigns = [create_campaign(client, account, lst["id"], subject=s)["id"] for s in ("Autumn boots", "Winter tents")]
    at(dt.timedelta(days=2))
    shares = ((campaigns[0], ["f1@example.net", "f2@example.net"]), (campaigns[1], ["f3@example.net"]))
    for campaign_id, friends in shares:
        path = "/forward/" + token_of(forward_url(client, account, subs["eve"], campaign_id))
        assert post_forward(client, path, friends).status_code == 200
    at(dt.timedelta(days=3))
    path = "/forward/" + token_of(forward_url(client, account, subs["ann"], campaigns[0]))
    assert post_forward(client, path, ["f4@example.net"]).status_code == 200
    worker.drain()

    at(dt.timedelta(days=5))
    assert client.post(unsubscribe_path(client, account, subs["ann"]),
                       data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert client.post(unsubscribe_path(client, account, subs["bob"]),
                       data={"via": "page", "reason": "too_many"}).status_code == 200
    assert client.post(unsubscribe_path(client, account, subs["cyd"]),
                       data={"via": "page", "reason": "not_relevant", "all_lists": "1"}).status_code == 200
    assert client.delete(f"/api/v1/subscriptions/{subs['dee']}", headers=account.headers).status_code in (200, 204)

    at(dt.timedelta(days=6))
    # Three come back: new requests on their subscriptions, after their confirmations (the median
    # must measure each confirmation from the request before it, not from the latest one).
    for name in ("ann", "bob", "dee"):
        assert subscribe(lst["id"], email=email(name)).status_code == 202
    for who, reason in (("fay", "manual"), ("eve", "complaint"), ("old", "hard_bounce")):
        response = client.post("/api/v1/suppressions", json={"email": email(who), "reason": reason},
                               headers=account.headers)
        assert response.status_code in (200, 201), response.json
    worker.drain()
    clock.freeze(NOW)
    return {"list_id": lst["id"], "campaigns": campaigns, "account_id": account.id}


def from_database(app, account_id: int, list_id: int, since: dt.datetime, until: dt.datetime) -> dict:
    """Every figure, recomputed from the rows in plain Python (an independent second opinion)."""
    from flexmail.extensions import db
    from flexmail.models import Campaign, CampaignForwardDay, ConsentEvent

    with app.app_context():
        events = db.session.scalars(select(ConsentEvent).where(ConsentEvent.list_id == list_id)
                                    .order_by(ConsentEvent.id)).all()
        inside = [e for e in events if since <= e.at < until]
        kinds = Counter(e.type.value for e in inside)
        durations = []
        for e in inside:
            if e.type.value == "confirmed":
                asked = [r.at for r in events if r.subscription_id == e.subscription_id
                         and r.type.value == "subscribe_requested" and r.id < e.id]
                durations.append((e.at - max(asked)).total_seconds())
        unsubscribed = [e for e in inside if e.type.value == "unsubscribed"]
        suppressed = [e for e in inside if e.type.value == "suppressed"]
        forward_rows = db.session.execute(
            select(Campaign.id, CampaignForwardDay.day, CampaignForwardDay.forwards, CampaignForwardDay.recipients)
            .join(CampaignForwardDay, CampaignForwardDay.campaign_id == Campaign.id)
            .where(Campaign.list_id == list_id, Campaign.account_id == account_id)).all()
        forwards, recipients = Counter(), Counter()
        for campaign_id, day, n, r in forward_rows:
            if since.date() <= day < until.date():
                forwards[campaign_id] += n
                recipients[campaign_id] += r
        return {
            "signups": kinds["subscribe_requested"], "confirmations": kinds["confirmed"],
            "link_fetches": kinds["link_fetched"],
            "scanner_hits": sum(1 for e in inside if e.type.value == "link_fetched"
                                and e.details.get("before_click_gate")),
            "median": statistics.median(durations) if durations else None,
            "by_method": Counter(e.source for e in unsubscribed),
            "by_reason": Counter(e.details.get("reason") or "none" for e in unsubscribed),
            "suppressions": Counter((CLASSES[e.details["reason"]], e.details["reason"]) for e in suppressed),
            "forwards": dict(forwards), "recipients": dict(recipients),
            "confirm_days": Counter(e.at.date() for e in inside if e.type.value == "confirmed"),
        }


@pytest.mark.parametrize("days", [30, 90])
def test_figures_equal_the_database(app, seeded, days):
    """Each figure of the funnel service equals the same figure recomputed from the rows."""
    from flexmail.services.marketer import funnel

    with app.app_context():
        f = funnel.list_funnel(seeded["account_id"], seeded["list_id"], days=days)
    db = from_database(app, seeded["account_id"], seeded["list_id"], f.range.since, f.range.until)
    assert f.signups == db["signups"] == (9 if days == 30 else 10)
    assert f.confirmations == db["confirmations"] == 5
    assert f.link_fetches == db["link_fetches"] == 4
    assert f.scanner_hits == db["scanner_hits"] == 3
    assert f.median_seconds_to_confirm == db["median"] == 3600
    assert f.confirmation_rate == pytest.approx(5 / f.signups)
    assert sum(f.funnel_series["signups"][-2:]) == 3  # the returns, in the second-to-last day's bucket
    assert f.unsubscribes_by_method == dict(db["by_method"]) == {"one-click": 1, "page": 2, "api": 1}
    assert f.unsubscribes_by_reason == dict(db["by_reason"]) == {"none": 2, "too_many": 1, "not_relevant": 1}
    assert f.suppressions_by_class_reason == dict(db["suppressions"])
    assert set(db["suppressions"]) == {("recipient", "unsubscribed"), ("marketer", "manual"),
                                       ("complaint", "complaint"), ("bounce", "hard_bounce")}
    assert {c.campaign_id: c.forwards for c in f.forwards} == db["forwards"] == dict(
        zip(seeded["campaigns"], (2, 1), strict=True))
    assert {c.campaign_id: c.recipients for c in f.forwards} == db["recipients"] == dict(
        zip(seeded["campaigns"], (3, 1), strict=True))
    # Over time: each day's confirmations sit in that day's bucket, and every series adds up.
    per_day = dict(zip(f.range.buckets, f.funnel_series["confirmations"], strict=True))
    assert {day: n for day, n in per_day.items() if n} == dict(db["confirm_days"])
    assert sum(f.funnel_series["signups"]) == f.signups
    assert sum(f.funnel_series["scanner_hits"]) == f.scanner_hits
    assert sum(map(sum, f.unsubscribe_series.values())) == sum(db["by_method"].values())
    assert sum(map(sum, f.suppression_series.values())) == sum(db["suppressions"].values())


def test_weekly_buckets_over_a_year(app, seeded):
    """The 365-day range counts in weeks and still adds up to the database's totals."""
    from flexmail.services.marketer import funnel

    with app.app_context():
        f = funnel.list_funnel(seeded["account_id"], seeded["list_id"], days=365)
    db = from_database(app, seeded["account_id"], seeded["list_id"], f.range.since, f.range.until)
    assert f.range.width == 7 and len(f.range.buckets) == 53
    assert sum(f.funnel_series["signups"]) == f.signups == db["signups"] == 10
    assert sum(f.funnel_series["confirmations"]) == db["confirmations"]


def test_the_page_shows_the_same_figures(client, account, seeded):
    """The list's page shows the figures, each chart with a title, a description and a data table."""
    sign_in(client, account.key)
    page = client.get(f"/dashboard/lists/{seeded['list_id']}", query_string={"days": 30})
    assert page.status_code == 200
    html = page.data.decode()
    for figure in ("<dd>9</dd>", "<dd>5</dd>", "<dd>3</dd>", "55.6%", "1 hour", "Autumn boots", "Winter tents"):
        assert figure in html, figure
    assert html.count('role="img"') == 4 and html.count("<title id=") == 4 and html.count("<desc id=") == 4
    assert html.count("<summary>Data table</summary>") == 4
    assert "<script" not in html and "http://" not in html.replace("http://flexmail.test", "")


@pytest.mark.parametrize("lang", ["nl", "fr", "de"])
def test_the_page_is_in_one_language(client, account, seeded, lang):
    """In nl, fr and de the list's page (labels, chart titles and descriptions, tables) shows no
    text of another language's catalog, and ``<html lang>`` says which language it is."""
    from tests.i18n_support import VisibleText, Vocabulary

    sign_in(client, account.key)
    page = client.get(f"/dashboard/lists/{seeded['list_id']}", query_string={"days": 30, "lang": lang})
    assert page.status_code == 200
    visible = VisibleText(page.get_data(as_text=True))
    assert visible.html_lang == lang
    assert Vocabulary.load().foreign_texts(lang, visible) == []
    assert "Signups" not in visible.text and "Data table" not in visible.text
