"""The GX context made in the background while a run ingests, so that importing Great
Expectations does not hold up the first validation (benchmarks/README.md has the gain)."""

from __future__ import annotations

import threading

from flows.validate import create_context


def warm_up() -> threading.Thread:
    """Create the GX context (importing GX) in a background thread and return it.

    A run calls this when it starts ingesting, so the import is not paid just before the first
    validation. Calling it again, or after ``create_context``, waits for the first call's context.
    """
    thread = threading.Thread(target=create_context, name="khaosat-gx-warm-up", daemon=True)
    thread.start()
    return thread
