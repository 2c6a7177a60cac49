"""What khaosat's processes run as they start: the pools' processes (``flows.runners``), the
Prefect servers it starts (``flows.prefect_api``) and the command's own imports
(``long_lived_imports``). Light, since each of them imports it.

``python -m flows.workers PARENT MODULE ARGS...`` runs ``python -m MODULE ARGS...`` in this
process, ended as ``end_with(PARENT)`` says; for ``uvicorn … --factory MODULE:FUNCTION`` the
application's MODULE is imported first, as ``long_lived_imports``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import runpy
import sys
import threading
import time
from collections.abc import Iterator

#: The garbage collector's thresholds in khaosat's processes, where Python's (700, 10, 10)
#: collect the youngest objects every 700 allocations and walk everything every 100 such
#: collections: parsing, validating and loading a batch allocate millions of objects, few of
#: them in cycles. With its imports frozen too, the flow process of a 1,000-school run spent
#: 0.6 s collecting, against 3.4 s before (benchmarks/README.md).
GC_THRESHOLDS = (10_000, 10, 100)


@contextlib.contextmanager
def long_lived_imports() -> Iterator[None]:
    """Import, inside the block, what lives as long as the process: the cyclic garbage
    collector is paused meanwhile; then everything made so far is frozen out of its way
    (``gc.freeze``) and it runs at ``GC_THRESHOLDS``.

    Prefect, pandas, SQLAlchemy and GX make millions of objects as they are imported, none of
    them garbage, and every full collection walked them all. Objects freed by reference
    counting are freed as ever; only cycles among the frozen objects are never collected.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        if enabled:
            gc.enable()


def start_worker(parent: int) -> None:
    """A pool process's start: ``end_with(parent)``; what it inherited from the forkserver
    (the modules imported for every job) frozen, and the collector at ``GC_THRESHOLDS``."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
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


def _app_module(argv: list[str]) -> str | None:
    """The module of the application a ``uvicorn … --factory MODULE:FUNCTION`` command
    serves."""
    if argv[0] != "uvicorn" or "--factory" not in argv:
        return None
    at = argv.index("--factory") + 1
    return argv[at].partition(":")[0] if at < len(argv) else None


if __name__ == "__main__":
    end_with(int(sys.argv[1]))
    sys.argv = [sys.argv[2], *sys.argv[3:]]
    app = _app_module(sys.argv)
    if app is not None:  # a server's application: imported for good before it starts
        with long_lived_imports():
            importlib.import_module(app)
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
