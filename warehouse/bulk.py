"""The bulk paths of the warehouse's writes: a queue for SQLite writers, many rows a statement.

``writing`` queues this process's SQLite write transactions on one lock per database, so a
writer hands over at once instead of polling SQLite's busy handler; ``bulk_insert`` writes
rows given column by column, as ``COPY … FROM STDIN`` on PostgreSQL and as INSERTs of many
rows each on SQLite, both on the caller's transaction. What each gains is measured in
benchmarks/README.md.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

#: One lock per SQLite database (by URL) for the per-source write transactions of this process.
_SQLITE_WRITERS: dict[str, threading.Lock] = {}
_SQLITE_WRITERS_GUARD = threading.Lock()


@contextlib.contextmanager
def writing(engine: Engine) -> Iterator[sa.Connection]:
    """``engine.begin()``, with this process's SQLite writers queued on a lock first.

    SQLite has one writer at a time anyway (BEGIN IMMEDIATE); left to its busy handler, the
    flow's load threads sleep and poll for the lock, so the database sits idle between
    transactions. A lock hands it over at once. PostgreSQL writers run concurrently, unqueued.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    key = engine.url.render_as_string(hide_password=False)
    with _SQLITE_WRITERS_GUARD:
        lock = _SQLITE_WRITERS.setdefault(key, threading.Lock())
    with lock, engine.begin() as conn:
        yield conn


def bulk_insert(
    conn: sa.Connection, table: sa.Table, columns: list[str], data: list[list[Any]]
) -> None:
    """Insert many rows (given column by column) in bulk: COPY on PostgreSQL, INSERTs of many
    rows each on SQLite."""
    if not data or not data[0]:
        return
    if conn.dialect.name == "postgresql":
        copy_rows(conn, table, columns, list(zip(*data, strict=True)))
    elif conn.dialect.paramstyle == "qmark":
        _sqlite_insert_rows(conn, table, columns, data)
    else:  # pragma: no cover - SQLite and PostgreSQL are the supported backends
        rows = zip(*data, strict=True)
        conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])


#: Parameters in one SQLite statement: SQLITE_MAX_VARIABLE_NUMBER before SQLite 3.32, the lowest
#: any build allows, so a statement fits whatever SQLite Python was built with.
SQLITE_MAX_PARAMS = 999


def _sqlite_insert_rows(
    conn: sa.Connection, table: sa.Table, columns: list[str], data: list[list[Any]]
) -> None:
    """Insert positional rows (given column by column) on SQLite, many rows a statement.

    Each value goes through its column type's bind processor, exactly as ``table.insert()``
    would store it (datetimes as SQLAlchemy's SQLite text format, for instance), but without
    building a dict per row and processing it in SQLAlchemy. The rows then go as INSERTs of
    as many rows as ``SQLITE_MAX_PARAMS`` allows (``VALUES (…), (…), …``), the rest as one
    ``executemany``, whose cost is per row (reset, bind, step from Python).
    """
    dialect = conn.dialect
    # The dialect's implementation of each type (SQLite's DATETIME for DateTime, say) binds
    # the value; the generic type's own bind_processor would skip SQLite's conversions.
    processors = [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    cols = [
        col if p is None else list(map(p, col)) for p, col in zip(processors, data, strict=True)
    ]
    n, width = len(cols[0]), len(cols)
    per = max(1, SQLITE_MAX_PARAMS // width)  # rows in one statement
    whole = n - n % per  # rows that go in full statements; the rest by executemany
    preparer = dialect.identifier_preparer
    # Identifiers come from the table metadata, quoted by the dialect; values are parameters.
    head = "INSERT INTO {} ({}) VALUES ".format(  # noqa: S608
        preparer.format_table(table), ", ".join(preparer.quote(c) for c in columns)
    )
    row = "({})".format(", ".join("?" * width))
    dbapi = conn.connection.driver_connection
    if dbapi is None:  # pragma: no cover - a pooled connection always has one
        raise RuntimeError("no DBAPI connection under the SQLAlchemy connection")
    # The transaction's own DBAPI connection, as for COPY: the rows commit with the rest.
    cursor = dbapi.cursor()
    try:
        if whole:
            flat: list[Any] = [None] * (whole * width)
            for i, col in enumerate(cols):  # interleave the columns: row 0's values, row 1's, …
                flat[i::width] = col[:whole]
            statement = head + ", ".join([row] * per)
            step = per * width
            for start in range(0, len(flat), step):
                cursor.execute(statement, flat[start : start + step])
        if whole < n:
            cursor.executemany(head + row, zip(*(col[whole:] for col in cols), strict=True))
    finally:
        cursor.close()


def copy_rows(
    conn: sa.Connection, table: sa.Table, columns: list[str], rows: list[tuple[Any, ...]]
) -> None:
    """``COPY table (columns) FROM STDIN`` on the transaction's own psycopg connection.

    Using the DBAPI connection underneath ``conn`` keeps the COPY inside the same transaction
    as the deletes and the ledger row, so all of it commits or none does.
    """
    from psycopg import sql

    dbapi = conn.connection.driver_connection
    if dbapi is None:  # pragma: no cover - a pooled connection always has one
        raise RuntimeError("no DBAPI connection under the SQLAlchemy connection")
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    with dbapi.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
