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

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MAX_EXAMPLES = int(os.environ.get("FLEXMAIL_SCHEMATHESIS_EXAMPLES", "25"))


def test_no_input_makes_the_api_answer_5xx(app, live_server, create_list, subscribe, tmp_path):
    """Generated and boundary inputs (huge ids and cursors, odd text, wrong types) never get a 5xx."""
    from flexmail.services import accounts

    with app.app_context():
        _, key = accounts.create_account("Fuzz", scopes=["marketer", "compliance", "admin"])
    headers = {"Authorization": f"Bearer {key}"}
    lst = create_list()
    subscribe(lst["id"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEXMAIL_")}
    result = subprocess.run(  # noqa: S603  (our own virtualenv's schemathesis)
        [str(SCHEMATHESIS), "run", f"{live_server.url}/api/openapi.json",
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
