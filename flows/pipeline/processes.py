"""How khaosat's processes start and end: the garbage collector kept off long-lived imports
(``long_lived_imports``, ``start_worker``), helpers that end with the process they serve
(``end_with``), and a command's exit without the interpreter's teardown (``leave``). Light,
since each of them imports it.

``python -m flows.pipeline.processes PARENT MODULE ARGS...`` runs
``python -m MODULE ARGS...`` in this process, ended as ``end_with(PARENT)`` says; for
``uvicorn … --factory MODULE:FUNCTION`` the application's MODULE is imported first, as
``long_lived_imports``.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import os
import runpy
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import NoReturn


@contextlib.contextmanager
def long_lived_imports() -> Iterator[None]:
    """Import, inside the block, what lives as long as the process: the cyclic garbage
    collector is paused meanwhile, then everything made so far is frozen out of its way
    (``gc.freeze``).

    Prefect, pandas and SQLAlchemy make millions of objects as they are imported, none of them
    garbage, and every full collection walked them all. Objects freed by reference counting
    are freed as ever; only cycles among the frozen objects are never collected, so this is
    for a process's start, before it holds any data: frozen while a batch is in flight, the
    batch's cycles (Prefect's states around its results) would stay for good.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def start_worker(parent: int) -> None:
    """A pool process's start: ``end_with(parent)``, and what it inherited from the forkserver
    (the modules imported for every job) frozen out of the garbage collector's way. Ctrl-C
    reaches the whole process group: the flow's process decides what it stops, not each
    worker on its own (a source's job would otherwise fail with KeyboardInterrupt)."""
    gc.freeze()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    end_with(parent)


def end_with(parent: int) -> None:
    """Start a thread that ends this process once ``parent``, the process it serves, is gone.

    multiprocessing ends a pool's processes when the pool shuts down, and a server started for
    a command is stopped when the command ends, not when the process holding them is killed
    (SIGKILL, the out-of-memory killer): they would wait forever (a pool's processes keeping
    the forkserver alive with them), and a run killed every night would leave them behind
    every night.
    """

    def watch() -> None:
        while True:
            time.sleep(1)
            try:
                os.kill(parent, 0)
            except (ProcessLookupError, PermissionError):  # gone (its number maybe reused)
                os._exit(1)

    threading.Thread(target=watch, name="khaosat-end-with-parent", daemon=True).start()


def leave(code: str | int | None) -> NoReturn:
    """Exit as the interpreter would, less its teardown.

    First what Python does at exit: wait for the threads (where concurrent.futures shuts its
    pools down, so no parse or load process outlives the command), run the atexit handlers
    (the temporary Prefect API, logging), flush output. Then ``os._exit``: the teardown would
    free, object by object, a heap holding Prefect, Great Expectations and pandas, which the
    operating system does at once.
    """
    if isinstance(code, str):  # sys.exit("message"), as the interpreter would print it
        print(code, file=sys.stderr)
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def app_module(argv: list[str]) -> str | None:
    """The module of the application a ``uvicorn … --factory MODULE:FUNCTION`` command
    serves."""
    if argv[0] != "uvicorn" or "--factory" not in argv:
        return None
    at = argv.index("--factory") + 1
    return argv[at].partition(":")[0] if at < len(argv) else None


if __name__ == "__main__":
    end_with(int(sys.argv[1]))
    sys.argv = [sys.argv[2], *sys.argv[3:]]
    app = app_module(sys.argv)
    if app is not None:  # a server's application: imported for good before it starts
        with long_lived_imports():
            importlib.import_module(app)
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
