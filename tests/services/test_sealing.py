"""The Merkle ledger: writers never share a lock, one sealer per account, proofs that verify and fail."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from flexmail.domain import ledger, merkle
from flexmail.domain.consent import EventType
from flexmail.extensions import db
from flexmail.models import ConsentEvent, LedgerTreeHead, Subscription
from flexmail.models.consent_events import SQLITE_GUARDS
from flexmail.services.evidence import proof, sealing
from flexmail.services.platform.context import RequestMeta
from tests.conftest import BACKEND


@pytest.fixture
def two_people(app, account, create_list, subscribe):
    """Two subscriptions of one account (the campaign case: one account, many people)."""
    lst = create_list()
    ids = [subscribe(lst["id"], email=f"p{i}@example.com").json["subscription"]["id"] for i in (1, 2)]
    with app.app_context():
        sealing.seal(account.id)
    return ids


def _count(where) -> int:
    return db.session.scalar(select(db.func.count()).select_from(ConsentEvent).where(where))


@pytest.mark.skipif(BACKEND != "postgres", reason="row locks: PostgreSQL")
def test_two_subscribers_events_do_not_wait_on_each_other(app, account, two_people):
    """While one transaction holds its new event uncommitted, another person's event commits without waiting,
    and the sealer seals the committed one without waiting for the open one."""
    with app.app_context():
        first, second = Session(db.engine), Session(db.engine)
        try:
            sub1, sub2 = first.get(Subscription, two_people[0]), second.get(Subscription, two_people[1])
            proof.record_event(first, sub1, EventType.LINK_FETCHED, meta=RequestMeta(ip="192.0.2.1"),
                               source="test", applied=True)
            first.flush()  # the INSERT is done; the transaction stays open
            # Any lock the first transaction holds that the second needed would now raise, not wait.
            second.execute(text("SET LOCAL lock_timeout = '2s'"))
            proof.record_event(second, sub2, EventType.LINK_FETCHED, meta=RequestMeta(ip="192.0.2.2"),
                               source="test", applied=True)
            second.commit()
            head = sealing.seal(account.id)
            assert _count(ConsentEvent.seq.is_(None)) == 0  # the open event is invisible, not waited for
            first.commit()
            later = sealing.seal(account.id)
            assert later["tree_size"] == head["tree_size"] + 1
            assert _count(ConsentEvent.seq.is_(None)) == 0
        finally:
            first.close()
            second.close()


def test_append_is_one_insert_without_reads(app, account, two_people):
    """record_event issues exactly one statement, an INSERT into consent_events (no head row, no read)."""
    from sqlalchemy import event as sa_event

    statements = []
    with app.app_context():
        sub = db.session.get(Subscription, two_people[0])
        db.session.flush()

        def log(conn, cursor, statement, *args):
            statements.append(statement.split()[0].upper() + " " + statement.split()[2])

        sa_event.listen(db.engine, "before_cursor_execute", log)
        try:
            proof.record_event(db.session, sub, EventType.LINK_FETCHED, meta=RequestMeta(), source="t", applied=True)
            db.session.flush()
        finally:
            sa_event.remove(db.engine, "before_cursor_execute", log)
        db.session.rollback()
    assert statements == ["INSERT consent_events"], statements


def test_sealing_is_idempotent_and_single(app, account, two_people):
    """Sealing twice writes one head; parallel sealers give every event exactly one place and never
    sign two heads of one size."""
    with app.app_context():
        head = sealing.seal(account.id)
        again = sealing.seal(account.id)
        assert again == head
        heads = db.session.scalar(select(db.func.count()).select_from(LedgerTreeHead)
                                  .where(LedgerTreeHead.account_id == account.id))
        sub = db.session.get(Subscription, two_people[0])
        for _ in range(30):
            proof.record_event(db.session, sub, EventType.LINK_FETCHED, meta=RequestMeta(), source="t", applied=True)
        db.session.commit()
        db.session.remove()

    errors = []

    def run():
        with app.app_context():
            try:
                sealing.seal(account.id, batch=7)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with app.app_context():
        seqs = list(db.session.scalars(select(ConsentEvent.seq).where(ConsentEvent.account_id == account.id)
                                       .order_by(ConsentEvent.seq)))
        assert seqs == list(range(1, len(seqs) + 1))
        sizes = list(db.session.scalars(select(LedgerTreeHead.tree_size)
                                        .where(LedgerTreeHead.account_id == account.id)
                                        .order_by(LedgerTreeHead.tree_size)))
        assert sizes[-1] == len(seqs) and len(sizes) == len(set(sizes)) and len(sizes) > heads
        latest = sealing.seal(account.id)
        events = list(db.session.scalars(select(ConsentEvent).where(ConsentEvent.account_id == account.id)
                                         .order_by(ConsentEvent.seq)))
        assert latest["root_hash"] == merkle.root_of(ledger.leaf(e.content_hash) for e in events).hex()


def test_inclusion_proofs_in_the_person_proof_verify_and_fail_when_altered(app, client, account, two_people):
    """Every event of GET /proof carries an audit path that verifies against the signed head; an altered
    leaf, root, path or signature fails."""
    body = client.get("/api/v1/proof?email=p1@example.com", headers=account.headers).json
    head = body["chain"]["head"]
    assert body["chain"]["verified"] is True and body["chain"]["unsealed"] == []
    root = bytes.fromhex(head["root_hash"])
    events = body["subscriptions"][0]["events"]
    assert events
    with app.app_context():
        from flexmail.services.evidence import signing

        assert signing.verify(head, client.get("/proof/key").json["public_key"])
        assert not signing.verify({**head, "root_hash": "1" * 64})
    for e in events:
        path = [bytes.fromhex(p) for p in e["inclusion_proof"]]
        leaf = ledger.leaf(e["content_hash"])
        assert e["leaf_index"] == e["seq"] - 1
        assert merkle.verify_inclusion(e["leaf_index"], head["tree_size"], leaf, path, root)
        assert not merkle.verify_inclusion(e["leaf_index"], head["tree_size"], ledger.leaf("ab" * 32), path, root)
        assert not merkle.verify_inclusion(e["leaf_index"], head["tree_size"], leaf, path, bytes(32))
        if path:
            assert not merkle.verify_inclusion(e["leaf_index"], head["tree_size"], leaf, [bytes(32)] + path[1:], root)


def test_consecutive_heads_are_consistent(app, client, account, create_list, subscribe, two_people):
    """GET /proof/consistency proves an older head a prefix of a newer one; a changed old root fails;
    an unknown size is 404 and a reversed pair 422."""
    first = client.get("/api/v1/proof/head", headers=account.headers).json
    subscribe(create_list(name="More")["id"], email="p3@example.com")
    second = client.get("/api/v1/proof/head", headers=account.headers).json
    assert second["tree_size"] > first["tree_size"]
    response = client.get("/api/v1/proof/consistency", query_string={"first": first["tree_size"]},
                          headers=account.headers)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["first"] == first and body["second"] == second
    proof_path = [bytes.fromhex(p) for p in body["proof"]]
    assert merkle.verify_consistency(first["tree_size"], second["tree_size"], bytes.fromhex(first["root_hash"]),
                                     bytes.fromhex(second["root_hash"]), proof_path)
    assert not merkle.verify_consistency(first["tree_size"], second["tree_size"], bytes(32),
                                         bytes.fromhex(second["root_hash"]), proof_path)
    missing = client.get("/api/v1/proof/consistency", query_string={"first": first["tree_size"],
                                                                     "second": second["tree_size"] + 1000},
                         headers=account.headers)
    assert missing.status_code == 404
    reversed_ = client.get("/api/v1/proof/consistency", query_string={"first": second["tree_size"],
                                                                      "second": first["tree_size"]},
                           headers=account.headers)
    assert reversed_.status_code == 422


def _tamper(statement: str) -> None:
    """Edit consent_events by raw SQL with the guard triggers disabled (an attacker with DB access)."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ALTER TABLE consent_events DISABLE TRIGGER consent_events_guard"))
        db.session.execute(text(statement))
        db.session.execute(text("ALTER TABLE consent_events ENABLE TRIGGER consent_events_guard"))
    else:
        for name in ("consent_events_chain_fixed", "consent_events_redact_only", "consent_events_seq_once"):
            db.session.execute(text(f"DROP TRIGGER {name}"))
        db.session.execute(text(statement))
        for ddl in SQLITE_GUARDS:
            db.session.execute(text(ddl.statement))
    db.session.commit()


