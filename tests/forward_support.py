"""Helpers for the forward-to-a-friend tests: a confirmed subscriber, a campaign, the form."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from tests.helpers import link_from, token_of

#: Friends with distinctive local parts, so a search of any store cannot hit by chance.
FRIENDS = ("Zq.Friend.Alpha@Example.NET", "zq.friend.bravo@example.org", "ZQ.FRIEND.CHARLIE@example.com")
FORWARDER = "Zq.Forwarder.Delta@Example.com"


@dataclass
class Forwarding:
    """A list, a confirmed subscriber on it, a campaign of it and the subscriber's forward path."""

    list_id: int
    subscription_id: int
    campaign_id: int
    forward_url: str

    @property
    def path(self) -> str:
        return "/forward/" + token_of(self.forward_url)


def confirm_signup(client, subscribe, worker, maildir, list_id, email) -> int:
    """Sign ``email`` up through the API and click the confirmation link; the subscription id."""
    response = subscribe(list_id, email=email)
    assert response.status_code == 202, response.json
    worker.drain()
    mail = mails_to(maildir(), email)[-1]  # not simply the newest: other mails may be on their way
    confirmed = client.post("/confirm/" + token_of(link_from(mail, "confirm")), data={"method": "button"})
    assert confirmed.status_code == 200
    return response.json["subscription"]["id"]


def create_campaign(client, account, list_id, **overrides) -> dict:
    body = {"list_id": list_id, "subject": "Our autumn news", "web_url": "https://acme.example/news/autumn"}
    body.update(overrides)
    response = client.post("/api/v1/campaigns", json=body, headers=account.headers)
    assert response.status_code == 201, response.json
    return response.json


def forward_url(client, account, subscription_id, campaign_id) -> str:
    response = client.get(f"/api/v1/subscriptions/{subscription_id}", headers=account.headers,
                          query_string={"campaign_id": campaign_id})
    assert response.status_code == 200, response.json
    return response.json["forward_url"]


def own_client_ip(client) -> str:
    """Give the test client an IP of its own (RFC 2544 benchmark range).

    The app's Limiter keeps the key prefix of the first app it was bound to, so on Redis
    per-IP counts of one test would otherwise carry over into the next one.
    """
    ip = f"198.{random.randint(18, 19)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    client.environ_base["REMOTE_ADDR"] = ip
    return ip


def setup_forwarding(client, account, create_list, subscribe, worker, maildir, *, email=FORWARDER,
                     list_overrides=None, **campaign) -> Forwarding:
    own_client_ip(client)
    lst = create_list(**(list_overrides or {}))
    sub_id = confirm_signup(client, subscribe, worker, maildir, lst["id"], email)
    camp = create_campaign(client, account, lst["id"], **campaign)
    return Forwarding(lst["id"], sub_id, camp["id"], forward_url(client, account, sub_id, camp["id"]))


def token_ids(url: str) -> list:
    """The ids in a forward link's token payload (itsdangerous signs, it does not hide)."""
    import base64
    import json

    payload = token_of(url).split(".")[0]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def csrf_token(html: bytes | str) -> str:
    text = html.decode() if isinstance(html, bytes) else html
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', text).group(1)


def post_forward(client, path, friends, *, name="Ann", note=None, website="", environ=None, **extra):
    """Fetch the form (for its CSRF token) and post it like a browser would."""
    page = client.get(path)
    assert page.status_code == 200, page.data
    data = {"csrf_token": csrf_token(page.data), "friend": list(friends), "sender_name": name or "",
            "note": note or "", "website": website} | extra
    return client.post(path, data=data, environ_base={**client.environ_base, **(environ or {})})


def stats(client, account, campaign_id) -> dict:
    response = client.get(f"/api/v1/campaigns/{campaign_id}/stats", headers=account.headers)
    assert response.status_code == 200, response.json
    return response.json


def campaign_row(app, campaign_id):
    """The campaign's counters as stored (``forwards_failed`` is not in the API)."""
    from flexmail.extensions import db
    from flexmail.models import Campaign

    with app.app_context():
        row = db.session.get(Campaign, campaign_id)
        return {"forwards": row.forwards, "forwarded_recipients": row.forwarded_recipients,
                "forwards_failed": row.forwards_failed}


def suppress(app, account_id, email, *, reason="manual"):
    """Add a suppression entry for ``email`` (``account_id=None``: global)."""
    from flexmail.extensions import db
    from flexmail.services.platform.context import hash_address, parse_address
    from flexmail.services.suppression.suppressions import add_suppression

    with app.app_context():
        add_suppression(db.session, account_id=account_id, address_hash=hash_address(parse_address(email)),
                        reason=reason, source="test")
        db.session.commit()


def mails_to(messages, email) -> list:
    return [m for m in messages if m["To"].addresses[0].addr_spec.lower() == email.lower()]


def subscription_count(app) -> int:
    from sqlalchemy import func, select

    from flexmail.extensions import db
    from flexmail.models import Subscription

    with app.app_context():
        return db.session.scalar(select(func.count(Subscription.id)))
