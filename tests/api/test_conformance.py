"""schemathesis against the live app over real HTTP: no answer contradicts the description."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi import checks

from tests.api.api_support import seed

#: Examples per operation: bounded so that one backend stays well under two minutes.
MAX_EXAMPLES = 12
CHECKS = [checks.status_code_conformance, checks.content_type_conformance, checks.response_schema_conformance,
          checks.response_headers_conformance]


@pytest.fixture
def app_config(app_config):
    return {**app_config, "API_RATE_LIMIT": "100000 per minute", "IDEMPOTENCY_WAIT_SECONDS": 0}


def test_live_api_conforms_to_its_description(app, live_server):
    """For every operation, generated requests get answers whose status, content type, body
    and headers are those the description documents (and never a 5xx)."""
    live = seed(app, live_server)
    schema = schemathesis.openapi.from_dict(httpx.get(f"{live.url}/api/openapi.json").json())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    failures = []
    for operation in operations:
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            response = case.call(base_url=live.url, headers=live.headers, timeout=30)
            assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failures
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
