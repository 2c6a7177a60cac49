"""The machine's faults told apart from the schools': the one place that decides which is which.

A source's problem (a damaged file, a wrong header) fails that source alone and the school is
told to fix it. The machine's problems are the run's, never a school's:

- **the run's faults** (``run_fault``): a full disk, a read-only file system, an output or
  archive folder that cannot be written (or is a file), a warehouse that is read-only or
  unreachable. The run stops as ``error`` (``RunFault``, exit code 5) with one line saying
  what to fix; the sources it had not finished keep their previous state and rows;
- **a worker process that died** (``WorkerDied``): killed, or out of memory, while it read or
  loaded a source. That source is ``stopped``: not judged, no ledger row (it keeps its previous
  state and rows), tried again on the next run; the run goes on and ends as ``error``;
- **a signal** (``Interrupted``): SIGINT (Ctrl-C) or SIGTERM stops the run within seconds,
  recorded as ``interrupted``, its lock released; the command exits 128 + the signal's number.

``quiet_prefect_logs`` keeps Prefect from printing these as tracebacks: the command prints the
one line.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import sqlalchemy as sa
from prefect.exceptions import TerminationSignal

from flows.pipeline import prefect_ui
from flows.pipeline.pools import discard_pools
from flows.privacy import mask_personal
from flows.registry import RegistryError
from flows.settings import Settings, SettingsError
from schemas import QuestionnaireError
from warehouse import db, ledger
from warehouse.lock import LockHeld

if TYPE_CHECKING:
    from flows.pipeline.context import Context

log = logging.getLogger(__name__)

#: errno values that say the machine, wherever it happens, is at fault.
_MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}

#: errno values that say so only for a path khaosat writes (output, archive, warehouse).
_PATH_ERRNOS = {errno.EACCES, errno.EPERM, errno.EEXIST, errno.ENOTDIR, errno.EISDIR}
#: Free bytes under which a disk counts as full.
_NEARLY_FULL = 1 << 20
#: What a database driver says when the warehouse, not the data, is the problem.
_WAREHOUSE_WORDS = (
    "disk is full",
    "disk i/o error",
    "readonly database",
    "read-only",
    "unable to open database",
    "connection refused",
    "could not connect",
    "connection failed",
    "server closed the connection",
    "terminating connection",
    "connection is closed",
    "the database system is",
    "no space left",
)

#: exit code of a run the machine stopped (documented in README's exit-code table).
EXIT_ERROR = 5


class RunFault(Exception):
    """The machine, not a source, stopped the run; the message is the one line to fix it."""


class WorkerDied(Exception):
    """The process reading or loading a source died (killed, out of memory): the source was
    not judged, and is tried again on the next run."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the run."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a command a signal ended."""
        return 128 + self.signum


def worker_died(stage: str, filename: str) -> WorkerDied:
    """The message of a source whose ``stage`` ('parse' or 'load') process died."""
    return WorkerDied(
        f"{filename}: the machine stopped the {stage} process while it "
        f"{'read' if stage == 'parse' else 'loaded'} this file (out of memory?); the file was "
        "not judged: it will be tried again on the next run"
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _written_folders(settings: Settings) -> list[Path]:
    """The folders khaosat writes into, and an SQLite warehouse's own files (not its folder,
    which often holds the schools' submissions too)."""
    paths = [settings.output, settings.archive_dir]
    url = sa.engine.make_url(settings.warehouse_url)
    if url.get_backend_name() == "sqlite" and not db.in_memory(url):
        db_file = Path(str(url.database))
        paths += [db_file.with_name(db_file.name + end) for end in ("", "-wal", "-shm", "-journal")]
    return [p.resolve() for p in paths]


def _full_disks(settings: Settings) -> str:
    """The folders khaosat writes whose disk is (nearly) full, for an error that names no file
    (a write that found no room)."""
    full = []
    for path in sorted({p if p.is_dir() else p.parent for p in _written_folders(settings)}):
        with contextlib.suppress(OSError):
            if shutil.disk_usage(path).free < _NEARLY_FULL:
                full.append(str(path))
    return ", ".join(full) or "a disk khaosat writes to"


def _os_fault(exc: OSError, settings: Settings) -> str | None:
    where = exc.filename or ""
    if exc.errno in _MACHINE_ERRNOS:
        return f"{where or _full_disks(settings)}: {exc.strerror or exc}"
    if exc.errno in _PATH_ERRNOS and where:
        path = Path(str(where)).resolve()
        for root in _written_folders(settings):
            if path == root or root in path.parents:
                what = "is not a folder" if exc.errno in (errno.EEXIST, errno.ENOTDIR) else None
                return f"{where}: {what or exc.strerror or exc} (khaosat writes there)"
    return None


def run_fault(exc: BaseException, settings: Settings) -> str | None:
    """The one line saying what the machine's officer must fix, if ``exc`` (or what caused it)
    is the machine's fault rather than a source's; None otherwise."""
    for link in _chain(exc):
        if isinstance(link, RunFault):
            return str(link)
        if isinstance(link, OSError):
            found = _os_fault(link, settings)
            if found:
                return found
        if isinstance(link, sa.exc.DBAPIError | sa.exc.OperationalError):
            text = str(link.orig if isinstance(link, sa.exc.DBAPIError) else link)
            line = text.strip().splitlines()[0] if text.strip() else type(link).__name__
            if link.connection_invalidated or any(w in text.lower() for w in _WAREHOUSE_WORDS):
                return f"the warehouse {db.safe_url(settings.warehouse_url)}: {line}"
    return None


def check_output(settings: Settings) -> None:
    """Raise SettingsError if ``output`` names something other than a folder: found as the
    run starts, not after the night's work."""
    out = settings.output
    if out.exists() and not out.is_dir():
        raise SettingsError(f"{settings.config_path}: field output: {out} is not a folder")


