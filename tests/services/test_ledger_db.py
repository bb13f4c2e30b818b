"""The ledger in the database: chained on append, refused by the database when edited."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from flexmail.domain.ledger import GENESIS
from flexmail.extensions import db
from flexmail.models import ConsentEvent, LedgerHead
from tests.helpers import link_from, token_of


@pytest.fixture
def confirmed(client, account, create_list, subscribe, worker, maildir):
    lst = create_list()
    sub = subscribe(lst["id"]).json["subscription"]
    worker.drain()
    client.post("/confirm/" + token_of(link_from(maildir()[-1], "confirm")), data={"method": "button"})
    return sub


def test_events_form_a_gapless_chain_per_account(app, account, create_account, create_list, subscribe, confirmed):
    """Each account's events are numbered 1..n, each pointing at its predecessor's hash."""
    other = create_account("Globex")
    subscribe(create_list(acct=other)["id"], acct=other, email="x@example.com")
    with app.app_context():
        for account_id in (account.id, other.id):
            events = list(db.session.scalars(select(ConsentEvent).where(ConsentEvent.account_id == account_id)
                                             .order_by(ConsentEvent.seq)))
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert events[0].prev_hash == GENESIS
            assert all(b.prev_hash == a.entry_hash for a, b in zip(events, events[1:], strict=False))
            head = db.session.get(LedgerHead, account_id)
            assert (head.seq, head.entry_hash) == (events[-1].seq, events[-1].entry_hash)
            assert all(e.ip is None or e.commitments["ip"] for e in events)
            assert all(e.ip not in str(e.commitments) for e in events if e.ip)


@pytest.mark.parametrize("statement", [
    "UPDATE consent_events SET type = 'unsubscribed' WHERE seq = 1",
    "UPDATE consent_events SET at = at WHERE seq = 1 AND 1 = 0",  # harmless: matches nothing
    "UPDATE consent_events SET entry_hash = 'x' WHERE seq = 1",
    "UPDATE consent_events SET seq = 99 WHERE seq = 1",
    "UPDATE consent_events SET source = 'forged' WHERE seq = 1",
    "DELETE FROM consent_events WHERE seq = 1",
])
def test_database_refuses_edits_and_deletes(app, confirmed, statement):
    """UPDATE of content or chain columns and DELETE are refused by the database itself."""
    with app.app_context():
        if "1 = 0" in statement:
            db.session.execute(text(statement))
            db.session.rollback()
            return
        with pytest.raises(DBAPIError):
            db.session.execute(text(statement))
            db.session.commit()
        db.session.rollback()
        assert db.session.scalar(select(ConsentEvent.type).where(ConsentEvent.seq == 1)).value == \
            "subscribe_requested"


def test_database_allows_redaction(app, confirmed):
    """Personal fields may be erased or truncated, and content may be nulled (a tombstone)."""
    with app.app_context():
        db.session.execute(text("UPDATE consent_events SET ip = NULL, user_agent = NULL"))
        db.session.execute(text("UPDATE consent_events SET details = NULL, source = NULL WHERE seq = 2"))
        db.session.commit()
        assert db.session.scalar(select(ConsentEvent.source).where(ConsentEvent.seq == 2)) is None
