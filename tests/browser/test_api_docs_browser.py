"""/api/docs in a real Chromium: Swagger UI renders from the service's own assets, and not
one request the page makes leaves the service."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_api_docs_render_offline_from_our_own_assets(live_server, new_page):
    """Every request the page makes goes to the local server; the operations show with their
    operationIds; no script error and no CSP refusal."""
    page = new_page()
    requests, problems = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" or "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    response = page.goto(f"{live_server.url}/api/docs")
    assert response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "https:" not in csp
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Flexmail")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() >= 30
    page.locator(".opblock-summary", has_text="/api/v1/lists/{list_id}/subscriptions").filter(
        has_text="POST").first.click()
    body = page.locator(".opblock-body").first
    expect(body).to_contain_text("Idempotency-Key")
    expect(body).to_contain_text("\"code\": \"unauthorized\"")
    page.wait_for_load_state("networkidle")
    assert requests and all(url.startswith(live_server.url + "/") for url in requests), requests
    assert f"{live_server.url}/api/openapi.json" in requests
    assert problems == []


def test_docs_assets_are_a_closed_set(client):
    """Only the four files the page uses are served from the bundle (no directory walk)."""
    with client.get("/api/docs/assets/swagger-ui-bundle.js") as bundle:
        assert bundle.status_code == 200 and "javascript" in bundle.headers["Content-Type"]
    assert client.get("/api/docs/assets/index.html").status_code == 404
    assert client.get("/api/docs/assets/..%2F__init__.py").status_code == 404
