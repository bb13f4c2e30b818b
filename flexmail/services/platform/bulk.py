"""Writing many rows in one round trip: COPY on PostgreSQL, one executemany on SQLite.

Bulk paths (a contact import) write thousands of rows a batch. Through the ORM, or a
multi-row ``INSERT ... VALUES`` with a placeholder per value, the client spends more time
building and parsing the statement than the server spends storing the rows; COPY keeps
the statement small and constant (where a unique key may be taken meanwhile, into a
temporary table first, then one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``).
Both take plain column values and write in the caller's transaction.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence

from sqlalchemy import JSON, Enum, Table
from sqlalchemy.dialects import sqlite


def _is_postgres(session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _converters(table: Table, columns: Sequence[str]) -> list:
    """Per column, how a value becomes what COPY's text format takes (what the column types
    do on the ORM path): an enum its value, JSON its text; anything else as it is."""
    out = []
    for name in columns:
        column_type = table.c[name].type
        if isinstance(column_type, Enum):
            out.append(lambda v: v.value if isinstance(v, enum.Enum) else v)
        elif isinstance(column_type, JSON):
            out.append(lambda v: None if v is None else json.dumps(v, separators=(",", ":"), ensure_ascii=False))
        else:
            out.append(None)
    return out


def _copy(session, table_name: str, table: Table, columns: Sequence[str], rows: list[dict]) -> None:
    convert = list(zip(columns, _converters(table, columns), strict=True))
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table_name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] if f is None else f(row[c]) for c, f in convert])


def insert_rows(session, table: Table, columns: Sequence[str], rows: list[dict]) -> None:
    """Insert ``rows`` (dicts holding at least ``columns``) into ``table``."""
    if not rows:
        return
    if not _is_postgres(session):
        session.execute(table.insert(), [{c: row[c] for c in columns} for row in rows])
        return
    _copy(session, table.name, table, columns, rows)


def insert_new(session, table: Table, columns: Sequence[str], rows: list[dict], *, unique: Sequence[str],
               returning: Sequence[str]) -> list[tuple]:
    """Insert the ``rows`` whose ``unique`` key is not taken yet (a concurrent writer of the
    same key wins, and its row is skipped here); returns ``returning`` of the rows inserted.
    PostgreSQL: COPY into a temporary table (dropped at commit), then one
    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``."""
    if not rows:
        return []
    if not _is_postgres(session):
        stmt = (sqlite.insert(table).on_conflict_do_nothing(index_elements=list(unique))
                .returning(*(table.c[name] for name in returning)))
        return [tuple(r) for r in session.execute(stmt, [{c: row[c] for c in columns} for row in rows])]
    names = [table.c[c].name for c in (*columns, *unique, *returning)]  # our own columns, never input
    stage = f"bulk_{table.name}"
    connection = session.connection()
    listed = ", ".join(names[:len(columns)])
    connection.exec_driver_sql(f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS "  # noqa: S608
                               f"SELECT {listed} FROM {table.name} WITH NO DATA")
    _copy(session, stage, table, columns, rows)
    made = [tuple(r) for r in connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({listed}) SELECT {listed} FROM {stage} "  # noqa: S608
        f"ON CONFLICT ({', '.join(unique)}) DO NOTHING RETURNING {', '.join(returning)}")]
    connection.exec_driver_sql(f"DROP TABLE {stage}")
    return made
