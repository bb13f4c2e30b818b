"""Opt-outs from every channel, and the spool that keeps them while the database is down."""
