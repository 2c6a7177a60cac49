"""Where the nightly flow's tasks run, and the process pools that spread its work over the cores.

``task_runner``: threads in the flow's process (``run.concurrency``), or an existing Dask
cluster (``run.dask_address``); tasks sent to Dask travel pickled, so the flow's Context ships
the warehouse URL rather than its Engine (``flows.pipeline.context``).

With the threads runner the flow's process also keeps two pools of worker processes, one that
parses submissions and one that loads them (``parse_pool``, ``load_pool``), because the work
under the GIL would otherwise run on one core. ``in_processes`` runs jobs on them and survives
a worker that dies; every job goes through ``submit``, which hands its outcome back through a
file, so that a worker killed while it reports cannot leave the pool waiting forever.
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing
import os
import pickle
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from flows.pipeline.processes import start_worker
from flows.settings import Settings, SettingsError
from warehouse.db import in_memory, shared_engine

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner
    from sqlalchemy.engine import Engine

T = TypeVar("T")

_pools: dict[tuple[str, int], Executor] = {}
_pools_lock = threading.Lock()
_outcomes: list[str] = []  # the folder where this process's jobs leave their outcomes


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
    flow's thread validates. Default: one process per CPU but one. Publishing uses it too,
    for the units' workbooks.
    """
    n = parse_processes(settings)
    return _pool("parse", n) if n else None


def parse_processes(settings: Settings) -> int:
    """How many processes ``parse_pool`` has: 0 when it is None."""
    n = settings.run.parse_processes
    if n is None:
        # one core stays with the flow's process, which validates meanwhile
        n = max(1, (os.cpu_count() or 1) - 1)
    return 0 if settings.run.task_runner == "dask" else n


def load_pool(settings: Settings, engine: Engine) -> Executor | None:
    """This process's pool of load processes for the warehouse ``engine`` points at, or None to
    load in the calling thread.

    Loading a source is mostly Python (rows from frames, figures, the driver's binding): in the
    flow's process it competes for the GIL with validation and with the tasks fetching the next
    batch. Default: one process on SQLite, which takes one writer at a time; one per CPU on
    PostgreSQL. An in-memory SQLite database lives in the flow's process only: no pool.
    """
    n = settings.run.load_processes
    sqlite = engine.dialect.name == "sqlite"
    if n is None:
        n = 1 if sqlite else os.cpu_count() or 1
    if in_memory(engine.url):
        return None
    if n == 0 or settings.run.task_runner == "dask":
        return None
    return _pool("load", n)


def _pool(kind: str, n: int) -> Executor:
    """The pool of ``n`` ``kind`` processes, made on first use and kept for this process's life.

    Its workers start from a clean interpreter (forkserver), never forked from the flow's
    threads. As in any program using multiprocessing, a script that calls the flow must do so
    under ``if __name__ == "__main__":`` (workers import the main module).
    """
    with _pools_lock:
        pool = _pools.get((kind, n))
        if pool is None:
            pool = _pools[kind, n] = new_pool(n)
        return pool


def new_pool(n: int) -> ProcessPoolExecutor:
    """A new pool of ``n`` processes started by the forkserver, each ending with this one."""
    context = multiprocessing.get_context("forkserver")
    # one forkserver serves every pool: it starts with what both kinds of job import
    context.set_forkserver_preload(["flows.pipeline.read_ahead", "warehouse.load"])
    return ProcessPoolExecutor(
        max_workers=n, mp_context=context, initializer=start_worker, initargs=(os.getpid(),)
    )


