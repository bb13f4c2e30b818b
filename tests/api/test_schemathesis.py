"""Schemathesis against the live app over real HTTP: no input makes the API answer 5xx.

Runs on the backend of the session (SQLite or PostgreSQL), with a bounded number of
examples per operation and a fixed seed, so it takes about a minute per backend. The
checks here are "no 5xx" only; response conformance is checked where the OpenAPI
description is made exact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import _Account

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MAX_EXAMPLES = int(os.environ.get("FLEXMAIL_SCHEMATHESIS_EXAMPLES", "25"))


@pytest.fixture
def app_config(app_config):
    """The per-key API rate limit off: thousands of generated requests in a minute are the point."""
    return {**app_config, "API_RATE_LIMIT": ""}


def _config(tmp_path, client, fuzzer, create_list, subscribe) -> Path:
    """A schemathesis.toml that puts real ids into path parameters half of the time, so bodies and
    queries also reach existing lists, subscriptions, campaigns and suppressions (the other half
    are generated: huge, negative, not numbers)."""
    headers = fuzzer.headers
    lst = create_list(acct=fuzzer)
    sub_id = subscribe(lst["id"], acct=fuzzer).json["subscription"]["id"]
    campaign = client.post("/api/v1/campaigns", headers=headers, json={"list_id": lst["id"], "subject": "Hi",
                                                                   "html": "<p>Hi</p>"})
    assert campaign.status_code == 201, campaign.json
    added = client.post("/api/v1/suppressions", headers=headers,
                        json={"email": "gone@example.com", "reason": "manual"})
    assert added.status_code in (200, 201), added.json
    suppression_id = client.get("/api/v1/suppressions", headers=headers).json["items"][0]["id"]
    ids = {"list_id": lst["id"], "subscription_id": sub_id, "campaign_id": campaign.json["id"],
           "suppression_id": suppression_id}
    lines = []
    for name, value in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = [{value}]", ""]
    lines.append("[parameters]")
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}' for name in ids]
    path = tmp_path / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_no_input_makes_the_api_answer_5xx(app, client, live_server, create_list, subscribe, tmp_path):
    """Generated and boundary inputs (huge ids and cursors, odd text, wrong types) never get a 5xx."""
    from flexmail.services.marketer import accounts

    with app.app_context():
        fuzzer = _Account(*accounts.create_account("Fuzz", scopes=["marketer", "compliance", "admin"]))
    headers = fuzzer.headers
    config = _config(tmp_path, client, fuzzer, create_list, subscribe)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEXMAIL_")}
    result = subprocess.run(  # noqa: S603  (our own virtualenv's schemathesis)
        [str(SCHEMATHESIS), "--config-file", str(config), "run", f"{live_server.url}/api/openapi.json",
         "--checks", "not_a_server_error", "--max-examples", str(MAX_EXAMPLES), "--seed", "12",
         "--phases", "examples,coverage,fuzzing", "--workers", "1", "--request-timeout", "30",
         "--header", f"Authorization: {headers['Authorization']}", "--no-shrink",
         "--suppress-health-check", "all", "--warnings", "off",
         "--report", "json", "--report-json-path", str(tmp_path / "report.json")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["complete"] and report["failures"] == [] and report["errors"] == []
    operations = report["operations"]
    assert operations["tested"] == operations["total"] >= 20, operations  # every API operation was exercised
    assert report["test_cases"]["generated"] >= 20 * operations["total"]
    # The real ids were used (in whichever phases generated the cases: with the description's
    # examples schemathesis may reach the operation in its examples or coverage phase).
    reached = report["valid_rates"]["GET /api/v1/lists/{list_id}/subscriptions"]
    assert sum(phase.get("accepted", 0) for phase in reached.values() if isinstance(phase, dict)) > 0, reached
