"""What every pool process runs first (``flows.runners``' pools); light, since each imports it."""

from __future__ import annotations

import os
import threading
import time


def end_with(parent: int) -> None:
    """Start a thread that ends this process once ``parent``, the process whose pool it
    serves, is gone.

    multiprocessing ends a pool's processes when the pool shuts down, not when the process that
    holds it is killed (SIGKILL, the out-of-memory killer): they would wait for jobs forever,
    keeping the forkserver alive with them, and a run killed every night would leave its
    processes behind every night.
    """

    def watch() -> None:
        while True:
            time.sleep(1)
            try:
                os.kill(parent, 0)
            except (ProcessLookupError, PermissionError):  # gone (its number maybe reused)
                os._exit(1)

    threading.Thread(target=watch, name="khaosat-end-with-parent", daemon=True).start()
