"""Plumbing every capability uses: transactions, errors, availability, leases, metrics, bulk writes, jobs."""
