"""The ledger sealer's clock: every few seconds a worker enqueues ``seal_ledger`` for each
account with unsealed events (and, once at boot, for accounts whose old chain no signed
head covers yet). Duplicates are harmless: the actor skips an account another sealer holds,
and a sealer with nothing to seal writes nothing.
"""

from __future__ import annotations

import logging

from flexmail.broker import PeriodicMiddleware

log = logging.getLogger(__name__)


class LedgerSealerMiddleware(PeriodicMiddleware):
    thread_name = "ledger-sealer"

    def tick(self, *, at_boot: bool = False) -> int:
        """Enqueue one seal per account that needs one; return how many were enqueued."""
        from flexmail import tasks
        from flexmail.services.evidence import sealing

        with self.app.app_context():
            accounts = set(sealing.accounts_to_seal())
            if at_boot:
                accounts |= set(sealing.accounts_with_legacy_events())
        for account_id in sorted(accounts):
            tasks.seal_ledger.send(account_id)
        return len(accounts)

    def _loop(self):
        first = True
        while True:
            try:
                self.tick(at_boot=first)
                first = False
            except Exception:
                log.exception("ledger seal round failed")
            if self._stop.wait(self.interval):
                return
