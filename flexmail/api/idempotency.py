"""``Idempotency-Key`` on every POST and DELETE of the API (see ``services.marketer.idempotency``).

The view runs inside the claim, and its answer, error answers included, is what later
requests with the same key get back, marked ``Idempotent-Replayed: true``. Answers that say
"not done, try again" (429, 5xx, an unexpected exception) release the key instead.

The view's work and the stored answer commit in ONE transaction (``one_transaction``): a
database that dies after the work but before the answer would otherwise leave the key
``in_progress`` with the work done, and the retry that takes the key over after its lease
would do the work again (a second signup round and confirmation mail).
"""

from __future__ import annotations

from flask import Response, current_app, request

from flexmail.services.marketer import idempotency
from flexmail.services.platform.unit_of_work import one_transaction

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
        with one_transaction():
            response = _answer(view, args, kwargs)
            if response.status_code >= 500 or response.status_code == 429:
                # "Not done, try again": nothing of the work is kept, and the key is free.
                raise _NotDone(response)
            if not response.is_streamed:  # (a stream's answer is not known yet: not stored)
                headers = {name: response.headers[name] for name in REPLAYED_HEADERS if name in response.headers}
                idempotency.complete(outcome, status=response.status_code, headers=headers,
                                     body=response.get_data())
        if response.is_streamed:
            idempotency.release(outcome)
    except _NotDone as not_done:
        idempotency.release(outcome)
        return not_done.response
    except Exception:
        idempotency.release(outcome)
        raise
    return response


class _NotDone(Exception):
    def __init__(self, response):
        super().__init__()
        self.response = response


def _answer(view, args, kwargs):
    """The view's answer, its handled errors included (a 409 is an answer to store)."""
    try:
        return current_app.make_response(view(*args, **kwargs))
    except Exception as exc:
        return current_app.make_response(current_app.handle_user_exception(exc))
