"""Shared set-up for the API description tests: a live server with an admin key and data."""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass
class LiveApi:
    url: str
    key: str
    list_id: int
    suppressed: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"}


def seed(app, live_server) -> LiveApi:
    """An account with a marketer+compliance+admin key, one list, one pending subscription,
    one campaign and one suppressed address, on the live server."""
    from flexmail.services.marketer import accounts

    with app.app_context():
        _, key = accounts.create_account("Live", scopes=["marketer", "compliance", "admin"])
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=live_server.url, headers=headers) as http:
        list_id = http.post("/api/v1/lists", json={
            "name": "News", "sender_name": "Acme", "sender_email": "news@acme.example",
            "consent_text": "Send me the news."}).json()["id"]
        assert http.post(f"/api/v1/lists/{list_id}/subscriptions", json={
            "email": "reader@example.com", "ip": "203.0.113.7", "user_agent": "UA"}).status_code == 202
        assert http.post("/api/v1/campaigns", json={"list_id": list_id, "subject": "Hello",
                                                    "web_url": "https://acme.example/c/1"}).status_code == 201
        assert http.post("/api/v1/suppressions", json={"email": "gone@example.com",
                                                       "reason": "manual"}).status_code == 201
    return LiveApi(live_server.url, key, list_id, "gone@example.com")
