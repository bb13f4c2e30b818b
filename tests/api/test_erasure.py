"""POST /api/v1/erasures (GDPR Art. 17): no trace of the address left in the account's tables,
proof kept without personal data, and the keyed hash still blocking everyone but the person."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import BACKEND
from tests.helpers import link_from, token_of
from tests.suppression_support import add, check, events, form_post, worker_for

ADDRESS = "Erase.Me@Example.com"
#: Everything personal the person left; each must be gone after erasure, in any letter case.
TRACES = [b"erase.me@example.com", b"198.51.100.77", b"198.51.100.78", b"198.51.100.79", b"EraseMe-Agent",
          b"EraseMe-Browser"]


def database_bytes(app) -> bytes:
    """Everything the database holds, as found on disk (SQLite file and WAL, never checkpointed
    by the test) or as dumped (PostgreSQL, pg_dump)."""
    url = make_url(app.config["DATABASE_URL"])
    if BACKEND == "postgres":
        dump = subprocess.run(
            ["pg_dump", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres",
             "--data-only", url.database], capture_output=True, check=True, timeout=120,
            env={**os.environ, "PGPASSWORD": url.password or ""})
        return dump.stdout
    data = b""
    for path in (url.database, url.database + "-wal"):
        if os.path.exists(path):
            with open(path, "rb") as handle:
                data += handle.read()
    return data


def _found(data: bytes, needle: bytes) -> bool:
    return re.search(re.escape(needle), data, re.IGNORECASE) is not None


def _erase(client, acct, email=ADDRESS, headers=None):
    response = client.post("/api/v1/erasures", json={"email": email}, headers={**acct.headers, **(headers or {})})
    assert response.status_code == 200, response.json
    return response.json


@pytest.fixture
def person(app, client, account, create_list, subscribe, worker, maildir):
    """A person with history on two lists: API signup and confirmation, a hosted-form signup,
    suppression entries with and without a lift note, and an import that named them."""
    news, offers = create_list(), create_list(name="Offers")
    signup = subscribe(news["id"], email=ADDRESS, ip="198.51.100.77", user_agent="EraseMe-Agent/1.0",
                       source=f"footer box, typed {ADDRESS}")
    assert signup.status_code == 202
    worker.drain()
    confirmed = client.post("/confirm/" + token_of(link_from(maildir()[-1], "confirm")), data={"method": "button"},
                            headers={"User-Agent": "EraseMe-Browser/2.0"},
                            environ_base={"REMOTE_ADDR": "198.51.100.78"})
    assert confirmed.status_code == 200
    form_post(client, offers["id"], ADDRESS.upper(), remote_addr="198.51.100.79", user_agent="EraseMe-Browser/2.0")
    entry = add(client, account, email=ADDRESS, reason="manual").json["entries"][0]
    client.delete(f"/api/v1/suppressions/{entry['id']}", query_string={"note": f"{ADDRESS} phoned us"},
                  headers=account.headers)
    add(client, account, email=ADDRESS.lower(), reason="hard_bounce")
    assert subscribe(news["id"], email="keep.me@example.com", ip="203.0.113.50",
                     user_agent="Keeper/1.0").status_code == 202
    job = client.post("/api/v1/suppressions/imports", data=f"email\n{ADDRESS}\nkeep.me@example.com\n".encode(),
                      headers={**account.headers, "Content-Type": "text/csv"}).json
    worker.drain()
    assert client.get(f"/api/v1/suppressions/imports/{job['id']}", headers=account.headers).json["status"] == "done"
    return {"news": news, "offers": offers, "sub_id": signup.json["subscription"]["id"]}


@pytest.mark.parametrize("headers", [None, {"Idempotency-Key": "erase-once-1"}], ids=["plain", "idempotent"])
def test_erasure_leaves_no_trace_of_the_address_in_the_database(app, client, account, person, headers):
    """Dump the database (SQLite file and WAL, or pg_dump) after erasure: the address in any letter
    case, the person's IPs and user agents are gone, another person's data is still there. With an
    Idempotency-Key the erasure commits together with its stored answer: the file is rewritten
    only after that commit (inside the open transaction SQLite cannot VACUUM)."""
    before = database_bytes(app)
    assert all(_found(before, trace) for trace in TRACES)  # the search finds what is there
    answer = _erase(client, account, email="  erase.me@EXAMPLE.COM ", headers=headers)
    assert answer["subscriptions"] == 2 and answer["unsubscribed"] == 2
    assert answer["addresses"] == 4  # two subscriptions, the hard_bounce entry and the imported one
    assert answer["ip_addresses"] >= 3 and answer["user_agents"] >= 3
    assert answer["detail_values"] >= 1 and answer["notes"] == 1 and answer["suppression_id"]
    after = database_bytes(app)
    for trace in TRACES:
        assert not _found(after, trace), trace
    assert _found(after, b"keep.me@example.com") and _found(after, b"Keeper/1.0")


def test_proof_stays_with_its_events_but_without_personal_data(client, account, person):
    """The events stay in order with their wording; IPs, user agents and personal values are null."""
    before = events(client, account, person["sub_id"])
    _erase(client, account)
    after = events(client, account, person["sub_id"])
    assert [e["type"] for e in after][:len(before)] == [e["type"] for e in before]
    assert [e["type"] for e in after][len(before):] == ["unsubscribed", "suppressed", "erased"]
    assert all(e["ip"] is None and e["user_agent"] is None for e in after)
    requested = after[0]
    assert requested["details"]["consent_text"].startswith("Send me the weekly")  # the marketer's wording
    assert requested["details"]["form_source"] is None  # it held the address
    lifted = next(e for e in after if e["type"] == "unsuppressed")
    assert lifted["details"]["note"] is None and lifted["details"]["reason"] == "manual"
    proof = client.get("/api/v1/proof", query_string={"email": ADDRESS}, headers=account.headers).json
    assert [s["email"] for s in proof["subscriptions"]] == [None, None]
    assert {s["status"] for s in proof["subscriptions"]} == {"unsubscribed"}


def test_the_hash_keeps_blocking_the_api_and_the_marketer(client, account, person, create_list, subscribe):
    """After erasure the API refuses the address (409), checks say erasure, and the entry cannot be lifted."""
    _erase(client, account)
    response = subscribe(create_list(name="Third")["id"], email="ERASE.ME@example.com")
    assert response.status_code == 409 and response.json["error"]["code"] == "suppressed"
    assert check(client, account, [ADDRESS])[0]["reason"] == "erasure"
    (entry,) = client.get("/api/v1/suppressions?reason=erasure", headers=account.headers).json["items"]
    assert entry["email"] is None
    shown = [e["email"] for e in client.get("/api/v1/suppressions", headers=account.headers).json["items"]]
    assert shown.count(None) == 3 and "keep.me@example.com" in shown  # erasure, hard_bounce, imported
    assert client.delete(f"/api/v1/suppressions/{entry['id']}", headers=account.headers).status_code == 409


def test_the_persons_own_double_opt_in_through_the_form_brings_them_back(app, client, account, create_list,
                                                                         subscribe, worker, maildir):
    """Erased, then the person signs up on the hosted form: the neutral page, a confirmation mail,
    and their click subscribes them and lifts the erasure entry (recorded as theirs)."""
    lst = create_list()
    subscribe(lst["id"], email=ADDRESS)
    worker.drain()
    _erase(client, account)
    assert subscribe(lst["id"], email=ADDRESS).status_code == 409
    neutral = form_post(client, lst["id"], "someone.new@example.com").data
    answer = form_post(client, lst["id"], ADDRESS)
    assert answer.status_code == 200 and answer.data == neutral
    worker.drain()
    mine = [m for m in maildir() if m["To"].addresses[0].addr_spec == "Erase.Me@example.com"]
    assert len(mine) == 2  # the first signup's mail, and the one the person asked for after erasure
    confirmed = client.post("/confirm/" + token_of(link_from(mine[-1], "confirm")), data={"method": "button"})
    assert confirmed.status_code == 200
    assert not check(client, account, [ADDRESS])[0]["suppressed"]
    (sub,) = [s for s in client.get(f"/api/v1/lists/{lst['id']}/subscriptions", headers=account.headers).json[
        "items"] if s["email"]  == "Erase.Me@example.com"]
    assert sub["status"] == "subscribed"
    lifted = events(client, account, sub["id"], "unsuppressed")[-1]
    assert lifted["details"]["reason"] == "erasure" and lifted["details"]["actor"] == "recipient"
    assert lifted["source"] == "page"


def test_erasure_skips_a_queued_confirmation(app, client, account, create_list, subscribe, maildir):
    """A confirmation still queued at erasure time is never sent."""
    subscribe(create_list()["id"], email=ADDRESS)
    assert _erase(client, account)["pending_mails"] == 1
    with worker_for(app):
        pass
    assert maildir() == []


def test_erasure_stays_in_its_account(client, account, create_account, create_list, subscribe):
    """Another marketer's subscriber with the same address is not touched (nor blocked)."""
    other = create_account("Globex", scopes=("marketer", "compliance"))
    theirs = subscribe(create_list(acct=other)["id"], email=ADDRESS, acct=other).json["subscription"]
    subscribe(create_list()["id"], email=ADDRESS)
    _erase(client, account)
    kept = client.get(f"/api/v1/subscriptions/{theirs['id']}", headers=other.headers).json
    assert kept["email"] == "Erase.Me@example.com" and kept["status"] == "pending"
    assert not check(client, other, [ADDRESS])[0]["suppressed"]


