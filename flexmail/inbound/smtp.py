"""The SMTP listener (aiosmtpd) behind ``flask inbound serve``.

Unknown recipients are refused at RCPT with 550, so the sending server bounces them and
nothing is written. Accepted mail is processed before the 250 to DATA. When the database
is away, an unsubscribe is written to the durable opt-out spool first (``services.optout.spool``)
and then answered 250; if even that fails, the answer is 451 and the sending server
retries later, so an opt-out is never acknowledged and then lost.
"""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.controller import Controller

from flexmail.inbound import mailto

log = logging.getLogger(__name__)


class UnsubscribeHandler:
    """aiosmtpd handler; each hook runs the app's code inside an app context."""

    def __init__(self, app):
        self.app = app

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.app.app_context():
            ours = mailto.is_ours(address)
        if not ours:
            log.info("inbound: recipient refused (not an unsubscribe address)")
            return "550 5.1.1 No such recipient here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content or b""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._process, data, list(envelope.rcpt_tos))
        except Exception:
            log.exception("inbound: processing failed; asking the sender to retry")
            return "451 4.3.0 Temporary failure, please try again later"
        return "250 2.0.0 Unsubscribed"

    def _process(self, data: bytes, recipients: list[str]) -> None:
        with self.app.app_context():
            mailto.process(data, recipients)


def make_controller(app, *, host: str = "127.0.0.1", port: int = 8025) -> Controller:
    """A listener for ``app`` (not yet started: call ``start()`` and ``stop()``)."""
    # aiosmtpd logs every command line at INFO, addresses and tokens included; our own
    # lines (ids and counts) are enough, so its logger only speaks up for warnings.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    return Controller(UnsubscribeHandler(app), hostname=host, port=port, enable_SMTPUTF8=True)