@pytest.mark.parametrize("statement", [
    "UPDATE consent_events SET source = 'forged' WHERE id = {id}",
    "UPDATE consent_events SET type = 'unsubscribed' WHERE id = {id}",
    "UPDATE consent_events SET ip = '192.0.2.99' WHERE id = {id}",
    "UPDATE consent_events SET content_hash = '{fake}' WHERE id = {id}",
    "UPDATE consent_events SET at = '2020-01-01 00:00:00' WHERE id = {id}",
])
def test_proof_says_not_verified_for_a_tampered_event(app, client, account, two_people, statement):
    """An event edited in the database (guards disabled) makes GET /proof answer verified: false."""
    with app.app_context():
        event_id = db.session.scalar(select(ConsentEvent.id).where(ConsentEvent.subscription_id == two_people[0])
                                     .order_by(ConsentEvent.id))
        _tamper(statement.format(id=event_id, fake="ab" * 32))
    body = client.get("/api/v1/proof?email=p1@example.com", headers=account.headers).json
    assert body["chain"]["verified"] is False, body["chain"]
    assert body["chain"]["problems"]


def test_an_event_moved_out_of_its_place_is_detected(app, client, runner, tmp_path, account, two_people):
    """An event whose place is erased (seq set to NULL in the database) is sealed again at the end, but the
    hole it leaves fails the export's verification at that row, and a neighbour's proof says not verified."""
    with app.app_context():
        event_id, seq = db.session.execute(select(ConsentEvent.id, ConsentEvent.seq)
                                           .where(ConsentEvent.subscription_id == two_people[0])
                                           .order_by(ConsentEvent.seq)).first()
        _tamper(f"UPDATE consent_events SET seq = NULL WHERE id = {event_id}")
    export = client.get("/api/v1/proof/export?format=csv", headers=account.headers).data
    path = tmp_path / "e.csv"
    path.write_bytes(export)
    result = runner.invoke(args=["proof", "verify", str(path)])
    assert result.exit_code != 0 and f"row {seq}" in result.output and "missing" in result.output, result.output
    body = client.get("/api/v1/proof?email=p2@example.com", headers=account.headers).json
    assert body["chain"]["verified"] is False


