"""Validate staged rows with the questionnaire's Great Expectations suite.

One GX run per frame per questionnaire over every sheet staged in this run (never per file: a
run's fixed cost is paid once, and the rules are the same for every school). The suite is
``expectations/<CODE>.json``; each expectation's ``meta`` says which frame it checks, what it
rejects (one answer, or a whole response), and the reason and fix shown to the school.

Frames (built here, vectorised, from the Parsed of all sources):

- answers: row_key, question_code, kind, value, raw: one row per scored answer;
- responses: row_key, submitted_at, and for service reviews source_idx and service.

Unexpected rows come back from GX by ``row_key`` and are mapped to their Parsed and cell.
A rejected answer is removed alone; a rejected response is removed with all its answers and
reported once. Nothing disappears: every removal is a row of the Parsed's ``rejections``.
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
from flows.records import REJECTION_COLUMNS, Parsed
from schemas.questionnaire import Questionnaire

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

_ANSWER_COLUMNS = ["response_no", "question_code", "kind", "value", "raw", "row", "col"]
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
        frame
        for frame, exps in by_frame.items()
        if all(e["type"] in ROW_WISE_EXPECTATIONS for e in exps)
    )
    return _Compiled(suites, checks, row_wise)


def _distinct(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct rows of ``frame`` (row_key aside), keyed 0..k-1, and each row's key."""
    codes = [
        pd.factorize(frame[c], use_na_sentinel=False)[0].astype("int64")
        for c in frame.columns
        if c != "row_key"
    ]
    combined = np.zeros(len(frame), dtype="int64")
    for c in codes:
        # re-factorised after each column, so the combined code never outgrows int64
        combined = pd.factorize(combined * (int(c.max(initial=0)) + 1) + c)[0].astype("int64")
    group, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    distinct = frame.iloc[first].copy()
    distinct["row_key"] = np.arange(len(group), dtype="int64")
    return distinct.reset_index(drop=True), inverse


# --- GX context ---------------------------------------------------------------------------


def warm_up() -> threading.Thread:
    """Create the GX context (importing GX: ~3.5 s) in a background thread and return it.

    A run calls this when it starts ingesting: the flow's thread then mostly waits for the
    first batch to be fetched and parsed, so the import costs the run nothing instead of
    seconds before the first validation. A failure here is left to the first validation,
    which makes the context again and reports it.
    """

    def create() -> None:
        try:
            _gx_batch_definition()
        except Exception:  # noqa: BLE001, S110 - the first validation raises it, with context
            pass

    thread = threading.Thread(target=create, name="khaosat-gx-warm-up", daemon=True)
    thread.start()
    return thread


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
    if frame_name in compiled.row_wise:
        distinct, inverse = _distinct(frame)
        if len(distinct) < len(frame):
            failed = _run_frame(code, compiled, suite, distinct, parameters)
            hit = np.isin(inverse, failed.index.to_numpy())
            rules = failed.reindex(inverse[hit]).to_numpy(dtype=object)
            return pd.Series(rules, index=frame["row_key"].to_numpy()[hit], dtype="str")
    return _run_frame(code, compiled, suite, frame, parameters)


def _run_frame(
    code: str,
    compiled: _Compiled,
    suite: ExpectationSuite,
    frame: pd.DataFrame,
    parameters: dict[str, Any],
) -> pd.Series:
    """One GX validation of ``frame``: the first failing rule of each unexpected row_key."""
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


