"""Validate staged rows with the questionnaire's Great Expectations suite.

One GX run per frame per questionnaire over every sheet staged in a batch (never per file: a
run's fixed cost is paid once). The suite is ``expectations/<CODE>.json``; each expectation's
``meta`` says which frame it checks (answers, or responses), what it rejects (one answer, or a
whole response), and the reason and fix shown to the school. A frame whose every expectation
judges each row alone is shown to GX one distinct row at a time, and a distinct row already
judged earlier in the run (same suite, same parameters) is not shown again. Unexpected rows
come back by ``row_key``: a rejected answer is removed alone, a rejected response with all
its answers; every removal is a row of the Parsed's ``rejections``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from expectations import SUITES_DIR
from schemas.questionnaire import Questionnaire
from schemas.records import REJECTION_COLUMNS, Parsed

if TYPE_CHECKING:
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.expectation_suite import ExpectationSuite

ANSWERS = "answers"
RESPONSES = "responses"

#: COMPLETE so that every unexpected row is listed, identified by our own key. The index query
#: (a pandas expression listing every unexpected index) is never used and costs time on big
#: failures, so it is turned off.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": ["row_key"],
    "return_unexpected_index_query": False,
}

#: question_code of a rejection about the response's timestamp (not an item of any form).
TIMESTAMP_CODE = "TIMESTAMP"

#: Answer columns every validation reads; the others only for the rows it rejects.
_ANSWER_COLUMNS = ["response_no", "question_code", "kind", "value"]
_ANSWER_CELL_COLUMNS = ["raw", "row", "col"]
#: As parse writes them: sheet coordinates may be absent (a whole response has no column).
_REJECTION_DTYPES = {"row": "Int64", "col": "Int64", "response_no": "Int64"}

# GX does not promise thread safety, so the process-wide context is used under one lock;
# re-entrant because building a suite (under it) may first create the context (under it too).
_GX_LOCK = threading.RLock()


class SuiteError(RuntimeError):
    """A suite that cannot run (missing file, or an expectation that raised): a code problem,
    never a school's, so it stops the run instead of quarantining rows."""


# --- suites -------------------------------------------------------------------------------


def load_suite(code: str, folder: Path = SUITES_DIR) -> dict[str, Any]:
    """The suite of questionnaire ``code`` as stored (``expectations/<code>.json``)."""
    path = folder / f"{code}.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the expectation suite: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}: not valid JSON: {exc}") from exc
    return data


@functools.cache
def _fix_hints(folder: Path) -> dict[str, str]:
    hints: dict[str, str] = {}
    for path in sorted(folder.glob("*.json")):
        for exp in load_suite(path.stem, folder)["expectations"]:
            meta = exp.get("meta") or {}
            if "rule" in meta and "fix" in meta:
                hints.setdefault(meta["rule"], meta["fix"])
    return hints


def fix_hint(rule: str) -> str:
    """How a school fixes a rejection of ``rule`` (Vietnamese, from the suites' ``meta.fix``).

    Rules mean the same in every suite, so the first suite that has the rule answers. Returns
    "" for rules that no suite defines (parse-time rules, for instance).
    """
    return _fix_hints(SUITES_DIR).get(rule, "")


