"""bench/proof_export.py runs at a tiny size against today's code, and its exports verify (no timing asserted)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import BACKEND, PG_ADMIN_URL, need_service

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.skipif(BACKEND != "postgres", reason="the benchmark compares with PostgreSQL's COPY")
def test_proof_export_benchmark_runs_at_a_tiny_size():
    """The benchmark seeds, exports both formats, verifies them offline and prints the ratio and peak RSS."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    done = subprocess.run([sys.executable, "bench/proof_export.py", "--rows", "300", "--pg", PG_ADMIN_URL,
                           "--db", f"flexmail_bench_export_{os.getpid()}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.count("proof verify: OK: 300 entries verified") == 2, done.stdout
    assert "speed vs COPY" in done.stdout and "peak RSS" in done.stdout
