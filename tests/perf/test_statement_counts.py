"""The three hot paths send a pinned number of SQL statements per request (issue 11.2).

Counted on the engine (``before_cursor_execute``) on both backends. A change that adds a
statement to one of these paths must come with a reason and a new pin here. Before this
work (November 2026) the same requests sent 14 (API subscribe), 11 (confirm POST) and
9 (one-click POST), counting the two statements of the ledger head lock each event took.
"""

from __future__ import annotations

from flexmail.extensions import db
from flexmail.models import Suppression
from flexmail.services.platform.context import hash_address
from tests.conftest import BACKEND
from tests.helpers import link_from, token_of
from tests.perf.statements import count_statements

#: list; suppression entries; subscription upsert; event; flood counters; outbox row.
SUBSCRIBE = 6
#: link (subscription + list + mail); suppression entries; guarded UPDATE; event.
CONFIRM = 4
#: UPDATE ... RETURNING (subscription + what the page shows); event.
ONE_CLICK = 2
#: A repeated one-click: the guarded UPDATE that matches nothing, and one SELECT for the page.
ONE_CLICK_REPEAT = 2

# PostgreSQL runs the common one-click and confirm in autocommit with one statement that
# makes the guarded UPDATE and inserts the event (``rows.update_with_event``): no BEGIN and
# COMMIT round trips either (psycopg sends those itself, so they are not counted here).
if BACKEND == "postgres":
    #: list; suppression entries; subscription upsert; flood counters; event and outbox row in
    #: one statement (``WITH event AS (INSERT ...) INSERT INTO outbox``).
    SUBSCRIBE = 5
    #: the link (subscription + list + mail + whether the account has webhooks); suppression
    #: entries; UPDATE-and-event.
    CONFIRM = 3
    #: A repeat is the link's read alone.
    ONE_CLICK_REPEAT = 1


def _signup(app, client, account, create_list, subscribe, worker, maildir, email):
    lst = create_list()
    subscribe(lst["id"], email="warm-up@example.com")  # the key is now cached, as in steady state
    with count_statements(app) as seen:
        response = subscribe(lst["id"], email=email)
    assert response.status_code == 202, response.json
    worker.drain()
    mail = [m for m in maildir() if m["To"].addresses[0].addr_spec == email][-1]
    return response.json["subscription"], mail, seen


def test_api_subscribe_statement_count(app, client, account, create_list, subscribe, worker, maildir):
    """A new signup through the API sends at most six statements, the API key lookup cached."""
    sub, _, seen = _signup(app, client, account, create_list, subscribe, worker, maildir, "new@example.com")
    assert len(seen) <= SUBSCRIBE, "\n".join(seen)
    assert not any("api_keys" in s for s in seen)
    assert sum(s.lstrip().upper().startswith("SELECT") for s in seen) == 2  # list + suppressions


def test_repeat_api_subscribe_statement_count(app, client, account, create_list, subscribe, worker, maildir):
    """A repeated signup of a pending address (a new mail of the same round) costs the same."""
    lst = create_list()
    subscribe(lst["id"], email="again@example.com")
    with count_statements(app) as seen:
        assert subscribe(lst["id"], email="again@example.com").status_code == 202
    assert len(seen) <= SUBSCRIBE, "\n".join(seen)


def test_confirm_post_statement_count(app, client, account, create_list, subscribe, worker, maildir):
    """Confirming by POST sends at most four statements and reads no row twice."""
    sub, mail, _ = _signup(app, client, account, create_list, subscribe, worker, maildir, "c@example.com")
    with count_statements(app) as seen:
        response = client.post("/confirm/" + token_of(link_from(mail, "confirm")), data={"method": "button"})
    assert response.status_code == 200 and b"you are subscribed" in response.data
    assert len(seen) <= CONFIRM, "\n".join(seen)
    assert sum("FROM subscriptions" in s and s.lstrip().startswith("SELECT") for s in seen) == 1


def test_one_click_statement_count(app, client, account, create_list, subscribe, worker, maildir):
    """A one-click POST is one UPDATE ... RETURNING and the event; its repeat adds no write."""
    sub, mail, _ = _signup(app, client, account, create_list, subscribe, worker, maildir, "u@example.com")
    client.post("/confirm/" + token_of(link_from(mail, "confirm")), data={"method": "button"})
    path = client.get(f"/api/v1/subscriptions/{sub['id']}", headers=account.headers).json["unsubscribe_url"]
    path = path.removeprefix(app.config["PUBLIC_URL"])
    with count_statements(app) as seen:
        response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert len(seen) <= ONE_CLICK, "\n".join(seen)
    with count_statements(app) as seen:
        assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert len(seen) <= ONE_CLICK_REPEAT, "\n".join(seen)
    assert client.get(f"/api/v1/subscriptions/{sub['id']}", headers=account.headers).json["status"] == "unsubscribed"


def test_confirm_with_an_override_still_lifts(app, client, account, create_list, subscribe, worker, maildir):
    """The lean confirm path still does the rare work when it is needed: a person's own
    ``unsubscribed`` entry made before a hosted-form-like undo is lifted (only then more statements)."""
    lst = create_list()
    with app.app_context():
        db.session.add(Suppression(account_id=account.id, address_hash=hash_address("l@example.com"),
                                   reason="unsubscribed", source="test"))
        db.session.commit()
    from flexmail.services.consent import subscriptions
    from flexmail.services.platform.context import RequestMeta

    with app.test_request_context():
        subscriptions.request_subscription(account.id, lst["id"], email="l@example.com",
                                           meta=RequestMeta.checked("192.0.2.9", "UA"), channel="undo")
    worker.drain()
    mail = maildir()[-1]
    with count_statements(app) as seen:
        response = client.post("/confirm/" + token_of(link_from(mail, "confirm")), data={"method": "button"})
    assert response.status_code == 200
    assert len(seen) > CONFIRM
    with app.app_context():
        assert db.session.query(Suppression).count() == 0
