"""No input makes a 5xx: ids and cursors beyond our integer columns, control characters,
deep JSON and endless numbers are refused with 404/422 and change nothing."""

from __future__ import annotations

import json
import re

import pytest
from werkzeug.routing import IntegerConverter

from flexmail.web import MAX_JSON_DEPTH, json_problem

HUGE_IDS = ["2147483648", "9223372036854775808", "99999999999999999999", "9" * 5000]


def _int_rules(app):
    """Every URL rule with an ``<int:...>`` part, and the methods it answers."""
    for rule in app.url_map.iter_rules():
        if any(isinstance(c, IntegerConverter) for c in rule._converters.values()):
            yield rule


def test_ids_beyond_the_integer_columns_are_404_on_every_route(app, client, account):
    """Every route with an integer id (API and /subscribe/<id>) answers 404 to ids past 2**31-1."""
    rules = list(_int_rules(app))
    assert any(r.rule.startswith("/subscribe/") for r in rules) and len(rules) >= 8
    for rule in rules:
        for huge in HUGE_IDS:
            path = re.sub(r"<int:[^>]+>", huge, rule.rule)
            path = re.sub(r"<[^>]+>", "x", path)
            for method in sorted(rule.methods - {"OPTIONS", "HEAD"}):
                response = client.open(path, method=method, headers=account.headers, json={})
                assert response.status_code == 404, (method, path[:80], response.status_code)
                if path.startswith("/api/"):
                    assert response.json["error"]["code"] == "not_found"


def test_the_largest_id_that_fits_is_an_ordinary_404(client, account):
    """2**31-1 still reaches the view, which answers not found (the converter is not too strict)."""
    response = client.get(f"/api/v1/lists/{2**31 - 1}", headers=account.headers)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", [
    "/api/v1/lists/{list_id}/subscriptions?cursor={n}",
    "/api/v1/lists/{list_id}/subscriptions?limit={n}",
    "/api/v1/suppressions?cursor={n}",
    "/api/v1/audit?cursor={n}",
    "/api/v1/proof?email=a@example.com&list_id={n}",
    "/api/v1/subscriptions/1?campaign_id={n}",
])
@pytest.mark.parametrize("n", ["2147483648", "99999999999999999999", "-99999999999999999999", "9" * 5000])
def test_cursors_and_query_ids_beyond_range_are_422(client, account, create_list, path, n):
    """Cursors, limits and ids in query strings beyond our integer columns answer 422 with the field named."""
    lst = create_list()
    response = client.get(path.format(list_id=lst["id"], n=n), headers=account.headers)
    assert response.status_code == 422, (path, response.status_code)
    assert response.json["error"]["code"] == "validation_error"
    assert response.json["error"]["fields"]