@contextlib.contextmanager
def faults_of_the_run(settings: Settings) -> Iterator[None]:
    """Within the block, an exception that is the machine's fault becomes a RunFault naming
    what to fix (``run_fault``); anything else passes as it is."""
    try:
        yield
    except Exception as exc:
        fault = run_fault(exc, settings)
        if fault is None or isinstance(exc, RunFault):
            raise
        raise RunFault(fault) from exc


def close_stopped_run(ctx: Context, exc: BaseException) -> None:
    """Record why the run stopped on its run row: 'interrupted' (a signal), 'error' (the
    machine's fault, with the line to fix) or 'failed' (anything else, with its first line);
    forget the worker pools, whose queued jobs no one will record. A warehouse that cannot
    take the row (the fault itself, often) is left as it is: the next run closes the row when
    it takes the lock."""
    discard_pools()
    status, message = _why_stopped(exc, ctx.settings)
    try:
        ledger.finish_run(ctx.engine, ctx.run_id, status=status, message=message)
    except sa.exc.SQLAlchemyError as err:  # the command's one line says why already
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        log.info("run %s could not be recorded as %s: %s", ctx.run_id, status, first)


def _why_stopped(exc: BaseException, settings: Settings) -> tuple[str, str]:
    """The run status and one-line reason of a run ``exc`` stopped."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", str(exc) or "stopped by SIGINT"
    if isinstance(exc, TerminationSignal):  # Prefect's own SIGTERM handler, inside a flow run
        return "interrupted", f"stopped by {signal.Signals(exc.signal).name}"
    fault = run_fault(exc, settings)
    if fault:
        return "error", fault
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, _REPORTED):  # their message is the line
        return "failed", line
    # anything else is named, and may quote a value it choked on: masked as a school's text is
    return "failed", mask_personal(f"{type(exc).__name__}: {line}")


def record_stop(settings: Settings, run_id: str, exc: BaseException) -> None:
    """Put a run that stopped before opening its run row on record, with why (``exc``), when
    the warehouse is there and knows the campaign: ``khaosat status`` then shows this night,
    not the one before, as the last run. A warehouse that is not there or cannot take the row
    is left as it is (logged at info): the command's one line says why the run stopped."""
    url = settings.warehouse_url
    if not db.exists(url):
        return
    status, message = _why_stopped(exc, settings)
    try:
        engine = db.connect(url)
        try:
            if ledger.has_ledger(engine):
                ledger.record_stopped_run(
                    engine, run_id, settings.campaign.id, status=status, message=message
                )
        finally:
            engine.dispose()
    except Exception as err:  # noqa: BLE001 - the warehouse is often the fault itself
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        log.info("run %s could not be recorded as %s: %s", run_id, status, first)


@contextlib.contextmanager
def stops_on_record(settings: Settings, run_id: str | None) -> Iterator[None]:
    """Within the block, a run (the flow run ``run_id``) that stops before opening its run row
    is put on record (``record_stop``); one that opened it closed it itself
    (``close_stopped_run``). Without a flow run there is no id to record it by."""
    try:
        yield
    except BaseException as exc:
        if run_id is not None:
            record_stop(settings, run_id, exc)
        raise


def stopped_line(n: int) -> str:
    """The run's line when the machine stopped ``n`` sources' processes."""
    return (
        f"the machine stopped the process of {n} source(s) (out of memory? killed?); they were "
        "not judged and will be tried again on the next run"
    )


# -- signals ------------------------------------------------------------------------------------


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise ``Interrupted`` in the main thread (where the
    flow runs), so that the run records itself as interrupted and releases its lock; a second
    signal while it does so is ignored. Outside the main thread, nothing changes. (Inside a
    flow run, Prefect's own SIGTERM handler raises TerminationSignal, and sends SIGTERM again
    once the flow has ended: this handler then takes it.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
        _received.append(signum)
        raise Interrupted(signum)

    _received.clear()
    before = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        _received.clear()


#: The signal ``stopped_by_signals`` received, once it has: Interrupted is raised wherever the
#: main thread happens to be, and a library may catch it there and carry on (Prefect keeps an
#: exception raised inside some of its calls in a future that nobody reads).
_received: list[int] = []


def stop_if_signalled() -> None:
    """Raise ``Interrupted`` again if a signal stopped the run and its exception was swallowed
    on the way: the flow calls this between batches, as it collects each ingested source and
    between publishing's steps, so a signal stops the run within one of them, whatever caught
    it first."""
    if _received:
        raise Interrupted(_received[0])


# -- Prefect's logs -----------------------------------------------------------------------------


#: What the command reports in one line itself (exit 2, 4, 5, 130, 143): no traceback.
_REPORTED = (
    KeyboardInterrupt,
    TerminationSignal,
    RunFault,
    LockHeld,
    SettingsError,
    RegistryError,
    QuestionnaireError,
)


class _QuietFaults(logging.Filter):
    """Drops Prefect's records of a run fault, an unusable config or an interruption (a
    traceback each, and the 'Finished in state' lines after them): the command says it in
    one line."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and (isinstance(exc, _REPORTED) or run_fault(exc, self.settings)):
            self.seen = True
            return False
        if self.seen and record.levelno >= logging.ERROR:
            return not record.getMessage().startswith(("Finished in state", "Crash detected"))
        return True


def quiet_prefect_logs(settings: Settings) -> None:
    """Keep Prefect's flow and task run loggers from printing run faults as tracebacks, and the
    run's own lines (``prefect_ui.report``) off the console: the command prints them."""
    quiet = _QuietFaults(settings)
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, _QuietFaults)]:
            logger.removeFilter(old)
        logger.addFilter(quiet)
    prefect_ui.keep_off_console()
