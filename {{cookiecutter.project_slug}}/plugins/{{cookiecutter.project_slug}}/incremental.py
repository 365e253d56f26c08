"""Idempotent partition loads: replace everything in [start, end) in one transaction.

Re-running a load for the same data interval deletes exactly the rows a previous run wrote
and inserts the new ones, atomically, so a retry, a backfill or a manual re-run can never
double-count or leave a half-written partition behind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?\Z")


def checked_identifier(name: str) -> str:
    """A table or column name, refused unless it is a plain (optionally schema-qualified) identifier."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def replace_partition(
    connection: Any,
    *,
    table: str,
    time_column: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    start: datetime,
    end: datetime,
) -> int:
    """Delete the rows of [start, end) and insert `rows` in one transaction; returns rows inserted.

    `connection` is a DB-API connection (psycopg 3 or psycopg2, as PostgresHook.get_conn() returns).
    """
    if end < start:
        raise ValueError(f"interval ends before it starts: {start} > {end}")
    table, time_column = checked_identifier(table), checked_identifier(time_column)
    column_list = ", ".join(checked_identifier(column) for column in columns)
    placeholders = ", ".join(["%s"] * len(columns))
    rows = [tuple(row) for row in rows]
    cursor = connection.cursor()
    try:
        cursor.execute(f"DELETE FROM {table} WHERE {time_column} >= %s AND {time_column} < %s", (start, end))
        if rows:
            cursor.executemany(f"INSERT INTO {table} ({column_list}) VALUES ({placeholders})", rows)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        cursor.close()
    return len(rows)
