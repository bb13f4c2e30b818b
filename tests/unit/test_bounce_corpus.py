"""The classifier on 337 real bounce and complaint mails (tests/corpora/bounces, Sisimai's
set-of-emails) against the outcome in expected.csv: recall of the records that must
suppress, and the share of soft/ignore records that would suppress someone.

Issue 14 targets recall >= 95% and over-suppression <= 2%; the floors asserted here are
what the classifier reaches today (a ratchet: raise them, never lower them). See
docs/decisions.md "Bounces" for the rows where expected.csv follows Sisimai's per-MTA
knowledge that the words in the mail do not show."""

from __future__ import annotations

import csv

from flexmail.domain.bounces import SUPPRESSING, classify_message
from tests.corpus import corpus

RECALL_FLOOR = 0.93
OVER_SUPPRESSION_CEILING = 0.055


def measure():
    root = corpus("bounces")
    with open(root / "expected.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    reports = {name: classify_message((root / "mail" / name).read_bytes()) for name in {r["file"] for r in rows}}
    hit = wanted = over = negatives = 0
    for row in rows:
        report = reports[row["file"]]
        results = report.results if report else ()
        # A quoted local part names the same mailbox: compare without the quotes.
        recipient = row["recipient"].lower().replace('"', "")
        mine = [r for r in results if (r.recipient or "").lower().replace('"', "") == recipient
                or (r.recipient is None and len(results) == 1)]
        if row["expected"] in ("hard", "complaint", "opt-out"):
            wanted += 1
            hit += any(r.bounce_class in SUPPRESSING for r in mine)
        elif row["expected"] in ("soft", "ignore", "ignore-fb"):
            negatives += 1
            over += any(r.bounce_class in SUPPRESSING for r in mine)
    return hit / wanted, over / negatives, wanted, negatives


def test_corpus_recall_and_over_suppression():
    """Hard bounces, complaints and opt-outs are found for the right recipient, and soft or
    ignorable records seldom suppress anyone."""
    recall, over, wanted, negatives = measure()
    assert wanted == 129 and negatives == 223
    assert recall >= RECALL_FLOOR, f"recall {recall:.1%}"
    assert over <= OVER_SUPPRESSION_CEILING, f"over-suppression {over:.1%}"
