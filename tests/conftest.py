"""Shared fixtures: a PostgreSQL server for the session, and fresh warehouses on both backends.

PostgreSQL: ``KHAOSAT_TEST_POSTGRES_URL`` (a role allowed to CREATE DATABASE; ``.ci/run``
exports one) is used if set. Otherwise a throwaway cluster is started with the PostgreSQL
binaries found on PATH or in /usr/lib/postgresql/<version>/bin (initdb + pg_ctl, trust auth, on
127.0.0.1 and a free port, in a temporary directory; as root they run as the ``postgres`` user
via ``runuser``) and stopped at the end of the session. If neither works, PostgreSQL tests FAIL
with the reason: they are never skipped, so a green run always means both backends ran.

Fixtures for other test files: ``postgres_url`` (session; the server's admin URL),
``fresh_postgres_url`` (a new empty database, dropped afterwards), ``warehouse_url``
(parametrised sqlite/postgresql: the URL of a fresh, empty warehouse) and ``engine`` (the same,
migrated, as an Engine; on PostgreSQL a copy of ``migrated_template``, migrated once). Ask
for ``warehouse_url`` or ``engine`` and a test runs on both. ``no_network`` keeps the tests of
the Google client on the fake Google.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from tests.postgres_cluster import PostgresCluster
from warehouse.db import connect, migrate

POSTGRES_URL_ENV = "KHAOSAT_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Admin URL of a PostgreSQL server for this session (see the module docstring)."""
    env_url = os.environ.get(POSTGRES_URL_ENV)
    if env_url:
        yield env_url
        return
    try:
        cluster = PostgresCluster()
    except Exception as exc:  # any reason becomes the failure message
        pytest.fail(
            f"PostgreSQL tests need a server: set {POSTGRES_URL_ENV} or install PostgreSQL "
            f"server binaries (initdb, pg_ctl). Starting a throwaway cluster failed: {exc}",
            pytrace=False,
        )
    try:
        yield cluster.url
    finally:
        cluster.stop()


def _safe(url: str) -> str:
    """The URL with any password masked, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def _admin_engine(url: str) -> Engine:
    return sa.create_engine(
        make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """URL of a new, empty database on the session's server, dropped after the test."""
    name = f"khaosat_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(postgres_url)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.DBAPIError as exc:
        admin.dispose()
        pytest.fail(
            f"cannot create a test database on {_safe(postgres_url)} (needs a reachable server "
            f"and a role with CREATEDB; check {POSTGRES_URL_ENV}): {exc.orig}",
            pytrace=False,
        )
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        # WITH (FORCE) ends connections a test left open in a pool it did not dispose of.
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a fresh, empty warehouse, once per backend (sqlite file in tmp_path; PostgreSQL
    database of its own)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture(scope="session")
def migrated_template(postgres_url: str) -> Iterator[str]:
    """The name of a PostgreSQL database migrated once a session: ``engine`` copies it
    (``CREATE DATABASE … TEMPLATE``, a file copy) instead of migrating each test's database,
    which took about a second a test."""
    name = f"khaosat_template_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(postgres_url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    template = connect(make_url(postgres_url).set(database=name).render_as_string(False))
    migrate(template)
    template.dispose()  # a database is copied only while nobody is connected to it
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def engine(warehouse_url: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A freshly migrated warehouse on each backend (on PostgreSQL, a copy of
    ``migrated_template``; ``migrate`` then finds nothing to do, as on any current warehouse)."""
    url = make_url(warehouse_url)
    if url.get_backend_name() == "postgresql":
        template = request.getfixturevalue("migrated_template")
        admin = _admin_engine(request.getfixturevalue("postgres_url"))
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{url.database}"')
            conn.exec_driver_sql(f'CREATE DATABASE "{url.database}" TEMPLATE "{template}"')
        admin.dispose()
    eng = connect(warehouse_url)
    migrate(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def own_environment() -> Iterator[None]:
    """The commands set Prefect's defaults in os.environ: undone after the test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole session (it takes 8-17 s to start)."""
    from flows.settings import apply_prefect_defaults

    apply_prefect_defaults()
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail (and remember) any lookup of a host other than 127.0.0.1 (the fake Google): google-
    auth would otherwise call iamcredentials.googleapis.com."""
    attempts: list[str] = []
    real = socket.getaddrinfo

    def local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "localhost", b"127.0.0.1"):
            attempts.append(str(host))
            raise socket.gaierror(f"test: no network ({host})")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)
    yield attempts
    assert attempts == [], f"tried to reach {attempts}"


@pytest.fixture(scope="session")
def private_key_pem() -> str:
    """A throwaway RSA key (PEM) for fake service-account key files."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


_POSTGRES_FIXTURES = {"postgres_url", "fresh_postgres_url"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``postgres`` every test that asks for the PostgreSQL server: by its fixtures, or by
    a "postgresql" backend parameter (fixtures that open the server only for that parameter)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        on_postgres = any(isinstance(v, str) and v == "postgresql" for v in params)
        if on_postgres or _POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
