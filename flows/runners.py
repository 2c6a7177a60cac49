"""Where the nightly flow's tasks run: threads in the flow's process, or an existing Dask cluster.

``settings.run.task_runner`` chooses: ``threads`` (the default; ``run.concurrency`` sources at
once) or ``dask`` (every fetch, parse and load task is sent to the Dask scheduler at
``run.dask_address``, so one province's sources spread over the cluster's workers).

A task runner is fixed when a flow is called, and a work-pool deployment calls the flow its
entrypoint names with only the parameters: ``province_night`` is that entrypoint (see
prefect.yaml). It reads the province's config and runs the nightly flow on the task runner the
config asks for, as ``khaosat run`` and ``khaosat serve`` do.

Tasks sent to Dask travel pickled, even to a worker thread in the same process, so everything a
task receives must pickle. A SQLAlchemy Engine does not (it holds a pool and locks): the flow's
Context ships the warehouse URL instead and a worker reconnects through ``shared_engine``, one
Engine per process and URL, so a worker running many tasks keeps one connection pool.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow

from flows.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner
    from sqlalchemy.engine import Engine

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
_pools: dict[int, Executor] = {}
_pools_lock = threading.Lock()


def task_runner(settings: Settings) -> TaskRunner[Any]:
    """The task runner ``settings.run`` asks for.

    ``threads``: a ThreadPoolTaskRunner with ``run.concurrency`` workers. ``dask``: a
    DaskTaskRunner connected to the scheduler at ``run.dask_address`` (for example
    ``tcp://10.0.0.5:8786``); the cluster's workers need this package installed and access to
    the warehouse and to the drop folder or Google Sheets, as the flow's process has.
    """
    if settings.run.task_runner == "dask":
        if not settings.run.dask_address:
            # Letting prefect-dask start a private LocalCluster would silently run a "cluster"
            # job on one machine: ask for the address instead.
            raise SettingsError(
                f"{settings.config_path}: field run.dask_address: required when "
                "run.task_runner is dask (the scheduler address, e.g. tcp://host:8786)"
            )
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=settings.run.dask_address)
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=settings.run.concurrency)


def parse_pool(settings: Settings) -> Executor | None:
    """This process's pool of parse processes, or None to parse in the calling thread.

    Reading and parsing a submission is pure Python and numpy under the GIL: in threads, a
    province's thousand files parse on one core. The pool lets them use every core while the
    flow's thread validates and loads. Its workers start from a clean interpreter
    (forkserver), never forked from the flow's threads, and live as long as this process. As
    in any program using multiprocessing, a script that calls the flow must do so under
    ``if __name__ == "__main__":`` (workers import the main module).
    """
    n = settings.run.parse_processes
    if n is None:
        # one core stays with the flow's process, which validates and loads meanwhile
        n = max(1, (os.cpu_count() or 1) - 1)
    if n == 0 or settings.run.task_runner == "dask":
        return None
    with _pools_lock:
        pool = _pools.get(n)
        if pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["flows.parse"])
            pool = _pools[n] = ProcessPoolExecutor(max_workers=n, mp_context=context)
        return pool


def discard_parse_pool(pool: Executor) -> None:
    """Forget a broken pool, so the next ``parse_pool`` starts a fresh one."""
    with _pools_lock:
        for n, known in list(_pools.items()):
            if known is pool:
                del _pools[n]
    pool.shutdown(wait=False, cancel_futures=True)


def shared_engine(url: str) -> Engine:
    """This process's Engine for the warehouse at ``url``, made on first use.

    For task arguments that crossed a process boundary (Dask): they carry the URL, and every
    task in the process shares one Engine and its pool instead of opening its own.
    """
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            from warehouse import db

            engine = _engines[url] = db.connect(url)
        return engine


@flow(name="khaosat-province", log_prints=False)
def province_night(config: str) -> int:
    """One province's night on a work pool: the nightly flow (a subflow) with the task runner
    ``config`` asks for. Returns the run's exit code (0 all loaded or unchanged, 1 a source
    failed, 3 only absent files), as ``khaosat run`` would exit with."""
    from flows import nightly  # nightly imports this module

    settings = load_settings(Path(config))
    configured = nightly.nightly.with_options(task_runner=task_runner(settings))
    return configured(config=str(settings.config_path)).exit_code