def test_ids_in_json_bodies_beyond_range_are_422(client, account, create_list):
    """A campaign for list 2**40 is refused with 422, not sent to the database."""
    create_list()
    response = client.post("/api/v1/campaigns", headers=account.headers,
                           json={"list_id": 2**40, "subject": "Hello", "html": "<p>Hi</p>"})
    assert response.status_code == 422
    assert "list_id" in response.json["error"]["fields"]


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1b[31m", "\x7f", "\x85", "\ud800"])
def test_control_characters_in_text_fields_are_422_and_change_nothing(client, account, bad):
    """NUL, other C0/C1 controls and lone surrogates in any text field: 422 naming the field, nothing stored."""
    body = {"name": f"News{bad}letter", "sender_name": "Acme", "sender_email": "news@acme.example",
            "consent_text": "Yes please"}
    response = client.post("/api/v1/lists", headers=account.headers, json=body)
    assert response.status_code == 422
    assert list(response.json["error"]["fields"]) == ["name"]
    response = client.post("/api/v1/lists", headers=account.headers, json={**body, "name": "N",
                                                                           "consent_text": f"a{bad}"})
    assert response.status_code == 422
    assert client.get("/api/v1/lists", headers=account.headers).json == []


def test_tabs_and_line_breaks_are_text_where_a_field_allows_them(client, account):
    """A consent text with lines and a tab is stored (control characters other than those are not)."""
    body = {"name": "N", "sender_name": "Acme", "sender_email": "news@acme.example",
            "consent_text": "Line one\r\nLine\ttwo"}
    response = client.post("/api/v1/lists", headers=account.headers, json=body)
    assert response.status_code == 201, response.json


def test_control_characters_in_query_strings_and_lists_are_422(client, account, create_list):
    """A NUL in a query string or inside a list of addresses is refused too."""
    assert client.get("/api/v1/people?email=a%00@example.com", headers=account.headers).status_code == 422
    response = client.post("/api/v1/suppressions/check", headers=account.headers,
                           json={"emails": ["a@example.com", "b\x00@example.com"]})
    assert response.status_code == 422
    assert "emails" in response.json["error"]["fields"]


def test_control_characters_in_public_forms_are_422(client, create_list):
    """The hosted form refuses a NUL in the address with a 422 page (PostgreSQL cannot store it)."""
    lst = create_list()
    client.application.config["WTF_CSRF_ENABLED"] = False
    response = client.post(f"/subscribe/{lst['id']}", data={"email": "reader\x00@example.com"})
    assert response.status_code == 422
    assert b"not valid" in response.data  # the error page's text, in the page's language


def test_a_nul_in_an_unsubscribe_form_never_blocks_the_opt_out(client, account, create_list, subscribe, worker,
                                                               maildir):
    """The unsubscribe page's form is exempt from the check: the opt-out is honoured whatever the body holds."""
    from tests.unsubscribe_support import confirm_signup, detail, unsubscribe_path

    lst = create_list()
    sub_id = confirm_signup(client, subscribe, worker, maildir, lst["id"])
    response = client.post(unsubscribe_path(client, account, sub_id), data={"via": "page", "reason": "other\x00"})
    assert response.status_code == 200
    assert detail(client, account, sub_id)["status"] == "unsubscribed"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1100, 100_000])
def test_deeply_nested_json_is_422(client, account, depth):
    """JSON nested past the limit (1,100 levels is 2.2 KB) answers 422, never a RecursionError 500."""
    for opener, closer in (("[", "]"), ('{"a":', "}")):
        body = opener * depth + "1" + closer * depth
        response = client.post("/api/v1/lists", headers=account.headers, data=body,
                               content_type="application/json")
        assert response.status_code == 422
        assert "nested" in response.json["error"]["message"]


def test_a_number_of_thousands_of_digits_is_422(client, account):
    """A 5,000-digit number (past Python's int parsing limit) answers 422, not 500."""
    body = '{"list_id": ' + "9" * 5000 + ', "subject": "x"}'
    response = client.post("/api/v1/campaigns", headers=account.headers, data=body, content_type="application/json")
    assert response.status_code == 422


def test_json_problem_counts_only_real_nesting():
    """Brackets and digits inside strings do not count; depth exactly at the limit passes."""
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert json_problem(at_limit.encode()) is None
    assert json_problem(("[" + at_limit + "]").encode())
    in_strings = json.dumps({"a": ["[" * 5000, '\\"{{{{' * 100, "9" * 500]}).encode()
    assert json_problem(in_strings) is None
    wide = json.dumps([[i] for i in range(100_000)]).encode()
    assert json_problem(wide) is None
    assert json_problem(("[" * 2000).encode())  # unbalanced and deep: no parser should recurse into it


def test_people_report_holds_no_keyed_hash(app, client, account, create_list, subscribe):
    """GET /people names the person but returns no keyed hash of the address (no oracle)."""
    from flexmail.services.platform.context import hash_address

    lst = create_list()
    subscribe(lst["id"], email="reader@example.com")
    response = client.get("/api/v1/people?email=reader@example.com", headers=account.headers)
    assert response.status_code == 200
    with app.app_context():
        digest = hash_address("reader@example.com")
    text = response.get_data(as_text=True)
    assert "address_hash" not in response.json
    assert digest not in text and digest[:16] not in text