def discard_pools() -> None:
    """Forget every pool and cancel the jobs they have not started: a run that stops (a
    signal, the machine's fault) does not wait for a batch it will not record."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=False, cancel_futures=True)


def discard_pool(pool: Executor) -> None:
    """Forget a broken pool, so that the next ``parse_pool`` or ``load_pool`` starts afresh."""
    with _pools_lock:
        for key, known in list(_pools.items()):
            if known is pool:
                del _pools[key]
    pool.shutdown(wait=False, cancel_futures=True)


def in_processes(
    pool_of: Callable[[], Executor | None],
    fn: Callable[..., T],
    jobs: Sequence[tuple[Any, ...]],
) -> list[T | BaseException]:
    """``fn(*job)`` for each job, in order: its value, or the exception it raised.

    The jobs run in the processes of ``pool_of()``, or one after another in this thread when
    it gives None. A process that dies (killed, out of memory) breaks the pool and every job
    in flight with it: each of those is tried once more, alone, in a process of its own, so a
    job that kills that one too ends with BrokenProcessPool and the others are unharmed, even
    while other threads send jobs to the pool.
    """
    pool = pool_of()
    if pool is None:
        return [tried(fn, *job) for job in jobs]
    results: list[T | BaseException] = []
    broken: list[int] = []
    for i, future in enumerate([submit(pool, fn, *job) for job in jobs]):
        got = tried(future.result)
        if isinstance(got, BrokenProcessPool):
            broken.append(i)
        results.append(got)
    if broken:
        discard_pool(pool)
    for i in broken:
        with new_pool(1) as alone:
            results[i] = tried(submit(alone, fn, *jobs[i]).result)
    return results


class Beside(Generic[T]):
    """``fn(engine, *args, **kwargs)`` started in a process of ``pool`` while the calling
    thread goes on; ``result()`` waits for it and gives its value, or raises what it raised.

    The process opens the warehouse by its URL (``shared_engine``). Without a pool, or for a
    warehouse no other process can open (in-memory SQLite), the job runs in the calling thread
    when its result is asked for; a job whose process died runs again there.
    """

    def __init__(
        self,
        pool: Executor | None,
        engine: Engine,
        fn: Callable[..., T],
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self._here = functools.partial(fn, engine, *args, **kwargs)
        self._sent: tuple[Executor, Future[T]] | None = None
        if pool is not None and not in_memory(engine.url):
            url = engine.url.render_as_string(hide_password=False)
            self._sent = (pool, submit(pool, _on_warehouse, url, fn, args, kwargs))

    def result(self) -> T:
        """The job's value, once it is done (raising what it raised)."""
        if self._sent is None:
            return self._here()
        pool, future = self._sent
        try:
            return future.result()
        except BrokenProcessPool:  # its process died, or the pool was discarded meanwhile
            discard_pool(pool)
            return self._here()


def _on_warehouse(
    url: str, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> T:
    # In a worker: the job of a Beside, on this process's Engine for the warehouse.
    return fn(shared_engine(url), *args, **kwargs)


def submit(pool: Executor, fn: Callable[..., T], *args: Any) -> Future[T]:
    """``pool.submit(fn, *args)``, the job's value or exception handed back through a file.

    A worker reports a job's outcome down a pipe that every worker of the pool shares. Killed
    while it writes a large outcome (a parsed sheet), it leaves half a message there, and the
    pool's manager thread waits forever for the rest: the pool never learns that it broke,
    and neither its jobs nor the command end. Written to a file first, the outcome leaves only
    its short name to the pipe, which the system writes whole or not at all.

    A pool that broke, or that another thread discarded, gives a future that failed with
    BrokenProcessPool, for the job to be tried again elsewhere.
    """
    handed: Future[T] = Future()
    try:
        future = pool.submit(_hand_back, _outcome_folder(), fn, args)
    except (BrokenProcessPool, RuntimeError) as exc:  # RuntimeError: shut down meanwhile
        handed.set_exception(exc if isinstance(exc, BrokenProcessPool) else BrokenProcessPool(exc))
        return handed

    def take(done: Future[str]) -> None:
        if done.cancelled():
            handed.cancel()
            return
        try:
            handed.set_result(_take_back(done.result()))
        except BaseException as exc:  # noqa: BLE001 - the job's own exception, or the pool's
            handed.set_exception(exc)

    future.add_done_callback(take)
    return handed


def _outcome_folder() -> str:
    """This process's folder for its jobs' outcomes, made on first use, removed at exit."""
    with _pools_lock:
        if not _outcomes:
            folder = tempfile.mkdtemp(prefix="khaosat-outcomes-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            _outcomes.append(folder)
        return _outcomes[0]


def _hand_back(folder: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    # In a worker: the job's outcome, pickled into a file of its own; its path is the result.
    try:
        outcome: tuple[bool, Any] = (True, fn(*args))
    except Exception as exc:  # noqa: BLE001 - handed back to be raised in the caller
        outcome = (False, exc)
    path = os.path.join(folder, f"{uuid.uuid4().hex}.pickle")
    try:
        with open(path, "wb") as out:
            pickle.dump(outcome, out, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        os.unlink(path)
        if outcome[0]:
            raise
        raise outcome[1] from None  # not picklable: concurrent.futures says what it can of it
    return path


def _take_back(path: str) -> Any:
    # In this process: the outcome a worker left at ``path``; the file goes.
    try:
        with open(path, "rb") as handed:
            ok, value = pickle.load(handed)  # noqa: S301 - written by our own worker
    finally:
        os.unlink(path)
    if not ok:
        raise value
    return value


def tried(call: Callable[..., T], *args: Any) -> T | BaseException:
    """``call(*args)``'s value, or the exception it raised: each job's or source's outcome is
    its caller's to report."""
    try:
        return call(*args)
    except Exception as exc:  # noqa: BLE001 - each job's outcome is its caller's to report
        return exc
