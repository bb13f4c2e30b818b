"""Every benchmark in bench/ still runs, once, at its tiny size (no figure is judged: times are not tests)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BACKEND, CI, need_service

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.run_all import HELPERS, discover, options_of  # noqa: E402

BENCHMARKS = discover()
#: What each needs besides PostgreSQL and Redis (soak starts its own of both, and PostgreSQL 15's
#: initdb/pg_ctl, as tests/faults.py does).
NEEDS_WRK = {"http_paths"}

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(BACKEND != "postgres", reason="benchmarks run in the PostgreSQL + Redis pass")]


def test_the_benchmarks_are_discovered():
    """The runner finds the benchmarks on main and none of the helper modules."""
    assert {"http_paths", "sequential_subscribe", "suppression_check", "dashboard_funnel"} <= set(BENCHMARKS)
    assert not set(BENCHMARKS) & HELPERS


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_at_tiny_size(name, tmp_path):
    """`bench/<name>.py --tiny` exits 0 and, when it takes `--json PATH`, writes its figures there as JSON."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    need_service("Redis", "127.0.0.1", 6379)
    if name in NEEDS_WRK and not shutil.which("wrk"):
        if CI:
            pytest.fail("wrk is not installed (./dev test installs it)")
        pytest.skip("wrk is not installed")
    help_text = options_of(name)  # the source: some scripts read sys.argv without argparse
    assert "--tiny" in help_text, f"bench/{name}.py has no --tiny option: CI cannot keep it from rotting"
    out = tmp_path / f"{name}.json"
    wants_json = "--json" in help_text  # ./dev bench reports a benchmark without it by its output only
    cmd = [sys.executable, f"bench/{name}.py", "--tiny", *(["--json", str(out)] if wants_json else [])]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    if wants_json:
        figures = json.loads(out.read_text())
        assert isinstance(figures, dict) and figures
