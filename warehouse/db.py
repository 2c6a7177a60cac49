"""Warehouse connection, schema migration and the respondent-hash salt.

``connect`` is the one place engines are made, so every connection gets the same SQLite pragmas
and transaction behaviour; ``migrate`` brings any warehouse to the latest schema with Alembic
(run at the start of every ``khaosat run``); ``get_salt`` gives the secret that makes respondent
hashes unlinkable across warehouses; ``local_now`` is the campaign's clock for stored times.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Engine, make_url

from warehouse import tables

#: Alembic scripts ship inside the package, so migrate() works from an installed wheel too.
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

#: How long a SQLite writer waits for another writer before "database is locked" (ms).
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: meta.key of the respondent-hash salt.
SALT_KEY = "respondent_salt"

#: Arbitrary constant identifying khaosat's migration lock among PostgreSQL advisory locks.
_MIGRATION_LOCK_ID = 0x6B68_6173  # "khas"


def _normalise_url(url: str) -> URL:
    """Parse ``url``; plain ``postgresql://`` and ``postgres://`` mean psycopg 3.

    SQLAlchemy's default PostgreSQL driver is psycopg2, which is not installed; psycopg 3 is the
    one with COPY support used by the bulk load.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def safe_url(url: str) -> str:
    """The URL with its password masked, for logs and run summaries (never the credentials)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:  # unparsable: show nothing rather than risk echoing a secret
        return "(invalid warehouse URL)"


def in_memory(url: str | sa.URL) -> bool:
    """Whether ``url`` is an in-memory SQLite database, which only the process holding it sees."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def exists(url: str) -> bool:
    """False for an SQLite file that is not there (connecting would create an empty one);
    True otherwise, an unparsable URL included, for ``connect`` to report."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        return True
    if parsed.get_backend_name() != "sqlite" or in_memory(parsed):
        return True
    return Path(str(parsed.database)).exists()


def shared_engine(url: str) -> Engine:
    """This process's Engine for the warehouse at ``url``, made on first use.

    For work that crossed a process boundary (a load process, a Dask worker): it carries the
    URL, since an Engine does not pickle, and every job in the process shares one Engine and
    its connection pool instead of opening its own.
    """
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = connect(url)
        return engine


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def connect(url: str) -> Engine:
    """An Engine for the warehouse at ``url`` (SQLite or PostgreSQL).

    SQLite: WAL journal (readers do not block the writer), ``busy_timeout`` so concurrent
    writers queue instead of failing, foreign keys enforced, and every transaction opened with
    ``BEGIN IMMEDIATE``: SQLite has one writer, and taking the write lock up front makes a
    second writer wait on busy_timeout rather than fail when its read lock cannot be upgraded.
    That also replaces the sqlite3 module's own transaction handling, which skips BEGIN before
    SELECT and DDL, so a transaction here really is one (migrations included). A connection
    from ``reader`` begins deferred instead: it never writes, and a long read must not hold the
    write lock.

    PostgreSQL: ``postgresql://`` URLs use psycopg 3; connections are checked before use
    (``pool_pre_ping``) since the nightly job may hold a pool across a server restart.
    """
    parsed = _normalise_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)

    engine = sa.create_engine(parsed)
    memory = in_memory(parsed)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # Safe with WAL (a crash may lose the last commit, never corrupt) and much
                # faster for the many small ledger transactions.
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        reads_only = conn.get_execution_options().get(_READS_ONLY, False)
        conn.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")

    return engine


#: The execution option ``reader`` sets.
_READS_ONLY = "khaosat_reads_only"


def reader(engine: Engine) -> sa.Connection:
    """A connection for reading only. On SQLite its transaction does not take the write lock
    that ``connect``'s transactions take first, so a long read (a stream of every comment)
    lets writers go on beside it (WAL); on PostgreSQL it is a plain connection."""
    return engine.connect().execution_options(**{_READS_ONLY: True})


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """The Alembic configuration for the packaged migrations, optionally bound to a connection."""
    cfg = Config()
    # '%' is ConfigParser interpolation syntax; a path containing one must be escaped.
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine) -> None:
    """Upgrade the warehouse to the latest schema (Alembic ``upgrade head``); idempotent.

    Runs in one transaction, so a failed migration leaves the schema as it was (both backends
    have transactional DDL). On PostgreSQL an advisory lock serialises concurrent runs that
    start at once; on SQLite ``BEGIN IMMEDIATE`` already does.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        command.upgrade(alembic_config(conn), "head")


def get_salt(engine: Engine) -> str:
    """The respondent-hash salt: random, created on first use, then stored in ``meta``.

    Safe when two processes ask at once: the insert is skipped if the key appeared meanwhile,
    and both read back the one stored value.
    """
    with engine.begin() as conn:
        value = get_meta(conn, SALT_KEY)
        if value is not None:
            return value
        conn.execute(
            insert_ignore(conn, tables.meta).values(key=SALT_KEY, value=secrets.token_hex(32)),
        )
        meta = tables.meta
        return str(conn.execute(sa.select(meta.c.value).where(meta.c.key == SALT_KEY)).scalar_one())


def digest(*parts: Any) -> str:
    """SHA-256 of plain values (rows, dicts, lists), in a stable text form."""
    text = json.dumps(parts, default=str, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def get_meta(conn: sa.Connection, key: str) -> str | None:
    """A value of the ``meta`` table, or None."""
    meta = tables.meta
    value = conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
    return None if value is None else str(value)


def set_meta(conn: sa.Connection, key: str, value: str) -> None:
    """Store a value in the ``meta`` table (replacing any earlier one)."""
    meta = tables.meta
    conn.execute(sa.delete(meta).where(meta.c.key == key))
    conn.execute(meta.insert().values(key=key, value=value))


def insert_ignore(conn: sa.Connection, table: sa.Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for the connection's dialect (both spell it the same)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


_CAMPAIGN_TIMEZONE = sa.select(tables.campaign.c.timezone).where(
    tables.campaign.c.campaign_id == sa.bindparam("campaign_id")
)


def local_now(conn: sa.Connection, campaign_id: str) -> dt.datetime:
    """Now, naive, in the campaign's time zone (like every stored time of the campaign)."""
    zone = conn.execute(_CAMPAIGN_TIMEZONE, {"campaign_id": campaign_id}).scalar()
    if zone is None:
        raise LookupError(f"campaign {campaign_id!r} is not in the warehouse; run sync_registry")
    return dt.datetime.now(ZoneInfo(zone)).replace(tzinfo=None)


def has_table(engine: Engine, name: str) -> bool:
    """Whether the warehouse has the table ``name`` yet (an older or empty warehouse may not)."""
    with engine.connect() as conn:
        return sa.inspect(conn).has_table(name)
