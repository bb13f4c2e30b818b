"""The README's API examples run as printed: the httpx flows against the live app, and the
webhook verification snippet against our own signer (``flexmail.domain.webhook_signatures``)."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path

import pytest

from flexmail.domain import webhook_signatures

README = Path(__file__).resolve().parents[2] / "README.md"


def _block(after_heading: str) -> str:
    text = README.read_text()
    start = text.index(after_heading)
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


@pytest.fixture
def readme_verify():
    """``verify_webhook`` exactly as the README prints it."""
    scope: dict = {}
    exec(compile(_block("### Verify a webhook signature"), "README.md", "exec"), scope)  # noqa: S102
    return scope["verify_webhook"]


def test_readme_flows_run_against_the_live_app(app, live_server, account, create_list):
    """Subscribe with an Idempotency-Key and its retry, read, unsubscribe, a typed 422, the
    RateLimit headers: the README block runs unchanged."""
    lst = create_list()
    scope = {"BASE": live_server.url, "KEY": account.key, "LIST_ID": lst["id"]}
    exec(compile(_block("## The API from your backend"), "README.md", "exec"), scope)  # noqa: S102
    assert scope["remaining"] >= 0 and scope["headers_for_mail"]["List-Unsubscribe-Post"]


def test_readme_snippet_verifies_our_signatures(readme_verify):
    """A delivery signed by the service verifies; another body, another secret, a stale
    timestamp or a non-v1 value does not; any of several rotated signatures is enough."""
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    body = b'{"type":"subscription.unsubscribed","data":{"subscription_id":7}}'
    now = int(time.time())
    signature = webhook_signatures.sign(secret, "msg_1", now, body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": signature}
    assert readme_verify(secret, headers, body)
    assert not readme_verify(secret, headers, body + b" ")
    assert not readme_verify(other, headers, body)
    assert not readme_verify(secret, {**headers, "webhook-id": "msg_2"}, body)
    stale = now - 3600
    old = {**headers, "webhook-timestamp": str(stale),
           "webhook-signature": webhook_signatures.sign(secret, "msg_1", stale, body)}
    assert not readme_verify(secret, old, body)
    rotated = {**headers, "webhook-signature": f"{webhook_signatures.sign(other, 'msg_1', now, body)} {signature}"}
    assert readme_verify(secret, rotated, body)
    assert not readme_verify(secret, {**headers, "webhook-signature": "v2," + signature[3:]}, body)
    webhook_signatures.verify(secret, rotated, body)
    with pytest.raises(webhook_signatures.InvalidSignature):
        webhook_signatures.verify(secret, headers, body + b"x")
