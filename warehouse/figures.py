"""Per-source figures: the sums every mart is built from, computed once when a source loads.

A mart pools answers over schools, units or the province. Every figure it publishes (counts,
means, percentages, ranks) is a ratio of sums, and every respondent belongs to exactly one
source, so the sums per source add up: the marts are rebuilt from a few rows per source
(``figure_source``, ``figure_source_dimension``, ``figure_source_question``) instead of from
every answer of the campaign. A source's figures are written in the same transaction as its
answers (``warehouse.load.replace_source``), so they never disagree with them.

The formulas are DOMAIN.md's "Indices", as ``warehouse.marts`` documents them:

- a *valid* answer has a value in its kind's range: likert 1–5, yesno 0/1, level 0/3/5/7/10,
  percent 0–100; an unreadable value (NaN) is never valid;
- a dimension pools the valid Likert answers of its items; the 0–100 expectation item forms the
  ``MONG_DOI`` dimension, with no satisfied/dissatisfied counts;
- a respondent counts in a dimension when it has at least one valid answer there.

Pure functions of DataFrames: no IO here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Likert values counted as satisfied / dissatisfied (top-2 and bottom-2 boxes).
SATISFIED_MIN = 4
DISSATISFIED_MAX = 2

#: The dimension label of the 0–100 expectation item (answer kind 'percent').
EXPECTATION_DIMENSION = "MONG_DOI"

#: Valid values per answer kind (percent is a range, below).
VALID_VALUES = {
    "likert": (1, 2, 3, 4, 5),
    "yesno": (0, 1),
    "level": (0, 3, 5, 7, 10),
}

#: Kinds whose per-question counts feed a mart (unit questions, PAPI, service ranking).
QUESTION_KINDS = ("likert", "yesno", "level")

DIMENSION_COLUMNS = [
    "dimension",
    "n_respondents",
    "n_answers",
    "total",
    "n_satisfied",
    "n_dissatisfied",
]
QUESTION_COLUMNS = [
    "question_code",
    "service",
    "n_answers",
    "n_1",
    "n_2",
    "n_3",
    "n_4",
    "n_5",
    "total",
]


@dataclass(frozen=True)
class SourceFigures:
    """One source's sums.

    n_valid_responses: responses with at least one valid answer (completeness's n_valid).
    dimensions: DIMENSION_COLUMNS, one row per dimension with a valid answer (n_satisfied and
        n_dissatisfied are NaN for MONG_DOI).
    questions: QUESTION_COLUMNS, one row per (question, service) of a likert, yesno or level
        item with a valid answer; service is '' outside service reviews; n_k counts value k.
    """

    n_valid_responses: int
    dimensions: pd.DataFrame
    questions: pd.DataFrame


def valid_mask(kind: np.ndarray, value: np.ndarray) -> np.ndarray:
    """True where ``value`` is in the range of its answer ``kind`` (arrays of equal length)."""
    mask = np.zeros(len(value), dtype=bool)
    for k, allowed in VALID_VALUES.items():
        mask |= (kind == k) & np.isin(value, allowed)
    mask |= (kind == "percent") & (value >= 0) & (value <= 100)
    return mask


def source_figures(
    answers: pd.DataFrame, questions: pd.DataFrame, services: pd.Series | None = None
) -> SourceFigures:
    """The sums of one source's answers.

    ``answers``: response_no, question_code, value (float, NaN if unreadable).
    ``questions``: the questionnaire's items, indexed by question_code, with kind and dimension
    (None when the item belongs to no dimension). ``services``: the service named by each
    response (indexed by response_no, as stored in ``response.service``), for service
    reviews; None otherwise.
    """
    # Grouping is by small integer codes with bincount rather than DataFrame.groupby: a source
    # has a few thousand answers and a province a thousand sources, so per-call overhead counts.
    code, codes = pd.factorize(answers["question_code"].to_numpy(dtype=object), sort=True)
    items = questions.reindex(pd.Index(codes, dtype=object))
    kind = items["kind"].to_numpy(dtype=object)[code] if len(code) else np.array([], dtype=object)
    value = answers["value"].to_numpy(dtype="float64")
    response = answers["response_no"].to_numpy(dtype="int64")
    valid = valid_mask(kind, value)
    service: np.ndarray | None = None
    if services is not None:
        service = services.reindex(response).fillna("").to_numpy(dtype=object)
    return SourceFigures(
        n_valid_responses=len(np.unique(response[valid])),
        dimensions=_dimensions(items, code[valid], response[valid], value[valid]),
        questions=_questions(
            items,
            code[valid],
            value[valid],
            service[valid] if service is not None else None,
        ),
    )


def _dimensions(
    items: pd.DataFrame, code: np.ndarray, response: np.ndarray, value: np.ndarray
) -> pd.DataFrame:
    item_kind = items["kind"].to_numpy(dtype=object)
    item_dimension = items["dimension"].to_numpy(dtype=object)
    label = np.where(item_kind == "percent", EXPECTATION_DIMENSION, item_dimension)
    in_dimension = (item_kind == "percent") | ((item_kind == "likert") & pd.notna(item_dimension))
    labels = sorted({str(x) for x in label[in_dimension]})
    if not labels or not len(code):
        return pd.DataFrame(columns=DIMENSION_COLUMNS)
    index = {x: i for i, x in enumerate(labels)}
    dim_of_item = np.array(
        [index[str(x)] if ok else -1 for x, ok in zip(label, in_dimension, strict=True)],
        dtype="int64",
    )
    dim = dim_of_item[code]
    keep = dim >= 0
    dim, response, value = dim[keep], response[keep], value[keep]
    n = len(labels)
    n_answers = np.bincount(dim, minlength=n)
    pairs = np.unique(dim * (int(response.max(initial=0)) + 1) + response)
    n_respondents = np.bincount(pairs // (int(response.max(initial=0)) + 1), minlength=n)
    likert = np.array([x != EXPECTATION_DIMENSION for x in labels])
    sat = np.bincount(dim, weights=value >= SATISFIED_MIN, minlength=n)
    dis = np.bincount(dim, weights=value <= DISSATISFIED_MAX, minlength=n)
    out = pd.DataFrame(
        {
            "dimension": labels,
            "n_respondents": n_respondents,
            "n_answers": n_answers,
            "total": np.bincount(dim, weights=value, minlength=n),
            # none for MONG_DOI: satisfied means nothing on a 0-100 scale
            "n_satisfied": pd.array(np.where(likert, sat, np.nan)).astype("Int64"),
            "n_dissatisfied": pd.array(np.where(likert, dis, np.nan)).astype("Int64"),
        }
    )
    return out[out["n_answers"] > 0].reset_index(drop=True)[DIMENSION_COLUMNS]


def _questions(
    items: pd.DataFrame, code: np.ndarray, value: np.ndarray, service: np.ndarray | None
) -> pd.DataFrame:
    counted = np.isin(items["kind"].to_numpy(dtype=object), QUESTION_KINDS)[code]
    if not counted.any():
        return pd.DataFrame(columns=QUESTION_COLUMNS)
    code, value = code[counted], value[counted]
    if service is None:
        svc, services = np.zeros(len(code), dtype="int64"), np.array([""], dtype=object)
    else:
        svc, services = pd.factorize(service[counted], sort=True)
    group, first = np.unique(code * len(services) + svc, return_inverse=True)
    n = len(group)
    out = pd.DataFrame(
        {
            "question_code": items.index.to_numpy(dtype=object)[group // len(services)],
            "service": np.asarray(services, dtype=object)[group % len(services)],
            "n_answers": np.bincount(first, minlength=n),
            **{
                f"n_{k}": np.bincount(first, weights=value == k, minlength=n).astype("int64")
                for k in range(1, 6)
            },
            "total": np.bincount(first, weights=value, minlength=n),
        }
    )
    return out[QUESTION_COLUMNS]
