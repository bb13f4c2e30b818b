"""Domain errors; ``api/errors.py`` and ``public/`` map them to HTTP in one place each."""

from __future__ import annotations


class FlexmailError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, fields: dict | None = None, **extra):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.extra = extra


class ValidationFailed(FlexmailError):
    code = "validation_error"
    status = 422


class NotFound(FlexmailError):
    code = "not_found"
    status = 404


class Suppressed(FlexmailError):
    code = "suppressed"
    status = 409


class ConfirmationBlocked(FlexmailError):
    """A confirmation that an entry added after the person asked (a marketer's manual
    suppression, a bounce...) refuses: the subscription stays as it was."""

    code = "suppressed"
    status = 409


class RateLimited(FlexmailError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class BadToken(FlexmailError):
    """``kind`` is ``invalid`` (tampered, wrong purpose, unknown ids) or ``expired``."""

    code = "bad_token"

    def __init__(self, kind: str, *, subscription_id: int | None = None):
        super().__init__("This link is not valid." if kind == "invalid" else "This link has expired.")
        self.kind = kind
        self.subscription_id = subscription_id
        self.status = 410 if kind == "expired" else 404


class Forbidden(FlexmailError):
    """The caller may not do this (missing scope, platform-wide entries without admin)."""

    code = "forbidden"
    status = 403


class NotLiftable(FlexmailError):
    """The suppression cannot be lifted by the marketer (an erasure entry)."""

    code = "not_liftable"
    status = 409



class NothingToResend(FlexmailError):
    """The confirmation mail is not in a state that a re-send can change (not failed)."""

    code = "nothing_to_resend"
    status = 409


class TooLarge(FlexmailError):
    code = "payload_too_large"
    status = 413


class WrongForwardMode(FlexmailError):
    """A forward of the other mode than the list's: a friend's address posted to a list whose
    subscribers forward from their own mail program (or a count-only forward on a server-mode
    list). Refused before any field is read."""

    code = "wrong_forward_mode"
    status = 409
