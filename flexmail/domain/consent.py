"""The consent vocabulary: subscription states, event types and allowed transitions."""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    PENDING = "pending"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    CANCELLED = "cancelled"  # "this was not me"
    EXPIRED = "expired"


class EventType(enum.StrEnum):
    SUBSCRIBE_REQUESTED = "subscribe_requested"
    CONFIRMATION_SENT = "confirmation_sent"
    #: The confirmation mail could not be delivered: refused by the relay, or attempts used up.
    CONFIRMATION_FAILED = "confirmation_failed"
    LINK_FETCHED = "link_fetched"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    UNSUBSCRIBED = "unsubscribed"
    SUPPRESSED = "suppressed"
    UNSUPPRESSED = "unsuppressed"
    ERASED = "erased"
    EXPIRED = "expired"
    #: A bounce, complaint or delivery report about this subscription and what the policy
    #: did with it (an observation: the suppression, if any, is its own event).
    BOUNCED = "bounced"


#: Which event moves a subscription from which states to which state. Events not listed
#: (confirmation_sent, link_fetched, suppressed...) are observations and change no state.
TRANSITIONS: dict[EventType, tuple[frozenset[Status], Status]] = {
    EventType.SUBSCRIBE_REQUESTED: (
        frozenset({Status.PENDING, Status.UNSUBSCRIBED, Status.CANCELLED, Status.EXPIRED}),
        Status.PENDING,
    ),
    EventType.CONFIRMED: (frozenset({Status.PENDING}), Status.SUBSCRIBED),
    EventType.CANCELLED: (frozenset({Status.PENDING}), Status.CANCELLED),
    EventType.UNSUBSCRIBED: (frozenset({Status.PENDING, Status.SUBSCRIBED}), Status.UNSUBSCRIBED),
    EventType.EXPIRED: (frozenset({Status.PENDING}), Status.EXPIRED),
}


class TransitionError(Exception):
    pass


def next_status(current: Status, event: EventType) -> Status:
    """The state after ``event``; raises ``TransitionError`` when it is not allowed."""
    if event not in TRANSITIONS:
        return current
    allowed_from, to = TRANSITIONS[event]
    if current not in allowed_from:
        raise TransitionError(f"{event.value} is not allowed from {current.value}")
    return to
