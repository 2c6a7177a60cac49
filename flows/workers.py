"""What khaosat's helper processes run first: the pools' processes (``flows.runners``) and
the Prefect servers it starts (``flows.prefect_api``). Light, since each of them imports it.

``python -m flows.workers PARENT MODULE ARGS...`` runs ``python -m MODULE ARGS...`` in this
process, ended as ``end_with(PARENT)`` says.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time


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


if __name__ == "__main__":
    end_with(int(sys.argv[1]))
    sys.argv = [sys.argv[2], *sys.argv[3:]]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
