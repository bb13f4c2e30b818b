"""Real HTTP and real threads for the consent concurrency tests."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from werkzeug.serving import make_server


@contextmanager
def serve(app):
    """``app`` on a threaded HTTP server on 127.0.0.1; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def http(method: str, url: str, *, json_body=None, form: dict | None = None, headers=None) -> tuple[int, bytes]:
    """One request; returns ``(status, body)`` whatever the status."""
    data, all_headers = None, dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode()
        all_headers["Content-Type"] = "application/json"
    elif form is not None:
        data = "&".join(f"{k}={v}" for k, v in form.items()).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def in_parallel(n: int, call, *, threads: int | None = None) -> list:
    """Run ``call(i)`` for i in range(n) on real threads released together by a barrier."""
    threads = min(threads or n, n)
    barrier = threading.Barrier(threads)

    def run(i):
        if i < threads:
            barrier.wait(timeout=60)
        return call(i)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, range(n)))