@dataclasses.dataclass(frozen=True)
class _Check:
    """What the code needs of one expectation: its meta and the response field it looks at."""

    position: int  # precedence: a row failing several checks is reported by the first
    rule: str
    reason: str
    scope: str
    columns: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class _Compiled:
    suites: dict[str, ExpectationSuite]  # frame -> GX suite of that frame's expectations
    checks: dict[str, _Check]  # rule -> check
    row_wise: frozenset[str]  # frames whose every expectation judges each row on its own
    kwargs_text: dict[str, str]  # frame -> its expectations' kwargs as JSON (see reads)
    #: Verdicts of the distinct rows of row-wise frames already validated with this suite, per
    #: (frame, parameters): the row's values -> its first failing rule, or None. A row-wise
    #: verdict depends on the row and the parameters alone, so a row seen in an earlier batch
    #: of the run is not shown to GX again: after the first batch, a questionnaire's answers
    #: are nearly all seen, and their GX run (mostly GX's fixed cost) is skipped.
    verdicts: dict[tuple[str, str], dict[tuple[Any, ...], str | None]] = dataclasses.field(
        default_factory=dict, compare=False
    )

    def verdicts_of(self, frame: str, parameters: dict[str, Any]) -> dict[Any, str | None]:
        """The verdicts of ``frame``'s rows under ``parameters`` (see ``verdicts``)."""
        key = (frame, json.dumps(parameters, sort_keys=True, default=str))
        with _VERDICTS_LOCK:
            return self.verdicts.setdefault(key, {})

    def reads(self, frame: str, column: str, parameters: dict[str, Any]) -> bool:
        """Whether GX may look at ``column`` of ``frame`` given ``parameters``.

        A row-wise expectation reads only the columns its kwargs name (column, row
        condition), so a column named nowhere in them or in the parameters cannot change a
        verdict and need not be prepared nor compared. The test is by substring: it may keep
        a column needlessly, never drop one that is read. Other frames keep every column (a
        table-level expectation may look at all of them).
        """
        if frame not in self.row_wise:
            return True
        named = self.kwargs_text[frame] + json.dumps(parameters, default=str, ensure_ascii=False)
        return column in named


#: Expectations whose verdict on a row depends on that row's values alone. A frame checked
#: only by these gives each distinct row the verdict of its copies, so GX is shown each
#: distinct row once (a province's 6 million answers are a few hundred distinct rows).
ROW_WISE_EXPECTATIONS = frozenset(
    {
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex",
    }
)


@functools.cache
def _compiled(code: str) -> _Compiled:
    """The suite of ``code`` split per frame into GX objects (built once per process)."""
    with _GX_LOCK:
        return _compile(code)


def _compile(code: str) -> _Compiled:
    _gx_batch_definition()  # GX logging is quieted there, before the first expectation is built
    import great_expectations as gx

    data = load_suite(code)
    by_frame: dict[str, list[dict[str, Any]]] = {ANSWERS: [], RESPONSES: []}
    checks: dict[str, _Check] = {}
    for position, exp in enumerate(data["expectations"]):
        meta = exp.get("meta") or {}
        missing = {"rule", "reason", "fix", "frame", "scope"} - meta.keys()
        if missing:
            raise SuiteError(f"suite {code}, expectation {position}: meta lacks {sorted(missing)}")
        if meta["frame"] not in by_frame:
            raise SuiteError(f"suite {code}, rule {meta['rule']}: unknown frame {meta['frame']!r}")
        if meta["rule"] in checks:
            raise SuiteError(f"suite {code}: rule {meta['rule']} appears twice")
        kwargs = exp.get("kwargs", {})
        columns = tuple(kwargs.get("column_list") or [kwargs.get("column", "")])
        checks[meta["rule"]] = _Check(
            position, meta["rule"], meta["reason"], meta["scope"], columns
        )
        by_frame[meta["frame"]].append(exp)
    suites = {
        frame: gx.ExpectationSuite(name=f"{code}.{frame}", expectations=exps)
        for frame, exps in by_frame.items()
    }
    row_wise = frozenset(
        frame for frame, exps in by_frame.items() if all(_judges_each_row(e) for e in exps)
    )
    kwargs_text = {
        frame: json.dumps([e.get("kwargs", {}) for e in exps], default=str, ensure_ascii=False)
        for frame, exps in by_frame.items()
    }
    return _Compiled(suites, checks, row_wise, kwargs_text)


