"""`./dev bench`: run every benchmark in bench/ within a time budget and rewrite its section of docs/benchmarks.md.

Benchmarks are discovered (every ``bench/*.py`` script but the helpers in ``HELPERS``), so one
added on a branch is run as soon as it is on main. ``SIZES`` holds, in this one place, the
arguments each known benchmark gets so the whole run fits in ``--budget`` seconds (15 minutes
by default) on a 2-core machine; an unknown one runs with its defaults and the time left.
Each benchmark writes its figures with ``--json PATH``; its output is kept too, so one
without ``--json`` still shows up in the document, with its last lines.

    .venv/bin/python bench/run_all.py [--budget 840] [--only NAME ...] [--tiny] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402

#: bench/*.py files that are not benchmarks.
#: (consent_profile is a profiler: no baseline, no figures to keep.)
HELPERS = {"__init__", "common", "baseline_app", "run_all", "consent_profile"}
#: Benchmarks not part of `./dev bench` (they have their own, longer, run), with the reason.
SEPARATE = {"soak": "a 10-minute reliability run with faults: `python bench/soak.py --minutes 10`"}
#: Arguments for the full run, sized for <= 15 minutes in all on this 2-core machine.
SIZES = {
    "http_paths": ["--seconds", "5", "--repeat", "2", "--accounts", "1000"],
    "sequential_subscribe": ["--requests", "300", "--repeat", "2", "--pending", "1000000"],
    "suppression_check": ["--entries", "1000000", "--checks", "100000", "--repeat", "3"],
    "proof_export": ["--events", "1000000"],
    "dashboard_funnel": ["--events", "1000000", "--repeat", "3"],
}
#: Order of the run: the longest-known first, unknown ones after, by name.
ORDER = ["http_paths", "sequential_subscribe", "proof_export", "suppression_check"]
#: Issue 11's targets: (benchmark, flattened JSON key pattern, comparison, target, what it means).
TARGETS = [
    ("http_paths", "cases.*.one-click.ratio", ">=", 0.6, "one-click POST / insert-and-commit baseline"),
    ("http_paths", "cases.*.one-click.p99_ms", "<=", 100, "one-click POST p99 (ms)"),
    ("http_paths", "cases.*.confirm.ratio", ">=", 0.5, "confirm POST / baseline"),
    ("http_paths", "cases.*.subscribe.ratio", ">=", 0.4, "API subscribe / baseline"),
    ("sequential_subscribe", "vs_django_newsletter", ">=", 2, "sequential API subscribe / django-newsletter"),
    ("sequential_subscribe", "flat_ratio", ">=", 0.9, "subscribe with 1,000,000 pending / empty table"),
    ("suppression_check", "ratio.service", "<=", 2, "check_many / one raw SQL query"),
    ("mail_delivery", "*ratio*", ">=", 0.5, "one worker / bare smtplib loop on one connection"),
    ("proof_export", "*ratio*", ">=", 0.5, "COPY TO time / export time"),
    ("proof_export", "*rss*", "<=", 150, "export peak RSS (MB)"),
]
#: The part of docs/benchmarks.md this runner owns.
BEGIN = "<!-- ./dev bench: generated section, begin -->"
END = "<!-- ./dev bench: generated section, end -->"
#: Per-benchmark cap for one without a known size (seconds).
UNKNOWN_CAP = 180


def discover() -> list[str]:
    names = sorted(p.stem for p in (ROOT / "bench").glob("*.py")
                   if p.stem not in HELPERS and '__name__ == "__main__"' in p.read_text())
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def options_of(name: str) -> str:
    """The benchmark's source: which options it takes (``--tiny``, ``--json``). Read, not run with
    ``--help``: a script that reads ``sys.argv`` itself would run in full."""
    return (ROOT / "bench" / f"{name}.py").read_text()


def flatten(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def versions() -> dict[str, str]:
    found = {"Python": platform.python_version()}
    try:
        import psycopg

        with psycopg.connect(os.environ.get("FLEXMAIL_BENCH_POSTGRES_URL",
                                            "postgresql://postgres@127.0.0.1:5432/postgres")) as conn:
            found["PostgreSQL"] = conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # noqa: BLE001 (a document, not a check)
        found["PostgreSQL"] = f"unknown ({type(exc).__name__})"
    try:
        import redis

        found["Redis"] = redis.Redis.from_url("redis://127.0.0.1:6379/0").info("server")["redis_version"]
    except Exception as exc:  # noqa: BLE001
        found["Redis"] = f"unknown ({type(exc).__name__})"
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        found["wrk"] = (wrk.stdout + wrk.stderr).split()[1]
    except (OSError, IndexError):
        found["wrk"] = "not installed"
    for package in ("Flask", "SQLAlchemy", "psycopg", "dramatiq", "gunicorn", "redis", "aiosmtpd",
                    "prometheus-client"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "-"
    return found


def run_one(name: str, extra: list[str], timeout: float, out: Path) -> dict:
    help_text = options_of(name)
    cmd = [sys.executable, f"bench/{name}.py", *extra]
    json_path = out / f"{name}.json"
    if "--json" in help_text:
        cmd += ["--json", str(json_path)]
    shown = " ".join(shlex.quote(c) for c in [".venv/bin/python", *cmd[1:]]).replace(str(out), "$OUT")
    print(f"== {name}: {shown} (at most {timeout:.0f} s)", flush=True)
    started = time.monotonic()
    log = out / f"{name}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)  # KeyboardInterrupt: the benchmark's cleanup runs
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            code = "timeout"
    elapsed = time.monotonic() - started
    text = log.read_text(errors="replace")
    figures = json.loads(json_path.read_text()) if json_path.exists() else None
    print(f"   {name}: exit {code} in {elapsed:.0f} s", flush=True)
    return {"name": name, "command": shown, "exit": code, "seconds": elapsed, "figures": figures,
            "tail": "\n".join(text.rstrip().splitlines()[-25:]), "has_json": "--json" in help_text}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def target_rows(result: dict) -> list[str]:
    flat = flatten(result["figures"] or {})
    rows = []
    for bench, pattern, op, target, what in TARGETS:
        if bench != result["name"]:
            continue
        for key, value in flat.items():
            if fnmatch.fnmatch(key, pattern) and isinstance(value, int | float) and not isinstance(value, bool):
                met = value >= target if op == ">=" else value <= target
                rows.append(f"| {what} | `{key}` | {_fmt(value)} | {op} {target} | {'met' if met else 'MISSED'} |")
    return rows


def render(results: list[dict], info: dict, started: dt.datetime, total: float, budget: float) -> str:
    lines = [
        BEGIN,
        "## Latest `./dev bench` run",
        "",
        "This section is rewritten by `./dev bench` (`bench/run_all.py`) from the benchmarks' JSON output;",
        "the sections after it are written by hand (profiles, explanations) and are kept.",
        "Every figure is measured in the same run as its baseline, on a shared and noisy machine: the",
        "ratios carry over to other machines, the absolute numbers do not.",
        "",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC; total {total / 60:.1f} min (budget {budget / 60:.0f} min)",
        f"- Machine: {machine()}; load average at the end (1, 5, 15 min): "
        + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + " (shared machine: other jobs ran too)",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in info.items()),
        "",
        "### Targets (issue 11)",
        "",
        "| what | figure | measured | target | |",
        "|---|---|---:|---:|---|",
    ]
    for result in results:
        lines += target_rows(result)
    for name, why in SEPARATE.items():
        if (ROOT / "bench" / f"{name}.py").exists():
            lines += ["", f"`{name}` is not part of this run: {why}."]
    for result in results:
        lines += ["", f"### {result['name']}", "", f"    {result['command']}", "",
                  f"Exit {result['exit']} after {result['seconds']:.0f} s."]
        if result["figures"]:
            lines += ["", "| figure | value |", "|---|---:|"]
            lines += [f"| `{k}` | {_fmt(v)} |" for k, v in flatten(result["figures"]).items() if k != "machine"]
        if not result["figures"] or result["exit"] != 0:
            if not result["has_json"]:
                lines += ["", "(this benchmark has no `--json` option yet: its last lines follow)"]
            lines += ["", "```", result["tail"], "```"]
    return "\n".join([*lines, END]) + "\n"


def write_doc(section: str) -> None:
    """Put ``section`` between the markers of docs/benchmarks.md (after its intro when absent)."""
    path = ROOT / "docs" / "benchmarks.md"
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        doc = head + section.rstrip("\n") + rest.split(END, 1)[1]
    else:
        first = doc.find("\n## ")
        doc = (doc + "\n" + section) if first < 0 else doc[:first + 1] + section + "\n" + doc[first + 1:]
    path.write_text(doc)





def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=14 * 60, help="seconds for the whole run")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks")
    parser.add_argument("--tiny", action="store_true", help="every benchmark with --tiny (does not write the doc)")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--out", type=Path, help="keep the JSON and logs here")
    args = parser.parse_args()
    names = [n for n in discover() if n not in SEPARATE or (args.only and n in args.only)]
    if args.only:
        names = [n for n in names if n in args.only]
    out = args.out or Path(tempfile.mkdtemp(prefix="flexmail-bench-all-"))
    out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    results = []
    for i, name in enumerate(names):
        left = args.budget - (time.monotonic() - t0)
        if left < 20:
            print(f"== {name}: skipped, the budget is spent", flush=True)
            results.append({"name": name, "command": f"bench/{name}.py", "exit": "skipped (budget)", "seconds": 0,
                            "figures": None, "tail": "", "has_json": True})
            continue
        extra = ["--tiny"] if args.tiny else SIZES.get(name, [])
        # Share what is left fairly: a known size may take what it needs, an unknown one its cap.
        cap = left - 20 * (len(names) - i - 1) if name in SIZES else min(UNKNOWN_CAP, left)
        results.append(run_one(name, extra, max(20, cap), out))
    total = time.monotonic() - t0
    print(f"== all done in {total / 60:.1f} min; JSON and logs in {out}", flush=True)
    if not (args.tiny or args.no_write):
        write_doc(render(results, versions(), started, total, args.budget))
        print("== docs/benchmarks.md rewritten", flush=True)
    return 0 if all(r["exit"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
