"""Business rules. Views, actors and CLI commands call these; they never see flask.request.

Grouped by capability, one package each:

- ``consent``: double opt-in (signup requests, flood limits, the confirmation mail, branding);
- ``optout``: unsubscribes from every channel, and the spool that keeps them during outages;
- ``suppression``: who must not be mailed, and what feeds it (bounces, complaints, ESP events, imports);
- ``forwards``: forward to a friend, counted per campaign, never stored;
- ``evidence``: the proof (ledger, signed heads, exports, certificates, retention, erasure);
- ``delivery``: what must go out once (the outbox, our own addresses, webhooks);
- ``marketer``: accounts, keys, lists, contact imports, idempotency, the dashboard's figures;
- ``platform``: plumbing all of them use (transactions, errors, availability, leases, metrics).

Modules import each other without cycles (``tests/unit/test_import_cycles.py``).
"""
