"""Alembic environment for the khaosat warehouse.

Normally run through ``warehouse.db.migrate(engine)``, which passes its open connection in
``config.attributes["connection"]`` so the upgrade joins that transaction. For writing a new
migration by hand against a scratch database, the command line works too::

    alembic -c warehouse/alembic.ini -x url=sqlite:///scratch.sqlite upgrade head
    alembic -c warehouse/alembic.ini -x url=sqlite:///scratch.sqlite revision --autogenerate -m "…"
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from warehouse.db import connect
from warehouse.tables import metadata

config = context.config


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the connection given by migrate(), or one made from ``-x url=…``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the warehouse URL: alembic -c warehouse/alembic.ini -x url=…")
    engine = connect(url)
    try:
        with engine.begin() as conn:
            _configure_and_run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
