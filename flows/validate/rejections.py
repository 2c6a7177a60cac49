"""Rejected rows mapped back to where the school finds them: source, sheet, row, column.

A rejected answer points at its cell; a rejected response at its row, naming the field the
rule looked at (the timestamp, or the service item) and showing its value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flows.validate.frames import stacked
from flows.validate.judge import Judged
from flows.validate.suites import Check, compiled_suite
from schemas.questionnaire import Questionnaire
from schemas.records import REJECTION_COLUMNS, Parsed

#: question_code of a rejection about the response's timestamp (not an item of any form).
TIMESTAMP_CODE = "TIMESTAMP"

#: Answer columns read only for the rows validation rejects.
_ANSWER_CELL_COLUMNS = ["raw", "row", "col"]
#: As parse writes them: sheet coordinates may be absent (a whole response has no column).
_REJECTION_DTYPES = {"row": "Int64", "col": "Int64", "response_no": "Int64"}


def new_rejections(
    questionnaire: Questionnaire, parsed: list[Parsed], responses: Judged, answers: Judged
) -> tuple[pd.DataFrame | None, np.ndarray]:
    """The rejections of the batch and where each source's slice of them starts.

    Sorted by source, then sheet cell, so each Parsed's rejections are one slice and read in
    the order the feedback workbook lists them. Most batches reject nothing: no frames then.
    """
    n_src = len(parsed)
    if not (responses.rejected.any() or answers.rejected.any()):
        return None, np.zeros(n_src + 1, dtype="int64")
    checks = compiled_suite(questionnaire.code).checks
    sheets = np.array([source.sheet for source in parsed], dtype=object)
    frames = [source.answers for source in parsed]
    answers.columns |= {name: stacked(frames, name) for name in _ANSWER_CELL_COLUMNS}
    value_rej = _answer_rejections(answers, sheets, checks)
    resp_rej = _response_rejections(responses, sheets, checks, questionnaire)
    new = pd.concat([resp_rej, value_rej], ignore_index=True)
    new["_src"] = np.concatenate([responses.src[responses.rejected], answers.src[answers.rejected]])
    new = new.sort_values(["_src", "row", "col"], kind="stable", na_position="first")
    slices = np.searchsorted(new["_src"].to_numpy(), np.arange(n_src + 1))
    return new.drop(columns="_src").reset_index(drop=True), slices


def _answer_rejections(
    answers: Judged, sheets: np.ndarray, checks: dict[str, Check]
) -> pd.DataFrame:
    rejected = answers.rejected
    bad = {name: values[rejected] for name, values in answers.columns.items()}
    rules = pd.Series(answers.rule[rejected], dtype="str")
    return pd.DataFrame(
        {
            "scope": rules.map({rule: check.scope for rule, check in checks.items()}).to_numpy(),
            "sheet": sheets[answers.src[rejected]],
            "row": bad["row"],
            "col": bad["col"],
            "question_code": bad["question_code"],
            "raw_value": bad["raw"],
            "rule": rules.to_numpy(),
            "reason": rules.map({rule: check.reason for rule, check in checks.items()}).to_numpy(),
            "response_no": bad["response_no"],
        },
        columns=REJECTION_COLUMNS,
    ).astype(_REJECTION_DTYPES)


def _response_rejections(
    responses: Judged, sheets: np.ndarray, checks: dict[str, Check], questionnaire: Questionnaire
) -> pd.DataFrame:
    rejected = responses.rejected
    bad = {name: values[rejected] for name, values in responses.columns.items()}
    rules = pd.Series(responses.rule[rejected], dtype="str")
    # A response-level rule looks at the timestamp or at the service; the rejection names that
    # field (TIMESTAMP, or the service item such as DICH_VU) and shows its value.
    about_service = (
        rules.map({rule: "service" in check.columns for rule, check in checks.items()})
        .astype(bool)
        .to_numpy()
    )
    service_code = questionnaire.service_item or "SERVICE"
    raw = np.where(
        about_service,
        pd.Series(bad["service"]).astype("str").fillna("").to_numpy(),
        _timestamp_text(pd.to_datetime(pd.Series(bad["submitted_at"]), errors="coerce")).to_numpy(),
    )
    return pd.DataFrame(
        {
            "scope": rules.map({rule: check.scope for rule, check in checks.items()}).to_numpy(),
            "sheet": sheets[responses.src[rejected]],
            "row": bad["row"],
            "col": pd.NA,
            "question_code": np.where(about_service, service_code, TIMESTAMP_CODE),
            "raw_value": raw,
            "rule": rules.to_numpy(),
            "reason": rules.map({rule: check.reason for rule, check in checks.items()}).to_numpy(),
            "response_no": bad["response_no"],
        },
        columns=REJECTION_COLUMNS,
    ).astype(_REJECTION_DTYPES)


def _timestamp_text(timestamps: pd.Series) -> pd.Series:
    # Day-first, as the Vietnamese Google Sheet shows it, so the officer finds the cell.
    return timestamps.dt.strftime("%d/%m/%Y %H:%M:%S").fillna("")


def appended(existing: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """``existing`` rejections followed by ``new`` ones (either may be empty)."""
    # concat with an empty frame would let its all-object dtypes decide the result's dtypes
    if new.empty:
        return existing
    if existing.empty:
        return new.reset_index(drop=True)
    return pd.concat([existing, new], ignore_index=True)
