"""Pure values and functions: no database, no Flask, no I/O."""
