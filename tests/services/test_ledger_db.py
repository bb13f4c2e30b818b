"""The ledger in the database: sealed into a tree, refused by the database when edited."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from flexmail.domain import ledger, merkle
from flexmail.extensions import db
from flexmail.models import ConsentEvent, LedgerTreeHead
from flexmail.services.evidence import sealing
from tests.helpers import link_from, token_of


@pytest.fixture
def confirmed(app, client, account, create_list, subscribe, worker, maildir):
    lst = create_list()
    sub = subscribe(lst["id"]).json["subscription"]
    worker.drain()
    client.post("/confirm/" + token_of(link_from(maildir()[-1], "confirm")), data={"method": "button"})
    with app.app_context():
        sealing.seal(account.id)
    return sub


def test_events_are_written_unplaced_then_sealed_into_a_gapless_tree(app, account, create_account, create_list,
                                                                     subscribe):
    """Appending gives no place; the sealer numbers each account's events 1..n and signs the root."""
    lst = create_list()
    subscribe(lst["id"])
    other = create_account("Globex")
    subscribe(create_list(acct=other)["id"], acct=other, email="x@example.com")
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(ConsentEvent)
                                 .where(ConsentEvent.seq.is_not(None))) == 0
        assert sorted(sealing.accounts_to_seal()) == sorted([account.id, other.id])
        for account_id in (account.id, other.id):
            head = sealing.seal(account_id)
            events = list(db.session.scalars(select(ConsentEvent).where(ConsentEvent.account_id == account_id)
                                             .order_by(ConsentEvent.seq)))
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert all(e.prev_hash is None and e.entry_hash is None for e in events)
            assert head["tree_size"] == len(events)
            assert head["root_hash"] == merkle.root_of(ledger.leaf(e.content_hash) for e in events).hex()
            assert all(e.ip is None or e.commitments["ip"] for e in events)
            assert all(e.ip not in str(e.commitments) for e in events if e.ip)
        assert sealing.accounts_to_seal() == []


@pytest.mark.parametrize("statement", [
    "UPDATE consent_events SET type = 'unsubscribed' WHERE seq = 1",
    "UPDATE consent_events SET at = at WHERE seq = 1 AND 1 = 0",  # harmless: matches nothing
    "UPDATE consent_events SET entry_hash = 'x' WHERE seq = 1",
    "UPDATE consent_events SET seq = 99 WHERE seq = 1",
    "UPDATE consent_events SET seq = NULL WHERE seq = 1",
    "UPDATE consent_events SET content_hash = 'x' WHERE seq = 1",
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


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_tree_heads SET root_hash = 'x'",
    "DELETE FROM ledger_tree_heads",
    "UPDATE ledger_nodes SET hash = 'x'",
    "DELETE FROM ledger_nodes",
])
def test_database_refuses_edits_of_tree_nodes_and_signed_heads(app, confirmed, statement):
    """Tree nodes and signed heads are written once: UPDATE and DELETE are refused by the database."""
    with app.app_context():
        before = db.session.scalar(select(db.func.count()).select_from(LedgerTreeHead))
        assert before >= 1
        with pytest.raises(DBAPIError):
            db.session.execute(text(statement))
            db.session.commit()
        db.session.rollback()
        assert db.session.scalar(select(db.func.count()).select_from(LedgerTreeHead)) == before
