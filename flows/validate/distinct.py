"""Each distinct row shown to GX once, and its verdict remembered across the run's batches.

A frame whose every expectation judges each row on its own (``suites.judges_each_row``) gives
every copy of a row the verdict of that row, so GX is shown the distinct rows only and the
verdicts are spread back over the copies. Such a verdict depends on the row and the suite's
parameters alone, so it is remembered with the compiled suite: after the first batch, a
questionnaire's answers are nearly all seen, and their GX run (mostly GX's fixed cost) is
skipped. Rows that hardly repeat (timestamps) are judged once per batch and not remembered.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
import pandas as pd

from flows.validate.frames import for_gx
from flows.validate.suites import Compiled, compiled_suite, no_failures, run_frame

#: A frame's distinct rows are remembered when its rows repeat at least this many times on
#: average (answers: a few hundred distinct rows for 150,000), not otherwise (timestamps).
_REPEATS = 4
_VERDICTS_LOCK = threading.Lock()
_UNSEEN = object()
#: Distinct rows remembered per frame and parameters: a questionnaire's answers need a few
#: hundred; a frame with more starts again when it reaches this.
MAX_VERDICTS = 50_000


def failed_rules(
    code: str, frame_name: str, frame: pd.DataFrame, parameters: dict[str, Any]
) -> pd.Series:
    """Validate ``frame`` once; the first failing rule (suite order) of each unexpected row.

    Returns a str Series indexed by row_key holding only the rows that failed.
    """
    compiled = compiled_suite(code)
    suite = compiled.suites[frame_name]
    if frame.empty or not suite.expectations:
        return no_failures()
    if frame_name not in compiled.row_wise:
        return run_frame(code, compiled, suite, frame, parameters)
    distinct, inverse = distinct_rows(frame)
    if len(distinct) == len(frame):
        return run_frame(code, compiled, suite, frame, parameters)
    if len(distinct) * _REPEATS > len(frame):
        # rows hardly repeat (timestamps): nor will they in the next batch, so none is kept
        failed = run_frame(code, compiled, suite, distinct, parameters)
        verdict = failed.reindex(np.arange(len(distinct))).to_numpy(dtype=object)
    else:
        verdict = np.array(_judged(code, compiled, frame_name, distinct, parameters), dtype=object)
    rules = verdict[inverse]
    hit = pd.notna(rules)
    return pd.Series(rules[hit], index=frame["row_key"].to_numpy()[hit], dtype="str")


def _judged(
    code: str,
    compiled: Compiled,
    frame_name: str,
    distinct: pd.DataFrame,
    parameters: dict[str, Any],
) -> list[str | None]:
    """The first failing rule (or None) of each of the ``distinct`` rows (row_key 0..k-1):
    remembered for the rows judged in an earlier batch, from GX for the others."""
    keys = _row_values(distinct)
    known = _verdicts_of(compiled, frame_name, parameters)
    with _VERDICTS_LOCK:
        verdict: list[Any] = [known.get(key, _UNSEEN) for key in keys]
    unseen = [i for i, v in enumerate(verdict) if v is _UNSEEN]
    if unseen:
        suite = compiled.suites[frame_name]
        failed = run_frame(code, compiled, suite, distinct.iloc[unseen], parameters)
        found = dict(zip(failed.index.tolist(), failed.tolist(), strict=True))
        for i in unseen:
            verdict[i] = found.get(i)
        with _VERDICTS_LOCK:
            if len(known) + len(unseen) > MAX_VERDICTS:
                known.clear()  # bounded: memory must not grow with the province
            known.update((keys[i], verdict[i]) for i in unseen)
    return verdict


def _verdicts_of(
    compiled: Compiled, frame_name: str, parameters: dict[str, Any]
) -> dict[Any, str | None]:
    """The remembered verdicts of ``frame_name``'s rows under ``parameters``."""
    key = (frame_name, json.dumps(parameters, sort_keys=True, default=str))
    with _VERDICTS_LOCK:
        return compiled.verdicts.setdefault(key, {})


def _row_values(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Each row's values (row_key aside) as a hashable tuple, as GX would see them; missing
    values are None, so that equal rows give equal tuples (NaN is not equal to itself)."""
    gx_frame = for_gx(frame)
    columns = [
        [None if pd.isna(value) else value for value in gx_frame[column].tolist()]
        for column in gx_frame.columns
        if column != "row_key"
    ]
    return list(zip(*columns, strict=True)) if columns else [()] * len(frame)


def distinct_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct rows of ``frame`` (row_key aside), keyed 0..k-1, and each row's key."""
    combined = np.zeros(len(frame), dtype="int64")
    size = 1
    for column in frame.columns:
        if column == "row_key":
            continue
        codes, n = _codes(frame[column])
        if size * n >= 2**62:  # renumber first, so the combined code never outgrows int64
            combined, uniques = pd.factorize(combined)
            size = len(uniques)
        combined = combined * n + codes
        size *= n
    # factorize numbers rows in order of first appearance, so row i is the first of its group
    # exactly when its code exceeds every code before it
    inverse, uniques = pd.factorize(combined)
    inverse = inverse.astype("int64")
    seen = np.maximum.accumulate(inverse) if len(inverse) else inverse
    first = np.flatnonzero(np.diff(seen, prepend=-1) > 0)
    distinct = frame.iloc[first].copy()
    distinct["row_key"] = np.arange(len(uniques), dtype="int64")
    return distinct.reset_index(drop=True), inverse


def _codes(column: pd.Series) -> tuple[np.ndarray, int]:
    """Each value's code 0..n-1 (missing values one code of their own) and n."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        # a text column built by ``frames.text_column``: already codes, nothing to hash
        codes = column.cat.codes.to_numpy().astype("int64")
        n = len(column.cat.categories)
        return np.where(codes < 0, n, codes), n + 1
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    return codes.astype("int64"), len(uniques)
