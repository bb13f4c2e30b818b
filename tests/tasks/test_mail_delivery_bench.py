"""The mail delivery benchmark still runs against today's code (at a tiny size; no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BACKEND, need_service

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(BACKEND != "postgres", reason="the benchmark runs on PostgreSQL + Redis (the postgres pass)")
def test_mail_delivery_benchmark_runs_at_a_tiny_size():
    """`bench/mail_delivery.py --tiny` delivers its 50 mails through one worker and prints both rates and the ratio."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    need_service("Redis", "127.0.0.1", 6379)
    result = subprocess.run([sys.executable, "bench/mail_delivery.py", "--tiny"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ratio worker / baseline:" in result.stdout and "msg/s" in result.stdout
