"""``Idempotency-Key`` on every POST and DELETE of the API (see ``services.idempotency``).

The view runs inside the claim, and its answer, error answers included, is what later
requests with the same key get back, marked ``Idempotent-Replayed: true``. Answers that say
"not done, try again" (429, 5xx, an unexpected exception) release the key instead.
"""

from __future__ import annotations

from flask import Response, current_app, request

from flexmail.services import idempotency

HEADER = "Idempotency-Key"
#: Headers of the first answer that a replay repeats.
REPLAYED_HEADERS = ("Content-Type", "Location")
METHODS = frozenset({"POST", "DELETE"})


def run_idempotent(account_id: int, view, *args, **kwargs):
    """Run ``view`` under the request's Idempotency-Key, or as is when it has none."""
    key = request.headers.get(HEADER)
    if key is None or request.method not in METHODS:
        return view(*args, **kwargs)
    body = request.get_data(cache=True)
    outcome = idempotency.begin(account_id, key, idempotency.fingerprint(request.method, request.full_path, body))
    if isinstance(outcome, idempotency.StoredResponse):
        replay = Response(outcome.body, status=outcome.status, headers=outcome.headers)
        replay.headers["Idempotent-Replayed"] = "true"
        return replay
    try:
        response = current_app.make_response(view(*args, **kwargs))
    except Exception as exc:
        try:
            handled = current_app.handle_user_exception(exc)
        except Exception:
            idempotency.release(outcome)
            raise
        response = current_app.make_response(handled)
    if response.is_streamed or response.status_code >= 500 or response.status_code == 429:
        idempotency.release(outcome)
        return response
    headers = {name: response.headers[name] for name in REPLAYED_HEADERS if name in response.headers}
    idempotency.complete(outcome, status=response.status_code, headers=headers, body=response.get_data())
    return response