def test_intact_proof_is_verified(client, account, two_people):
    """The negative above fails for the tamper, not for every proof: untouched, the same proof verifies."""
    body = client.get("/api/v1/proof?email=p1@example.com", headers=account.headers).json
    assert body["chain"]["verified"] is True and body["chain"]["problems"] == []


def test_redaction_keeps_proofs_and_export_verifying(app, client, runner, tmp_path, account, two_people):
    """IP truncation, erasure and a retention tombstone change no leaf: proofs and exports still verify."""
    with app.app_context():
        ids = list(db.session.scalars(select(ConsentEvent.id).where(ConsentEvent.account_id == account.id)))
        db.session.execute(text(f"UPDATE consent_events SET ip = NULL, user_agent = NULL, redacted = '[\"ip\"]' "
                                f"WHERE id = {ids[0]}"))
        db.session.execute(text(f"UPDATE consent_events SET type = NULL, at = NULL, source = NULL, details = NULL, "
                                f"details_hash = NULL, salt = NULL, commitments = NULL, ip = NULL, "
                                f"user_agent = NULL, tombstoned_at = CURRENT_TIMESTAMP WHERE id = {ids[-1]}"))
        db.session.commit()
    assert client.post("/api/v1/erasures", json={"email": "p2@example.com"}, headers=account.headers
                       ).status_code == 200
    body = client.get("/api/v1/proof?email=p1@example.com", headers=account.headers).json
    assert body["chain"]["verified"] is True, body["chain"]
    export = client.get("/api/v1/proof/export?format=csv", headers=account.headers).data
    path = tmp_path / "e.csv"
    path.write_bytes(export)
    result = runner.invoke(args=["proof", "verify", str(path)])
    assert result.exit_code == 0, result.output


def test_worker_seals_on_its_clock(app, account, two_people, create_list, subscribe, worker):
    """The sealer's clock enqueues seal_ledger for each account with unsealed events; the worker seals them."""
    from flexmail.sealer import LedgerSealerMiddleware

    subscribe(create_list(name="Clock")["id"], email="p9@example.com")
    worker.drain()  # the confirmation mail goes out (and records its own event) first
    middleware = LedgerSealerMiddleware(app, interval=0)
    assert middleware.tick() == 1
    worker.drain()
    with app.app_context():
        assert sealing.accounts_to_seal() == []
    assert middleware.tick() == 0


def test_migrated_chain_becomes_the_first_leaves(app, account, two_people):
    """Events of the old hash chain (numbered, prev/entry hashes set, no head) are sealed as leaves 0..n-1,
    in seq order, before newer events, and the first head covers them."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("ALTER TABLE ledger_tree_heads DISABLE TRIGGER ledger_tree_heads_frozen"))
            db.session.execute(text("ALTER TABLE ledger_nodes DISABLE TRIGGER ledger_nodes_frozen"))
        else:
            for name in ("ledger_tree_heads_no_delete", "ledger_nodes_no_delete"):
                db.session.execute(text(f"DROP TRIGGER {name}"))
        # Back to the state right after the migration: no tree, only the old chain's numbers.
        db.session.execute(text("DELETE FROM ledger_tree_heads"))
        db.session.execute(text("DELETE FROM ledger_nodes"))
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("ALTER TABLE ledger_tree_heads ENABLE TRIGGER ledger_tree_heads_frozen"))
            db.session.execute(text("ALTER TABLE ledger_nodes ENABLE TRIGGER ledger_nodes_frozen"))
        db.session.commit()
        events = list(db.session.scalars(select(ConsentEvent).where(ConsentEvent.account_id == account.id)
                                         .order_by(ConsentEvent.seq)))
        assert sealing.accounts_with_legacy_events() == [account.id]
        sub = db.session.get(Subscription, two_people[0])
        proof.record_event(db.session, sub, EventType.LINK_FETCHED, meta=RequestMeta(), source="t", applied=True)
        db.session.commit()
        head = sealing.seal(account.id)
        after = list(db.session.scalars(select(ConsentEvent).where(ConsentEvent.account_id == account.id)
                                        .order_by(ConsentEvent.seq)))
        assert [e.id for e in after[:len(events)]] == [e.id for e in events]
        assert head["tree_size"] == len(events) + 1
        assert head["root_hash"] == merkle.root_of(ledger.leaf(e.content_hash) for e in after).hex()