def _codes(column: pd.Series) -> tuple[np.ndarray, int]:
    """Each value's code 0..n-1 (missing values one code of their own) and n."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        # a text column built by ``_text``: already codes, nothing to hash
        codes = column.cat.codes.to_numpy().astype("int64")
        n = len(column.cat.categories)
        return np.where(codes < 0, n, codes), n + 1
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    return codes.astype("int64"), len(uniques)


def _judges_each_row(exp: dict[str, Any]) -> bool:
    # ``mostly`` below 1 makes a row's verdict depend on how many rows fail, which showing
    # each distinct row once would change.
    return exp["type"] in ROW_WISE_EXPECTATIONS and exp.get("kwargs", {}).get("mostly", 1) == 1


def _distinct(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct rows of ``frame`` (row_key aside), keyed 0..k-1, and each row's key."""
    combined = np.zeros(len(frame), dtype="int64")
    size = 1
    for c in frame.columns:
        if c == "row_key":
            continue
        codes, n = _codes(frame[c])
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


def _for_gx(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as GX must see it: text columns kept as codes (``_text``) back to str."""
    cats = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if not cats:
        return frame
    return frame.assign(**{c: frame[c].astype(frame[c].cat.categories.dtype) for c in cats})


# --- GX context ---------------------------------------------------------------------------


def create_context() -> None:
    """Create the GX context now, in this thread (a run makes it in the background as it ingests).

    A one-off command calls this before its flow starts, while it waits for its Prefect API
    (``nightly.read_ahead``), so that what GX makes as it is imported can be frozen out of the
    garbage collector's way with nothing in flight yet. A failure here is left to the first
    validation, which makes the context again and reports it.
    """
    try:
        _gx_batch_definition()
    except Exception:  # noqa: BLE001, S110 - the first validation raises it, with context
        pass


def _gx_batch_definition() -> BatchDefinition:
    with _GX_LOCK:
        return _create_batch_definition()


@functools.cache
def _create_batch_definition() -> BatchDefinition:
    """The in-memory dataframe batch definition of a process-wide ephemeral GX context.

    Created on first use, not at import: importing GX costs seconds, which the CLI's other
    commands should not pay. Progress bars and INFO chatter would flood the officer's terminal
    and the Prefect logs on every run, so both are off.
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


def _run(code: str, frame_name: str, frame: pd.DataFrame, parameters: dict[str, Any]) -> pd.Series:
    """Validate ``frame`` once; the first failing rule (suite order) of each unexpected row.

    Returns a str Series indexed by row_key holding only the rows that failed.
    """
    compiled = _compiled(code)
    suite = compiled.suites[frame_name]
    if frame.empty or not suite.expectations:
        return pd.Series([], index=pd.Index([], dtype="int64"), dtype="str")
    if frame_name not in compiled.row_wise:
        return _run_frame(code, compiled, suite, frame, parameters)
    distinct, inverse = _distinct(frame)
    if len(distinct) == len(frame):
        return _run_frame(code, compiled, suite, frame, parameters)
    if len(distinct) * _REPEATS > len(frame):
        # rows hardly repeat (timestamps): nor will they in the next batch, so none is kept
        failed = _run_frame(code, compiled, suite, distinct, parameters)
        verdict = failed.reindex(np.arange(len(distinct))).to_numpy(dtype=object)
    else:
        verdict = np.array(_judged(code, compiled, frame_name, distinct, parameters), dtype=object)
    rules = verdict[inverse]
    hit = pd.notna(rules)
    return pd.Series(rules[hit], index=frame["row_key"].to_numpy()[hit], dtype="str")


def _judged(
    code: str,
    compiled: _Compiled,
    frame_name: str,
    distinct: pd.DataFrame,
    parameters: dict[str, Any],
) -> list[str | None]:
    """The first failing rule (or None) of each of the ``distinct`` rows (row_key 0..k-1):
    remembered for the rows judged in an earlier batch, from GX for the others."""
    keys = _row_values(distinct)
    known = compiled.verdicts_of(frame_name, parameters)
    with _VERDICTS_LOCK:
        verdict: list[Any] = [known.get(key, _UNSEEN) for key in keys]
    unseen = [i for i, v in enumerate(verdict) if v is _UNSEEN]
    if unseen:
        suite = compiled.suites[frame_name]
        failed = _run_frame(code, compiled, suite, distinct.iloc[unseen], parameters)
        found = dict(zip(failed.index.tolist(), failed.tolist(), strict=True))
        for i in unseen:
            verdict[i] = found.get(i)
        with _VERDICTS_LOCK:
            if len(known) + len(unseen) > MAX_VERDICTS:
                known.clear()  # bounded: memory must not grow with the province
            known.update((keys[i], verdict[i]) for i in unseen)
    return verdict


#: A frame's distinct rows are remembered when its rows repeat at least this many times on
#: average (answers: a few hundred distinct rows for 150,000), not otherwise (timestamps).
_REPEATS = 4
_VERDICTS_LOCK = threading.Lock()
_UNSEEN = object()
#: Distinct rows remembered per frame and parameters: a questionnaire's answers need a few
#: hundred; a frame with more starts again when it reaches this.
MAX_VERDICTS = 50_000


def _row_values(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Each row's values (row_key aside) as a hashable tuple, as GX would see them; missing
    values are None, so that equal rows give equal tuples (NaN is not equal to itself)."""
    gx_frame = _for_gx(frame)
    columns = [
        [None if pd.isna(v) else v for v in gx_frame[c].tolist()]
        for c in gx_frame.columns
        if c != "row_key"
    ]
    return list(zip(*columns, strict=True)) if columns else [()] * len(frame)


def _run_frame(
    code: str,
    compiled: _Compiled,
    suite: ExpectationSuite,
    frame: pd.DataFrame,
    parameters: dict[str, Any],
) -> pd.Series:
    """One GX validation of ``frame``: the first failing rule of each unexpected row_key."""
    frame = _for_gx(frame)
    # One lock for the shared context: GX does not promise thread safety, and validation runs
    # once per questionnaire, so serialising it costs nothing measurable.
    with _GX_LOCK:
        batch = _gx_batch_definition().get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(
            suite, expectation_parameters=parameters, result_format=RESULT_FORMAT
        )
    keys: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    rules: list[np.ndarray] = []
    # Results are not in suite order, so precedence comes from the check's position.
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
        check = compiled.checks[rule]
        keys.append(found)
        positions.append(np.full(len(found), check.position))
        rules.append(np.full(len(found), rule, dtype=object))
    if not keys:
        return pd.Series([], index=pd.Index([], dtype="int64"), dtype="str")
    failed = pd.DataFrame(
        {
            "row_key": np.concatenate(keys),
            "pos": np.concatenate(positions),
            "rule": np.concatenate(rules),
        }
    )
    failed = failed.sort_values(["row_key", "pos"], kind="stable").drop_duplicates("row_key")
    return pd.Series(failed["rule"].to_numpy(), index=failed["row_key"].to_numpy(), dtype="str")


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


# --- frames -------------------------------------------------------------------------------


def _offsets(sizes: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes, dtype="int64")])


def _column(frames: Sequence[pd.DataFrame], name: str) -> np.ndarray:
    """Column ``name`` of all frames one under the other (NaN where a frame lacks it).

    Only the columns validation reads are stacked, as plain arrays: reindexing and
    concatenating whole frames cost more than validating them.
    """
    parts = [
        f[name].to_numpy() if name in f.columns else np.full(len(f), np.nan, dtype=object)
        for f in frames
    ]
    return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def _text(values: np.ndarray) -> pd.Categorical[str]:
    """``values`` as the str column GX checks (``astype("str")``), stored as codes.

    Answers repeat a few dozen codes and kinds and a few hundred raw texts over hundreds of
    thousands of rows: held as codes, finding the distinct rows hashes nothing more, and only
    the distinct values are converted. When every value is a str (or missing) the distinct
    values convert one to one; otherwise two values might share a text (1 and "1"), so the
    whole column is converted first and equal texts share a code.
    """
    codes, uniques = pd.factorize(values)
    if pd.api.types.infer_dtype(uniques, skipna=True) not in ("string", "empty"):
        codes, uniques = pd.factorize(pd.Series(values).astype("str").to_numpy())
    categories = pd.Index(pd.Series(uniques, dtype=object).astype("str"))
    return pd.Categorical.from_codes(codes, categories=categories)


def _timestamps(frames: Sequence[pd.DataFrame]) -> pd.Series:
    """The responses' timestamps, stacked, as GX compares them without a Python call per value.

    Stacked by pandas, not numpy: numpy would turn datetime64[ns] values into integers when
    another sheet's column is of objects.

    GX's ``column_values.between`` compares a datetime64[ns] column with the window in one
    vectorised step but maps a Python function over every value of any other unit (parse
    gives datetime64[us]); both compare the same instants, inclusive or strict as the suite
    says, and both skip missing values (paper forms). A timestamp outside datetime64[ns]'s
    range (years 1677-2262) keeps its unit and the slow path.
    """
    parts = [
        f["submitted_at"] if "submitted_at" in f.columns else pd.Series(np.nan, index=f.index)
        for f in frames
    ]
    ts = pd.to_datetime(pd.concat(parts, ignore_index=True), errors="coerce")
    if ts.dtype.kind == "M" and ts.dtype != "datetime64[ns]":
        try:
            return ts.astype("datetime64[ns]")
        except pd.errors.OutOfBoundsDatetime:
            pass
    return ts


def _service_key(names: pd.Series) -> pd.Series:
    """Service names compared as a reader would: NFC, case, and spacing ignored; blank = NA."""
    s = names.astype("str").str.normalize("NFC").str.casefold()
    s = s.str.replace(r"\s+", " ", regex=True).str.strip()
    return s.mask(s == "")


def _int_or_minus_one(values: np.ndarray) -> np.ndarray:
    """``values`` as int64, -1 where a value is missing or not a number."""
    return pd.to_numeric(pd.Series(values), errors="coerce").fillna(-1).astype("int64").to_numpy()


def _timestamp_text(ts: pd.Series) -> pd.Series:
    # Day-first, as the Vietnamese Google Sheet shows it, so the officer finds the cell.
    return ts.dt.strftime("%d/%m/%Y %H:%M:%S").fillna("")


# --- the step -----------------------------------------------------------------------------


def validate(
    questionnaire: Questionnaire,
    parsed: Sequence[Parsed],
    window: tuple[dt.datetime, dt.datetime],
) -> list[Parsed]:
    """Validate every staged sheet of one questionnaire in one GX run per frame.

    ``window`` is the campaign's (opens, closes) in naive local time; responses without a
    timestamp (paper forms) are kept. Returns new Parsed objects in the order given: rejected
    answers and responses moved from ``answers``/``responses`` to ``rejections`` with the rule
    and reason of the expectation they failed. The input objects are not modified.
    """
    parsed = list(parsed)
    if not parsed:
        return []
    code = questionnaire.code
    strangers = sorted({p.questionnaire for p in parsed} - {code})
    if strangers:
        raise ValueError(f"validate({code}) was given sheets parsed as {', '.join(strangers)}")
    responses = _judge_responses(questionnaire, parsed, window)
    # response identity across sources: response_no restarts at 1 in every sheet
    rejected = responses.rejected
    resp_no = _int_or_minus_one(responses.columns["response_no"])
    rejected_ids = (responses.src[rejected].astype("int64") << 32) | resp_no[rejected]
    answers = _judge_answers(questionnaire, parsed, rejected_ids)
    new_rejections, slices = _new_rejections(questionnaire, parsed, responses, answers)
    out = []
    for i, p in enumerate(parsed):
        answers_kept = answers.kept[answers.offsets[i] : answers.offsets[i + 1]]
        responses_kept = ~rejected[responses.offsets[i] : responses.offsets[i + 1]]
        rejections = p.rejections
        if new_rejections is not None:
            rejections = _append(p.rejections, new_rejections.iloc[slices[i] : slices[i + 1]])
        out.append(
            dataclasses.replace(
                p,
                answers=_kept(p.answers, answers_kept),
                responses=_kept(p.responses, responses_kept),
                rejections=rejections,
            )
        )
    return out


@dataclasses.dataclass
class _Judged:
    """One frame of a batch judged: its columns over all sources, and per row the source, the
    rule it failed (None if none) and whether it is rejected (and kept)."""

    columns: dict[str, np.ndarray]
    src: np.ndarray
    offsets: np.ndarray
    rule: np.ndarray
    rejected: np.ndarray
    kept: np.ndarray


def _kept(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    return frame if keep.all() else frame[keep].reset_index(drop=True)


def _judge_responses(
    questionnaire: Questionnaire, parsed: list[Parsed], window: tuple[dt.datetime, dt.datetime]
) -> _Judged:
    """The responses of every source in one run."""
    responses = [p.responses for p in parsed]
    columns = {c: _column(responses, c) for c in ("response_no", "row", "service")}
    submitted_at = _timestamps(responses)
    columns["submitted_at"] = submitted_at.to_numpy()
    offsets = _offsets([len(r) for r in responses])
    src = np.repeat(np.arange(len(parsed)), np.diff(offsets))
    count = int(offsets[-1])
    frame = pd.DataFrame(
        {
            "row_key": np.arange(count, dtype="int64"),
            "submitted_at": submitted_at,
        }
    )
    if questionnaire.kind == "service_review":
        frame["source_idx"] = src
        frame["service"] = _service_key(pd.Series(columns["service"]))
    opens, closes = window
    failed = _run(questionnaire.code, RESPONSES, frame, {"opens": opens, "closes": closes})
    rule = np.full(count, None, dtype=object)
    rule[failed.index.to_numpy()] = failed.to_numpy(dtype=object)
    rejected = pd.notna(rule)
    return _Judged(columns, src, offsets, rule, rejected, ~rejected)


def _judge_answers(
    questionnaire: Questionnaire, parsed: list[Parsed], rejected_ids: np.ndarray
) -> _Judged:
    """The answers of every source in one run; the answers of a rejected response go with it
    (reported once, as the response)."""
    code = questionnaire.code
    answers = [p.answers for p in parsed]
    columns = {c: _column(answers, c) for c in _ANSWER_COLUMNS}
    offsets = _offsets([len(a) for a in answers])
    src = np.repeat(np.arange(len(parsed)), np.diff(offsets))
    count = int(offsets[-1])
    params = {"question_codes": [i.code for i in questionnaire.scored_items]}
    # raw text is read by no expectation of today's suites (it is there for the school to
    # see): when so, it is neither converted nor part of the distinct rows.
    builders = {
        "question_code": lambda: _text(columns["question_code"]),
        "kind": lambda: _text(columns["kind"]),
        "value": lambda: pd.to_numeric(columns["value"], errors="coerce").astype("float64"),
        "raw": lambda: _text(_column(answers, "raw")),
    }
    compiled = _compiled(code)
    frame = pd.DataFrame(
        {
            "row_key": np.arange(count, dtype="int64"),
            **{c: build() for c, build in builders.items() if compiled.reads(ANSWERS, c, params)},
        }
    )
    failed = _run(code, ANSWERS, frame, params)
    ids = (src.astype("int64") << 32) | _int_or_minus_one(columns["response_no"])
    in_rejected_response = np.isin(ids, rejected_ids)
    rule = np.full(count, None, dtype=object)
    rule[failed.index.to_numpy()] = failed.to_numpy(dtype=object)
    rule[in_rejected_response] = None
    rejected = pd.notna(rule)
    kept = ~(rejected | in_rejected_response)
    return _Judged(columns, src, offsets, rule, rejected, kept)


def _new_rejections(
    questionnaire: Questionnaire, parsed: list[Parsed], responses: _Judged, answers: _Judged
) -> tuple[pd.DataFrame | None, np.ndarray]:
    """The rejections of the batch and where each source's slice of them starts.

    Sorted by source, then sheet cell, so each Parsed's rejections are one slice and read in
    the order the feedback workbook lists them. Most batches reject nothing: no frames then.
    """
    n_src = len(parsed)
    if not (responses.rejected.any() or answers.rejected.any()):
        return None, np.zeros(n_src + 1, dtype="int64")
    checks = _compiled(questionnaire.code).checks
    sheets = np.array([p.sheet for p in parsed], dtype=object)
    frames = [p.answers for p in parsed]
    answers.columns |= {c: _column(frames, c) for c in _ANSWER_CELL_COLUMNS}
    value_rej = _answer_rejections(
        answers.columns, answers.rule, answers.rejected, answers.src, sheets, checks
    )
    resp_rej = _response_rejections(
        responses.columns,
        responses.rule,
        responses.rejected,
        responses.src,
        sheets,
        checks,
        questionnaire,
    )
    new = pd.concat([resp_rej, value_rej], ignore_index=True)
    new["_src"] = np.concatenate([responses.src[responses.rejected], answers.src[answers.rejected]])
    new = new.sort_values(["_src", "row", "col"], kind="stable", na_position="first")
    slices = np.searchsorted(new["_src"].to_numpy(), np.arange(n_src + 1))
    return new.drop(columns="_src").reset_index(drop=True), slices


def _answer_rejections(
    ans: dict[str, np.ndarray],
    rule: np.ndarray,
    rejected: np.ndarray,
    src: np.ndarray,
    sheets: np.ndarray,
    checks: dict[str, _Check],
) -> pd.DataFrame:
    bad = {c: v[rejected] for c, v in ans.items()}
    rules = pd.Series(rule[rejected], dtype="str")
    return pd.DataFrame(
        {
            "scope": rules.map({r: c.scope for r, c in checks.items()}).to_numpy(),
            "sheet": sheets[src[rejected]],
            "row": bad["row"],
            "col": bad["col"],
            "question_code": bad["question_code"],
            "raw_value": bad["raw"],
            "rule": rules.to_numpy(),
            "reason": rules.map({r: c.reason for r, c in checks.items()}).to_numpy(),
            "response_no": bad["response_no"],
        },
        columns=REJECTION_COLUMNS,
    ).astype(_REJECTION_DTYPES)


def _response_rejections(
    resp: dict[str, np.ndarray],
    rule: np.ndarray,
    rejected: np.ndarray,
    src: np.ndarray,
    sheets: np.ndarray,
    checks: dict[str, _Check],
    questionnaire: Questionnaire,
) -> pd.DataFrame:
    bad = {c: v[rejected] for c, v in resp.items()}
    rules = pd.Series(rule[rejected], dtype="str")
    # A response-level rule looks at the timestamp or at the service; the rejection names that
    # field (TIMESTAMP, or the service item such as DICH_VU) and shows its value.
    about_service = (
        rules.map({r: "service" in c.columns for r, c in checks.items()}).astype(bool).to_numpy()
    )
    service_code = questionnaire.service_item or "SERVICE"
    raw = np.where(
        about_service,
        pd.Series(bad["service"]).astype("str").fillna("").to_numpy(),
        _timestamp_text(pd.to_datetime(pd.Series(bad["submitted_at"]), errors="coerce")).to_numpy(),
    )
    return pd.DataFrame(
        {
            "scope": rules.map({r: c.scope for r, c in checks.items()}).to_numpy(),
            "sheet": sheets[src[rejected]],
            "row": bad["row"],
            "col": pd.NA,
            "question_code": np.where(about_service, service_code, TIMESTAMP_CODE),
            "raw_value": raw,
            "rule": rules.to_numpy(),
            "reason": rules.map({r: c.reason for r, c in checks.items()}).to_numpy(),
            "response_no": bad["response_no"],
        },
        columns=REJECTION_COLUMNS,
    ).astype(_REJECTION_DTYPES)


def _append(existing: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    # concat with an empty frame would let its all-object dtypes decide the result's dtypes
    if new.empty:
        return existing
    if existing.empty:
        return new.reset_index(drop=True)
    return pd.concat([existing, new], ignore_index=True)
