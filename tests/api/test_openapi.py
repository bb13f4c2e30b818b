"""The OpenAPI description is valid, complete and exact enough for generated clients."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from tests.api.api_support import seed

OPERATIONS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def spec(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json


def _operations(spec):
    for path, item in spec["paths"].items():
        for method in OPERATIONS:
            if method in item:
                yield method, path, item[method]


def _resolve(spec, obj):
    while "$ref" in obj:
        kind, name = obj["$ref"].split("/")[-2:]
        obj = spec["components"][kind][name]
    return obj


def test_description_passes_openapi_spec_validator(spec):
    """openapi-spec-validator accepts the served description."""
    validate(spec)


def test_every_error_response_is_the_real_envelope(spec):
    """Every 4xx/5xx of every operation documents {"error": {"code", "message", "fields"}}, and
    no flask-smorest {code, status, message, errors} or catch-all default is left."""
    envelope = spec["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    body = _resolve(spec, envelope["properties"]["error"])
    assert set(body["properties"]) == {"code", "message", "fields"} == set(body["required"])
    for method, path, op in _operations(spec):
        assert "default" not in op["responses"], (method, path)
        for status, response in op["responses"].items():
            if int(status) >= 400:
                content = _resolve(spec, response)["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}, (method, path, status)
    assert "Error" not in spec["components"]["schemas"]


def test_operations_have_ids_scopes_and_their_statuses(spec):
    """Each operation has a unique readable operationId, bearer security with its scope, and
    the statuses its route implies (401/403/429/503; 404 with ids; 409/422 for POST/DELETE)."""
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids))
    by_id = {op["operationId"]: (m, p, op) for m, p, op in _operations(spec)}
    assert {"subscribe", "getSubscription", "unsubscribe", "createKey", "revokeKey", "rotateKey"} <= set(by_id)
    for method, path, op in _operations(spec):
        assert op["security"] == [{"bearer": []}] and op["x-scopes"][0] in {"marketer", "compliance", "admin"}
        assert "**Scope:**" in op["description"]
        statuses = set(op["responses"])
        assert {"401", "403", "429", "503"} <= statuses, (method, path)
        if "{" in path:
            assert "404" in statuses
        if method in ("post", "delete"):
            assert {"409", "422"} <= statuses
            assert {"$ref": "#/components/parameters/IdempotencyKey"} in op["parameters"]
    assert by_id["getProof"][2]["x-scopes"] == ["compliance"]
    assert by_id["createKey"][2]["x-scopes"] == ["admin"]
    assert "Retry-After" in spec["components"]["responses"]["TOO_MANY_REQUESTS"]["headers"]
    body = by_id["subscribe"][2]["requestBody"]["content"]["application/json"]
    assert body["example"]["email"] == "reader@example.com"


def test_every_property_has_a_type_and_timestamps_a_format(spec):
    """No untyped property; timestamps are date-time, integers int32 (our columns), status an
    enum, urls uri; path ids are bounded to the columns' range."""
    for name, schema in spec["components"]["schemas"].items():
        for prop_name, prop in schema.get("properties", {}).items():
            prop = _resolve(spec, prop) if "$ref" in prop else prop
            assert "type" in prop, (name, prop_name)
            if prop_name.endswith("_at"):
                assert prop.get("format") == "date-time", (name, prop_name)
            if prop["type"] == "integer":
                assert prop.get("format") == "int32", (name, prop_name)
            if prop_name.endswith("_url"):
                assert prop.get("format") == "uri", (name, prop_name)
    sub = spec["components"]["schemas"]["SubscriptionOut"]
    assert sub["properties"]["status"]["enum"] == ["pending", "subscribed", "unsubscribed", "cancelled", "expired"]
    assert set(sub["required"]) == set(sub["properties"])
    assert spec["components"]["schemas"]["SubscribeIn"]["properties"]["email"]["format"] == "email"
    list_id = spec["paths"]["/api/v1/lists/{list_id}"]["parameters"][0]["schema"]
    assert list_id["format"] == "int32" and list_id["maximum"] == 2**31 - 1


@pytest.fixture
def generated_client(spec, tmp_path):
    """A client generated now by openapi-python-client from the served description."""
    import json

    (tmp_path / "openapi.json").write_text(json.dumps(spec))
    (tmp_path / "config.yaml").write_text("post_hooks: []\nproject_name_override: fm_generated\n"
                                          "package_name_override: fm_generated\n")
    tool = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run([str(tool), "generate", "--path", str(tmp_path / "openapi.json"), "--meta", "none",
                             "--output-path", str(tmp_path / "fm_generated"), "--config",
                             str(tmp_path / "config.yaml")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("fm_generated")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "fm_generated" or m.startswith("fm_generated.")]:
            del sys.modules[name]


def test_generated_client_subscribes_reads_unsubscribes_and_reads_typed_errors(app, live_server, generated_client):
    """A client generated in this run subscribes, reads, unsubscribes, and gets a 409 and a 422
    as typed ErrorEnvelope objects with code, message and fields."""
    live = seed(app, live_server)
    api = importlib.import_module("fm_generated.api.subscriptions")
    models = importlib.import_module("fm_generated.models")
    client = generated_client.AuthenticatedClient(base_url=live.url, token=live.key)
    for name in ("subscribe", "get_subscription", "unsubscribe"):
        importlib.import_module(f"fm_generated.api.subscriptions.{name}")

    created = api.subscribe.sync_detailed(list_id=live.list_id, client=client, body=models.SubscribeIn(
        email="new.reader@example.com", ip="198.51.100.4", user_agent="Generated/1.0", source="generated"))
    assert created.status_code == 202
    assert isinstance(created.parsed, models.SubscribeOut)
    sub = created.parsed.subscription
    assert sub.status == models.SubscriptionOutStatus.PENDING and created.parsed.confirmation_queued is True

    read = api.get_subscription.sync(subscription_id=sub.id, client=client)
    assert isinstance(read, models.SubscriptionDetailOut)
    assert read.id == sub.id and read.list_unsubscribe_post == "List-Unsubscribe=One-Click"
    assert read.created_at.tzinfo is not None

    gone = api.unsubscribe.sync(subscription_id=sub.id, client=client)
    assert gone.status == models.SubscriptionOutStatus.UNSUBSCRIBED

    conflict = api.subscribe.sync_detailed(list_id=live.list_id, client=client,
                                           body=models.SubscribeIn(email=live.suppressed))
    assert conflict.status_code == 409
    assert isinstance(conflict.parsed, models.ErrorEnvelope)
    assert conflict.parsed.error.code == "suppressed" and conflict.parsed.error.message

    invalid = api.subscribe.sync_detailed(list_id=live.list_id, client=client,
                                          body=models.SubscribeIn(email="not an address"))
    assert invalid.status_code == 422
    assert isinstance(invalid.parsed, models.ErrorEnvelope)
    assert invalid.parsed.error.code == "validation_error"
    assert "email" in invalid.parsed.error.fields.to_dict()
