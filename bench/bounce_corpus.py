"""Bounce classifier vs flufl.bounce on the 337 real mails of tests/corpora/bounces.

Prints, for both on the same files: recall of the records that must suppress (hard,
complaint, opt-out for the right recipient) and the share of soft/ignore records that
would suppress someone. flufl.bounce has no classes: its "permanent" set counts as
suppressing (as Mailman would score it). ``--tiny`` reads one file per sender family;
``--list`` also prints, per record, where flexmail disagrees with expected.csv (a missed
suppression or an over-suppression, with the reason and diagnostic it read).

    .venv/bin/python bench/bounce_corpus.py [--tiny] [--list]
"""

from __future__ import annotations

import csv
import email
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flufl.bounce import all_failures  # noqa: E402

from flexmail.domain.bounces import SUPPRESSING, classify_message  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent / "tests" / "corpora" / "bounces"


def ours(raw: bytes) -> set[str]:
    report = classify_message(raw)
    results = report.results if report else ()
    return {(r.recipient or "*").lower().replace('"', "") for r in results if r.bounce_class in SUPPRESSING}


def flufl(raw: bytes) -> set[str]:
    try:
        _, permanent = all_failures(email.message_from_bytes(raw))
    except Exception:
        return set()
    return {(a.decode("utf-8", "replace") if isinstance(a, bytes) else a).lower().replace('"', "") for a in permanent}


def disagreements(rows) -> None:
    """Each record where flexmail's verdict differs from expected.csv, grouped by kind."""
    reports = {name: classify_message((ROOT / "mail" / name).read_bytes()) for name in {r["file"] for r in rows}}
    for kind, wanted in (("missed", ("hard", "complaint", "opt-out")), ("over-suppressed", ("soft", "ignore",
                                                                                          "ignore-fb"))):
        print(f"\n{kind}:")
        for row in rows:
            if row["expected"] not in wanted:
                continue
            report = reports[row["file"]]
            results = report.results if report else ()
            recipient = row["recipient"].lower().replace('"', "")
            mine = [r for r in results if (r.recipient or "*").lower().replace('"', "") in (recipient, "*")]
            suppressed = any(r.bounce_class in SUPPRESSING for r in mine)
            if suppressed == (kind == "over-suppressed"):
                got = "; ".join(f"{r.reason}/{r.bounce_class.value} {r.status or ''} {(r.diagnostic or '')[:90]}"
                                for r in mine) or "no result"
                print(f"  {row['file']:<30} expected {row['expected']} ({row['reason']}): {got}")


def score(rows, files, fn) -> tuple[float, float, float]:
    started = time.perf_counter()
    found = {name: fn((ROOT / "mail" / name).read_bytes()) for name in files}
    elapsed = time.perf_counter() - started
    hit = wanted = over = negatives = 0
    for row in rows:
        got = found[row["file"]]
        suppressed = row["recipient"].lower().replace('"', "") in got or (got == {"*"})
        if row["expected"] in ("hard", "complaint", "opt-out"):
            wanted += 1
            hit += suppressed
        elif row["expected"] in ("soft", "ignore", "ignore-fb"):
            negatives += 1
            over += suppressed
    return hit / max(wanted, 1), over / max(negatives, 1), elapsed


def main() -> None:
    logging.disable(logging.CRITICAL)
    with open(ROOT / "expected.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    files = sorted({r["file"] for r in rows})
    if "--tiny" in sys.argv:
        families: dict[str, str] = {}
        for name in files:
            families.setdefault(name.rsplit("-", 1)[0], name)
        files = sorted(families.values())
        rows = [r for r in rows if r["file"] in files]
    print(f"{len(files)} files, {len(rows)} records")
    print(f"{'classifier':<14}{'recall':>10}{'over-suppression':>20}{'seconds':>10}")
    for name, fn in (("flexmail", ours), ("flufl.bounce", flufl)):
        recall, over, elapsed = score(rows, files, fn)
        print(f"{name:<14}{recall:>10.1%}{over:>20.1%}{elapsed:>10.2f}")
    if "--list" in sys.argv:
        disagreements(rows)


if __name__ == "__main__":
    main()