def _stack(frames: Sequence[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    """All frames one under the other, with exactly ``columns`` (absent ones as NA)."""
    parts = [f.reindex(columns=list(columns)) for f in frames]
    if not parts:
        return pd.DataFrame(columns=list(columns))
    return pd.concat(parts, ignore_index=True)


def _service_key(names: pd.Series) -> pd.Series:
    """Service names compared as a reader would: NFC, case, and spacing ignored; blank = NA."""
    s = names.astype("str").str.normalize("NFC").str.casefold()
    s = s.str.replace(r"\s+", " ", regex=True).str.strip()
    return s.mask(s == "")


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
    n_src = len(parsed)
    checks = _compiled(code).checks

    # -- responses: one run, then the (source, response_no) pairs rejected whole
    resp = _stack([p.responses for p in parsed], ["response_no", "row", "submitted_at", "service"])
    r_off = _offsets([len(p.responses) for p in parsed])
    r_src = np.repeat(np.arange(n_src), np.diff(r_off))
    resp_frame = pd.DataFrame(
        {
            "row_key": np.arange(len(resp), dtype="int64"),
            "submitted_at": pd.to_datetime(resp["submitted_at"], errors="coerce"),
        }
    )
    if questionnaire.kind == "service_review":
        resp_frame["source_idx"] = r_src
        resp_frame["service"] = _service_key(resp["service"])
    opens, closes = window
    resp_failed = _run(code, RESPONSES, resp_frame, {"opens": opens, "closes": closes})
    resp_rule = np.full(len(resp), None, dtype=object)
    resp_rule[resp_failed.index.to_numpy()] = resp_failed.to_numpy(dtype=object)
    resp_rejected = pd.notna(resp_rule)
    # response identity across sources: response_no restarts at 1 in every sheet
    resp_no = pd.to_numeric(resp["response_no"], errors="coerce").fillna(-1).astype("int64")
    rejected_ids = (r_src[resp_rejected].astype("int64") << 32) | resp_no.to_numpy()[resp_rejected]

    # -- answers: one run over all sources
    ans = _stack([p.answers for p in parsed], _ANSWER_COLUMNS)
    a_off = _offsets([len(p.answers) for p in parsed])
    a_src = np.repeat(np.arange(n_src), np.diff(a_off))
    ans_frame = pd.DataFrame(
        {
            "row_key": np.arange(len(ans), dtype="int64"),
            "question_code": ans["question_code"].astype("str"),
            "kind": ans["kind"].astype("str"),
            "value": pd.to_numeric(ans["value"], errors="coerce").astype("float64"),
            "raw": ans["raw"].astype("str"),
        }
    )
    codes = [i.code for i in questionnaire.scored_items]
    ans_failed = _run(code, ANSWERS, ans_frame, {"question_codes": codes})
    ans_no = pd.to_numeric(ans["response_no"], errors="coerce").fillna(-1).astype("int64")
    ans_ids = (a_src.astype("int64") << 32) | ans_no.to_numpy()
    # answers of a rejected response go with it (reported once, as the response)
    in_rejected_resp = np.isin(ans_ids, rejected_ids)
    ans_rule = np.full(len(ans), None, dtype=object)
    ans_rule[ans_failed.index.to_numpy()] = ans_failed.to_numpy(dtype=object)
    ans_rule[in_rejected_resp] = None
    ans_rejected = pd.notna(ans_rule)
    ans_keep = ~(ans_rejected | in_rejected_resp)

    sheets = np.array([p.sheet for p in parsed], dtype=object)
    value_rej = _answer_rejections(ans, ans_rule, ans_rejected, a_src, sheets, checks)
    resp_rej = _response_rejections(
        resp, resp_rule, resp_rejected, r_src, sheets, checks, questionnaire
    )
    # Sorted by source, then sheet cell, so each Parsed's rejections are one slice and read in
    # the order the feedback workbook lists them.
    new_rej = pd.concat([resp_rej, value_rej], ignore_index=True)
    new_rej["_src"] = np.concatenate([r_src[resp_rejected], a_src[ans_rejected]])
    new_rej = new_rej.sort_values(["_src", "row", "col"], kind="stable", na_position="first")
    rej_off = np.searchsorted(new_rej["_src"].to_numpy(), np.arange(n_src + 1))
    new_rej = new_rej.drop(columns="_src").reset_index(drop=True)

    out = []
    for i, p in enumerate(parsed):
        a_keep = ans_keep[a_off[i] : a_off[i + 1]]
        r_keep = ~resp_rejected[r_off[i] : r_off[i + 1]]
        mine = new_rej.iloc[rej_off[i] : rej_off[i + 1]]
        out.append(
            dataclasses.replace(
                p,
                answers=p.answers if a_keep.all() else p.answers[a_keep].reset_index(drop=True),
                responses=(
                    p.responses if r_keep.all() else p.responses[r_keep].reset_index(drop=True)
                ),
                rejections=_append(p.rejections, mine),
            )
        )
    return out


def _answer_rejections(
    ans: pd.DataFrame,
    rule: np.ndarray,
    rejected: np.ndarray,
    src: np.ndarray,
    sheets: np.ndarray,
    checks: dict[str, _Check],
) -> pd.DataFrame:
    bad = ans[rejected]
    rules = pd.Series(rule[rejected], dtype="str")
    return pd.DataFrame(
        {
            "scope": rules.map({r: c.scope for r, c in checks.items()}).to_numpy(),
            "sheet": sheets[src[rejected]],
            "row": bad["row"].to_numpy(),
            "col": bad["col"].to_numpy(),
            "question_code": bad["question_code"].to_numpy(),
            "raw_value": bad["raw"].to_numpy(),
            "rule": rules.to_numpy(),
            "reason": rules.map({r: c.reason for r, c in checks.items()}).to_numpy(),
            "response_no": bad["response_no"].to_numpy(),
        },
        columns=REJECTION_COLUMNS,
    ).astype(_REJECTION_DTYPES)


def _response_rejections(
    resp: pd.DataFrame,
    rule: np.ndarray,
    rejected: np.ndarray,
    src: np.ndarray,
    sheets: np.ndarray,
    checks: dict[str, _Check],
    questionnaire: Questionnaire,
) -> pd.DataFrame:
    bad = resp[rejected].reset_index(drop=True)
    rules = pd.Series(rule[rejected], dtype="str")
    # A response-level rule looks at the timestamp or at the service; the rejection names that
    # field (TIMESTAMP, or the service item such as DICH_VU) and shows its value.
    about_service = (
        rules.map({r: "service" in c.columns for r, c in checks.items()}).astype(bool).to_numpy()
    )
    service_code = questionnaire.service_item or "SERVICE"
    raw = np.where(
        about_service,
        bad["service"].astype("str").fillna("").to_numpy(),
        _timestamp_text(pd.to_datetime(bad["submitted_at"], errors="coerce")).to_numpy(),
    )
    return pd.DataFrame(
        {
            "scope": rules.map({r: c.scope for r, c in checks.items()}).to_numpy(),
            "sheet": sheets[src[rejected]],
            "row": bad["row"].to_numpy(),
            "col": pd.NA,
            "question_code": np.where(about_service, service_code, TIMESTAMP_CODE),
            "raw_value": raw,
            "rule": rules.to_numpy(),
            "reason": rules.map({r: c.reason for r, c in checks.items()}).to_numpy(),
            "response_no": bad["response_no"].to_numpy(),
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
