"""The Great Expectations side of validation: one process-wide context, and a suite run on a frame.

GX is imported on first use, never at import: importing it is slow, a cost the CLI's commands
that never validate should not pay. GX does not promise thread safety, so the context is used
under one lock.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.expectation_suite import ExpectationSuite

#: COMPLETE so that every unexpected row is listed, identified by our own key. The index query
#: (a pandas expression listing every unexpected index) is never used and costs time on big
#: failures, so it is turned off.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": ["row_key"],
    "return_unexpected_index_query": False,
}

#: Re-entrant because building a suite (under it) may first create the context (under it too).
GX_LOCK = threading.RLock()


class SuiteError(RuntimeError):
    """A suite that cannot run (missing file, or an expectation that raised): a code problem,
    never a school's, so it stops the run instead of quarantining rows."""


def create_context() -> None:
    """Create the GX context now, in this thread (a run makes it in the background as it ingests).

    A one-off command calls this before its flow starts, while it waits for its Prefect API
    (``nightly.read_ahead``), so that what GX makes as it is imported can be frozen out of the
    garbage collector's way with nothing in flight yet. A failure here is left to the first
    validation, which makes the context again and reports it.
    """
    try:
        batch_definition()
    except Exception:  # noqa: BLE001, S110 - the first validation raises it, with context
        pass


def batch_definition() -> BatchDefinition:
    """The process-wide batch definition (see ``create_batch_definition``), under the GX lock."""
    with GX_LOCK:
        return create_batch_definition()


@functools.cache
def create_batch_definition() -> BatchDefinition:
    """The in-memory dataframe batch definition of a process-wide ephemeral GX context.

    Created on first use, not at import. Progress bars and INFO chatter would flood the
    officer's terminal and the Prefect logs on every run, so both are off.
    """
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas("khaosat").add_dataframe_asset("staged")
    return asset.add_batch_definition_whole_dataframe("whole")


def unexpected_rows(
    code: str, suite: ExpectationSuite, frame: pd.DataFrame, parameters: dict[str, Any]
) -> list[tuple[str, np.ndarray]]:
    """Validate ``frame`` (as GX must see it) with ``suite`` of questionnaire ``code``.

    Returns each failed expectation's rule with the row_keys it found unexpected, in GX's order
    (not the suite's). Raises SuiteError when an expectation could not run.
    """
    # Validation runs once per questionnaire, so serialising it on the lock costs nothing
    # measurable.
    with GX_LOCK:
        batch = batch_definition().get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(
            suite, expectation_parameters=parameters, result_format=RESULT_FORMAT
        )
    failed: list[tuple[str, np.ndarray]] = []
    for res in result.results:
        meta = res.expectation_config.meta if res.expectation_config else {}
        rule = (meta or {}).get("rule", "?")
        if _raised(res.exception_info):
            raise SuiteError(f"suite {code}, rule {rule} could not run: {_message(res)}")
        if res.success:
            continue
        found = np.fromiter(
            (row["row_key"] for row in res.result.get("unexpected_index_list") or ()),
            dtype="int64",
        )
        failed.append((rule, found))
    return failed


def _raised(info: Any) -> bool:
    # exception_info is {"raised_exception": ...} or, when metrics failed, a dict of those
    # keyed by metric id.
    if not isinstance(info, dict):
        return False
    if "raised_exception" in info:
        return bool(info["raised_exception"])
    return any(_raised(v) for v in info.values())


def _message(res: Any) -> str:
    info = res.exception_info or {}
    if "exception_message" in info:
        return str(info["exception_message"])
    messages = [str(v.get("exception_message")) for v in info.values() if isinstance(v, dict)]
    return "; ".join(messages) or "unknown error"
