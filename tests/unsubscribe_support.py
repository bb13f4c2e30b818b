"""Helpers for the unsubscribe tests: a confirmed subscriber, state snapshots, RFC 8058 corpus."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from tests.corpus import corpus
from tests.helpers import link_from, token_of

CORPUS = corpus("rfc8058")
#: The RFC 8058 section 8 requests as printed and corrected, and a well-formed multipart one.
CORPUS_REQUESTS = sorted(p.name for p in CORPUS.glob("*.http"))
if len(CORPUS_REQUESTS) < 5:
    raise FileNotFoundError(f"the RFC 8058 corpus in {CORPUS} lost its requests")


@dataclass(frozen=True)
class HttpRequest:
    """One request of the corpus: its headers (bytes, as written) and its body, byte-exact."""

    target: bytes
    headers: dict[bytes, bytes]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers[b"Content-Type"].decode()


def load_request(name: str) -> HttpRequest:
    raw = (CORPUS / name).read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, *lines = head.split(b"\r\n")
    method, target, _ = request_line.split(b" ")
    assert method == b"POST"
    headers = dict(line.split(b": ", 1) for line in lines)
    assert int(headers[b"Content-Length"]) == len(body), name
    return HttpRequest(target, headers, body)


def confirm_signup(client, subscribe, worker, maildir, list_id, email="Reader@Example.com") -> int:
    """Sign ``email`` up through the API and confirm it by the mail's link; returns the subscription id."""
    response = subscribe(list_id, email=email)
    assert response.status_code == 202, response.json
    worker.drain()
    mail = maildir()[-1]
    confirmed = client.post("/confirm/" + token_of(link_from(mail, "confirm")), data={"method": "button"})
    assert confirmed.status_code == 200
    return response.json["subscription"]["id"]


def detail(client, account, subscription_id, **query) -> dict:
    response = client.get(f"/api/v1/subscriptions/{subscription_id}", headers=account.headers, query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def unsubscribe_path(client, account, subscription_id, **query) -> str:
    """The path of the subscription's unsubscribe URL, as the API hands it out."""
    url = detail(client, account, subscription_id, **query)["unsubscribe_url"]
    return "/unsubscribe/" + token_of(url)


def events(client, account, subscription_id, kind: str | None = None) -> list[dict]:
    found = detail(client, account, subscription_id)["events"]
    return [e for e in found if kind is None or e["type"] == kind]


def snapshot(app) -> tuple:
    """Everything an unsubscribe could change: states, events, suppressions, outbox."""
    from flexmail.extensions import db
    from flexmail.models import ConsentEvent, OutboxMessage, Subscription, Suppression

    with app.app_context():
        state = (
            sorted((s.id, s.status.value, s.unsubscribed_at, s.email)
                   for s in db.session.scalars(select(Subscription))),
            db.session.scalar(select(func.count(ConsentEvent.id))),
            sorted((r.id, r.account_id, r.reason, r.source) for r in db.session.scalars(select(Suppression))),
            sorted((o.id, o.status) for o in db.session.scalars(select(OutboxMessage))),
        )
        db.session.remove()
    return state
