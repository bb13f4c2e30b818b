"""The outbox retry schedule: exponential backoff with jitter, capped.

Attempt ``n`` (from 1) failing waits ``min(cap, base * 2**(n-1))`` seconds, times a jitter
factor in [1 - JITTER, 1 + JITTER], so mails that failed together (a relay outage) do not
all come back in the same second. With the defaults (30 s doubling to 1 h, 64 attempts)
the last attempt comes at least ``covered_seconds(...)`` (about 51 h) after the first: a
relay outage of up to 48 h loses nothing.
"""

from __future__ import annotations

JITTER = 0.1


def backoff_seconds(attempt: int, *, base: float, cap: float, rand: float) -> float:
    """Seconds to wait after failed attempt number ``attempt``; ``rand`` is uniform in [0, 1)."""
    nominal = min(cap, base * 2 ** min(max(attempt, 1) - 1, 32))
    return nominal * (1 - JITTER + 2 * JITTER * rand)


def covered_seconds(max_attempts: int, *, base: float, cap: float) -> float:
    """The shortest time from the first to the last attempt, whatever the jitter."""
    return sum(backoff_seconds(n, base=base, cap=cap, rand=0.0) for n in range(1, max_attempts))
