"""The questionnaires' expectation suites, compiled per frame, and a suite's verdict on a frame.

The suite is ``expectations/<CODE>.json``; each expectation's ``meta`` says which frame it
checks (answers, or responses), what it rejects (one answer, or a whole response), and the
reason and fix shown to the school. A row failing several expectations is reported by the
first of them in the suite.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from expectations import SUITES_DIR
from flows.validate.frames import for_gx
from flows.validate.gx import GX_LOCK, SuiteError, batch_definition, unexpected_rows

if TYPE_CHECKING:
    from great_expectations.core.expectation_suite import ExpectationSuite

ANSWERS = "answers"
RESPONSES = "responses"

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
class Check:
    """What the code needs of one expectation: its meta and the response field it looks at."""

    position: int  # precedence: a row failing several checks is reported by the first
    rule: str
    reason: str
    scope: str
    columns: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Compiled:
    """A questionnaire's suite split per frame into GX objects, with what the code reads of it."""

    suites: dict[str, ExpectationSuite]  # frame -> GX suite of that frame's expectations
    checks: dict[str, Check]  # rule -> check
    row_wise: frozenset[str]  # frames whose every expectation judges each row on its own
    kwargs_text: dict[str, str]  # frame -> its expectations' kwargs as JSON (see reads)
    #: Verdicts of the distinct rows of row-wise frames already validated with this suite, per
    #: (frame, parameters): the row's values -> its first failing rule, or None (kept and
    #: bounded by ``flows.validate.distinct``; they go when the compiled suite does).
    verdicts: dict[tuple[str, str], dict[tuple[Any, ...], str | None]] = dataclasses.field(
        default_factory=dict, compare=False
    )

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


@functools.cache
def compiled_suite(code: str) -> Compiled:
    """The suite of ``code`` split per frame into GX objects (built once per process)."""
    with GX_LOCK:
        return _compile(code)


def _compile(code: str) -> Compiled:
    batch_definition()  # the context (and GX's quiet logging) before the first expectation
    import great_expectations as gx

    data = load_suite(code)
    by_frame: dict[str, list[dict[str, Any]]] = {ANSWERS: [], RESPONSES: []}
    checks: dict[str, Check] = {}
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
        checks[meta["rule"]] = Check(position, meta["rule"], meta["reason"], meta["scope"], columns)
        by_frame[meta["frame"]].append(exp)
    suites = {
        frame: gx.ExpectationSuite(name=f"{code}.{frame}", expectations=exps)
        for frame, exps in by_frame.items()
    }
    row_wise = frozenset(
        frame for frame, exps in by_frame.items() if all(judges_each_row(e) for e in exps)
    )
    kwargs_text = {
        frame: json.dumps([e.get("kwargs", {}) for e in exps], default=str, ensure_ascii=False)
        for frame, exps in by_frame.items()
    }
    return Compiled(suites, checks, row_wise, kwargs_text)


def judges_each_row(exp: dict[str, Any]) -> bool:
    """Whether expectation ``exp`` (as stored) judges each row on that row's values alone."""
    # ``mostly`` below 1 makes a row's verdict depend on how many rows fail, which showing
    # each distinct row once would change.
    return exp["type"] in ROW_WISE_EXPECTATIONS and exp.get("kwargs", {}).get("mostly", 1) == 1


def no_failures() -> pd.Series:
    """The verdict of a frame none of whose rows failed (see ``run_frame``)."""
    return pd.Series([], index=pd.Index([], dtype="int64"), dtype="str")


def run_frame(
    code: str,
    compiled: Compiled,
    suite: ExpectationSuite,
    frame: pd.DataFrame,
    parameters: dict[str, Any],
) -> pd.Series:
    """One GX validation of ``frame``: the first failing rule of each unexpected row_key.

    Returns a str Series indexed by row_key holding only the rows that failed.
    """
    failed = unexpected_rows(code, suite, for_gx(frame), parameters)
    if not failed:
        return no_failures()
    # GX's results are not in suite order, so precedence comes from the check's position.
    table = pd.DataFrame(
        {
            "row_key": np.concatenate([found for _, found in failed]),
            "pos": np.concatenate(
                [np.full(len(found), compiled.checks[rule].position) for rule, found in failed]
            ),
            "rule": np.concatenate(
                [np.full(len(found), rule, dtype=object) for rule, found in failed]
            ),
        }
    )
    table = table.sort_values(["row_key", "pos"], kind="stable").drop_duplicates("row_key")
    return pd.Series(table["rule"].to_numpy(), index=table["row_key"].to_numpy(), dtype="str")
