"""The baseline of the HTTP benchmarks: a minimal app that inserts one row and commits.

It runs on the same gunicorn settings and the same PostgreSQL as Flexmail in the same run
(``bench/http_paths.py`` starts both), so the ratio says how much of the machine's ceiling a
Flexmail hot path reaches: parse a request, one INSERT, COMMIT, a small answer.

    FLEXMAIL_BENCH_BASELINE_URL=postgresql+psycopg://... gunicorn -c deploy/gunicorn.conf.py bench.baseline_app:app
"""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from sqlalchemy import create_engine, text

app = Flask(__name__)
engine = create_engine(os.environ["FLEXMAIL_BENCH_BASELINE_URL"], pool_size=5, max_overflow=10, pool_pre_ping=False)


@app.post("/insert")
@app.post("/insert/<token>")
def insert(token: str = ""):
    """One row, one commit: what the cheapest consent write cannot go below."""
    note = (request.get_data(as_text=True) or token)[:200]
    with engine.begin() as conn:
        row_id = conn.execute(text("INSERT INTO bench_baseline (note) VALUES (:n) RETURNING id"), {"n": note}).scalar()
    return jsonify(id=row_id)


@app.get("/health")
def health():
    return jsonify(status="ok")
