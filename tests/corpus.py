"""Test material written by others, kept under tests/corpora/ with its licences (see its README).

A missing corpus is an error, never a skip: a test that silently loses its cases proves nothing.
"""

from __future__ import annotations

from pathlib import Path

CORPORA = Path(__file__).resolve().parent / "corpora"


def corpus(*parts: str) -> Path:
    """The path of a corpus file or folder under tests/corpora; raises if it is not there."""
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"test corpus missing: {path} (tests/corpora/README.md says where it comes from)")
    return path
