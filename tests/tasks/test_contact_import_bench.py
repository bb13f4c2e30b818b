"""The contact import benchmark runs (tiny) on PostgreSQL and imports every row it generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BACKEND, need_service

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(BACKEND != "postgres", reason="the benchmark compares against PostgreSQL's COPY")
def test_contact_import_bench_tiny_runs():
    """``bench/contact_import.py --tiny`` finishes, every row subscribed, and prints rows/s and the ratio."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "contact_import.py"), "--tiny"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ratio import/copy:" in done.stdout and "rows: 1,000" in done.stdout
