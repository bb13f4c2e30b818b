"""The suppression vocabulary and the one rule that decides whether an entry blocks mail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

#: Every reason an entry can have. ``not_me`` comes from "this was not me" on a
#: confirmation mail; ``erasure`` only from an erasure request.
REASONS = ("unsubscribed", "hard_bounce", "complaint", "manual", "erasure", "not_me")
#: What a marketer may give through the API or an import.
MARKETER_REASONS = ("unsubscribed", "hard_bounce", "complaint", "manual")
#: When several entries match, the one reported: the most serious reason first.
PRECEDENCE = {"erasure": 0, "complaint": 1, "hard_bounce": 2, "unsubscribed": 3, "not_me": 4, "manual": 5}
#: Reasons that record what the person wanted, so the person's own new double opt-in
#: overrides them (and its confirmation lifts them). "This was not me" is one: it stops
#: signups others make for the person, not the person's own later signup on the hosted
#: form. A bounce, a complaint, a marketer's manual entry and every platform-wide entry
#: stay in force.
PERSON_LIFTABLE = frozenset({"erasure", "unsubscribed", "not_me"})
#: Signup channels where the person acts themselves: the hosted form, and "undo" on their
#: own unsubscribe page. ``api`` is the marketer's backend speaking for someone.
PERSON_CHANNELS = frozenset({"form", "undo"})
KINDS = ("address", "domain")
SCOPES = ("account", "global")


class Match(NamedTuple):
    """One entry that matched an address, as far as the rules need to know it (a tuple:
    bulk checks make tens of thousands)."""

    id: int
    account_id: int | None
    kind: str
    reason: str
    created_at: dt.datetime

    @property
    def scope(self) -> str:
        return "global" if self.account_id is None else "account"


def rank(entry: Match) -> tuple:
    """Sort key: the account's own entries before platform-wide ones, the address before
    its domain, then the most serious reason, then the oldest."""
    return entry.account_id is None, entry.kind != "address", PRECEDENCE.get(entry.reason, 9), entry.id


def person_may_override(entry: Match, *, asked_at: dt.datetime | None = None) -> bool:
    """True when the person's own signup passes this entry: an account entry for the very
    address, with a reason the person chose, made before they asked (``asked_at``)."""
    return (entry.account_id is not None and entry.kind == "address" and entry.reason in PERSON_LIFTABLE
            and (asked_at is None or entry.created_at <= asked_at))


def blocking(entries: Iterable[Match], *, person_initiated: bool = False,
             asked_at: dt.datetime | None = None) -> Match | None:
    """The entry that stops mail, or ``None``.

    ``person_initiated``: the signup comes from the person (``PERSON_CHANNELS``); entries
    they may override and that existed when they asked do not block it.
    """
    candidates = [e for e in entries if not (person_initiated and person_may_override(e, asked_at=asked_at))]
    return min(candidates, key=rank, default=None)
