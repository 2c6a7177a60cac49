"""How khaosat's processes start: imports kept out of the garbage collector's way, pool
processes that freeze what they inherited, and jobs run in them beside the flow's thread."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from flows.pipeline.pools import Beside, discard_pool, new_pool, parse_pool
from flows.pipeline.processes import app_module, long_lived_imports


@pytest.fixture
def collector() -> Iterator[None]:
    """The collector as it was (enabled, nothing more frozen) after the test."""
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_imports_are_made_without_collections_and_then_frozen(collector: None) -> None:
    gc.enable()
    gc.unfreeze()
    with long_lived_imports():
        assert not gc.isenabled()
        made = [[] for _ in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(made)
    assert not any(obj is made for obj in gc.get_objects())  # frozen: never walked again


def test_a_collector_turned_off_before_stays_off(collector: None) -> None:
    gc.disable()
    with long_lived_imports():
        pass
    assert not gc.isenabled()


def test_the_collector_comes_back_when_an_import_fails(collector: None) -> None:
    gc.enable()
    with pytest.raises(ModuleNotFoundError), long_lived_imports():
        import khaosat_no_such_module  # type: ignore[import-not-found]  # noqa: F401
    assert gc.isenabled()


def test_a_pool_process_freezes_what_it_inherited() -> None:
    with new_pool(1) as pool:
        frozen = pool.submit(gc.get_freeze_count).result(timeout=120)
    # flows.parse and warehouse.load (pandas, SQLAlchemy) were imported by the forkserver
    assert frozen > 100_000


def test_a_server_application_is_imported_first() -> None:
    server = ["uvicorn", "--app-dir", "/x", "--factory", "prefect.server.api.server:create_app"]
    assert app_module(server) == "prefect.server.api.server"
    assert app_module(["uvicorn", "app:app"]) is None  # not a factory: nothing to import first
    assert app_module(["prefect", "server", "start"]) is None
    assert app_module(["uvicorn", "--factory"]) is None


def test_a_discarded_pool_is_replaced_by_a_fresh_one(tmp_path: Path) -> None:
    """``discard_pool`` (what a run does with a pool whose process died) makes the next
    ``parse_pool`` start a new pool, and shuts the old one down."""
    from flows.pipeline.pools import discard_pool, parse_pool
    from flows.settings import load_settings
    from tests.factories import make_province

    settings = load_settings(make_province(tmp_path), env={"KHAOSAT_RUN__PARSE_PROCESSES": "1"})
    old = parse_pool(settings)
    assert old is not None and parse_pool(settings) is old  # kept for the process's life
    discard_pool(old)
    fresh = parse_pool(settings)
    assert fresh is not None and fresh is not old
    with pytest.raises(RuntimeError):  # shut down: it takes no more jobs
        old.submit(int)
    assert fresh.submit(int, "7").result() == 7
    discard_pool(fresh)


def _where(engine: Engine) -> tuple[int, str]:
    """A job beside the flow: the process it ran in, and the warehouse it was handed."""
    return os.getpid(), str(engine.url.database)


def _dies_outside(engine: Engine, parent: int) -> tuple[int, str]:
    """A job whose process dies, unless it runs in ``parent``."""
    if os.getpid() != parent:
        os._exit(3)
    return _where(engine)


def _refuses(engine: Engine) -> None:
    raise ValueError(f"no codebook for {engine.url.database}")


def test_a_job_beside_runs_in_a_parse_process_on_the_same_warehouse(tmp_path: Path) -> None:
    """``Beside`` (the comment mart and the report while the flow's thread works): in a
    process of the pool, on the warehouse opened there by its URL; here when there is no pool,
    for an in-memory warehouse, and again when its process died; its error raised here."""
    from flows.settings import load_settings
    from tests.factories import make_province
    from warehouse.db import connect

    settings = load_settings(make_province(tmp_path), env={"KHAOSAT_RUN__PARSE_PROCESSES": "1"})
    engine = connect(f"sqlite:///{tmp_path / 'w.sqlite'}")
    here = os.getpid()
    pool = parse_pool(settings)
    pid, database = Beside(pool, engine, _where).result()
    assert pid != here and database == str(tmp_path / "w.sqlite")
    assert Beside(None, engine, _where).result()[0] == here
    assert Beside(pool, connect("sqlite://"), _where).result() == (here, "None")
    assert Beside(pool, engine, _dies_outside, here).result()[0] == here
    assert parse_pool(settings) is not pool  # the broken pool was discarded
    with pytest.raises(ValueError, match="no codebook for .*w.sqlite"):
        Beside(parse_pool(settings), engine, _refuses).result()
    discard_pool(parse_pool(settings))
    engine.dispose()
