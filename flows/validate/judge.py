"""Each frame of a batch (responses, answers) judged over all its sources in one GX run.

The frames' rows are numbered by ``row_key`` across the sources; what GX finds unexpected
comes back by that key as the rule each row failed. The answers of a rejected response are
not judged apart: they go with their response, reported once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from flows.validate.distinct import failed_rules
from flows.validate.frames import (
    int_or_minus_one,
    offsets,
    service_key,
    stacked,
    stacked_timestamps,
    text_column,
)
from flows.validate.suites import ANSWERS, RESPONSES, compiled_suite
from schemas.questionnaire import Questionnaire
from schemas.records import Parsed

#: Answer columns every validation reads; the others only for the rows it rejects.
_ANSWER_COLUMNS = ["response_no", "question_code", "kind", "value"]


@dataclasses.dataclass
class Judged:
    """One frame of a batch judged: its columns over all sources, and per row the source, the
    rule it failed (None if none) and whether it is rejected (and kept)."""

    columns: dict[str, np.ndarray]
    src: np.ndarray
    offsets: np.ndarray
    rule: np.ndarray
    rejected: np.ndarray
    kept: np.ndarray


def response_ids(src: np.ndarray, response_no: np.ndarray) -> np.ndarray:
    """Each response's identity across sources (response_no restarts at 1 in every sheet)."""
    return (src.astype("int64") << 32) | int_or_minus_one(response_no)


def judge_responses(
    questionnaire: Questionnaire, parsed: list[Parsed], window: tuple[dt.datetime, dt.datetime]
) -> Judged:
    """The responses of every source in one run."""
    responses = [sheet.responses for sheet in parsed]
    columns = {name: stacked(responses, name) for name in ("response_no", "row", "service")}
    submitted_at = stacked_timestamps(responses)
    columns["submitted_at"] = submitted_at.to_numpy()
    starts = offsets([len(frame) for frame in responses])
    src = np.repeat(np.arange(len(parsed)), np.diff(starts))
    count = int(starts[-1])
    frame = pd.DataFrame(
        {
            "row_key": np.arange(count, dtype="int64"),
            "submitted_at": submitted_at,
        }
    )
    if questionnaire.kind == "service_review":
        frame["source_idx"] = src
        frame["service"] = service_key(pd.Series(columns["service"]))
    opens, closes = window
    failed = failed_rules(questionnaire.code, RESPONSES, frame, {"opens": opens, "closes": closes})
    rule = np.full(count, None, dtype=object)
    rule[failed.index.to_numpy()] = failed.to_numpy(dtype=object)
    rejected = pd.notna(rule)
    return Judged(columns, src, starts, rule, rejected, ~rejected)


def judge_answers(
    questionnaire: Questionnaire, parsed: list[Parsed], rejected_ids: np.ndarray
) -> Judged:
    """The answers of every source in one run; the answers of a rejected response (by
    ``response_ids``) go with it (reported once, as the response)."""
    code = questionnaire.code
    answers = [sheet.answers for sheet in parsed]
    columns = {name: stacked(answers, name) for name in _ANSWER_COLUMNS}
    starts = offsets([len(frame) for frame in answers])
    src = np.repeat(np.arange(len(parsed)), np.diff(starts))
    count = int(starts[-1])
    params = {"question_codes": [i.code for i in questionnaire.scored_items]}
    # raw text is read by no expectation of today's suites (it is there for the school to
    # see): when so, it is neither converted nor part of the distinct rows.
    builders = {
        "question_code": lambda: text_column(columns["question_code"]),
        "kind": lambda: text_column(columns["kind"]),
        "value": lambda: pd.to_numeric(columns["value"], errors="coerce").astype("float64"),
        "raw": lambda: text_column(stacked(answers, "raw")),
    }
    compiled = compiled_suite(code)
    frame = pd.DataFrame(
        {
            "row_key": np.arange(count, dtype="int64"),
            **{
                name: build()
                for name, build in builders.items()
                if compiled.reads(ANSWERS, name, params)
            },
        }
    )
    failed = failed_rules(code, ANSWERS, frame, params)
    in_rejected_response = np.isin(response_ids(src, columns["response_no"]), rejected_ids)
    rule = np.full(count, None, dtype=object)
    rule[failed.index.to_numpy()] = failed.to_numpy(dtype=object)
    rule[in_rejected_response] = None
    rejected = pd.notna(rule)
    kept = ~(rejected | in_rejected_response)
    return Judged(columns, src, starts, rule, rejected, kept)