def test_erasing_an_unknown_address_still_protects_it(client, account):
    """Nobody by that address: nothing removed, but the hash entry is there; repeating is harmless."""
    first = _erase(client, account, email="never.seen@example.com")
    assert {k: v for k, v in first.items() if k != "suppression_id"} == dict.fromkeys(
        ["subscriptions", "unsubscribed", "addresses", "ip_addresses", "user_agents", "detail_values", "notes",
         "pending_mails"], 0)
    assert _erase(client, account, email="NEVER.SEEN@example.com")["suppression_id"] == first["suppression_id"]
    assert check(client, account, ["never.seen@example.com"])[0]["reason"] == "erasure"


def test_erasure_needs_the_compliance_scope_and_a_valid_address(client, account, create_account):
    """Marketer keys get 403; an invalid address is a 422 that does not echo it."""
    marketer = create_account("M", scopes=("marketer",))
    assert client.post("/api/v1/erasures", json={"email": ADDRESS}, headers=marketer.headers).status_code == 403
    response = client.post("/api/v1/erasures", json={"email": "<b>x</b>@"}, headers=account.headers)
    assert response.status_code == 422 and "<b>" not in response.get_data(as_text=True)


def test_no_log_line_names_the_person(client, account, caplog, log_text, person):
    """Signups, suppressions, lifts, imports, checks and the erasure log ids and hash prefixes,
    never the address, IPs or user agents."""
    _erase(client, account)
    check(client, account, [ADDRESS])
    records = caplog.get_records("setup") + caplog.get_records("call")
    text = "\n".join(r.getMessage() for r in records).lower()
    assert "suppression import" in text and "lifted by" in text  # the fixture's steps were logged
    assert "erasure in account" in text  # the erasure was logged at all
    for trace in TRACES:
        assert trace.decode().lower() not in text
