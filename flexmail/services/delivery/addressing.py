"""Our own addresses: where mailto unsubscribes and reports arrive, and our envelope sender.

These few settings-derived names sit below every other service (outbox, reports, unsubscribe,
forwarding all need them), so no service imports another just to learn an address.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flexmail.services.platform.context import setting


def inbound_domain() -> str:
    """Where unsubscribe mail is received: FLEXMAIL_INBOUND_DOMAIN, else the PUBLIC_URL host."""
    configured = setting("INBOUND_DOMAIN")
    domain = configured or urlsplit(setting("PUBLIC_URL")).hostname or "localhost"
    return domain.strip().rstrip(".").lower()


def bounce_address() -> str:
    """The envelope sender of our mail: DSNs come back here, to ``reports.process_report``."""
    local = setting("REPORT_LOCALPARTS").split(",")[0].strip()
    return f"{local}@{inbound_domain()}"
