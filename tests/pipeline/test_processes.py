"""How khaosat's processes start: imports kept out of the garbage collector's way, and pool
processes that freeze what they inherited."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from flows.pipeline.pools import _new_pool
from flows.pipeline.processes import _app_module, long_lived_imports


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
    with _new_pool(1) as pool:
        frozen = pool.submit(gc.get_freeze_count).result(timeout=120)
    # flows.parse and warehouse.load (pandas, SQLAlchemy) were imported by the forkserver
    assert frozen > 100_000


def test_a_server_application_is_imported_first() -> None:
    server = ["uvicorn", "--app-dir", "/x", "--factory", "prefect.server.api.server:create_app"]
    assert _app_module(server) == "prefect.server.api.server"
    assert _app_module(["uvicorn", "app:app"]) is None  # not a factory: nothing to import first
    assert _app_module(["prefect", "server", "start"]) is None
    assert _app_module(["uvicorn", "--factory"]) is None
