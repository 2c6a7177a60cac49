"""Per-source figures: the sums every mart is built from, computed once when a source loads.

A mart pools answers over schools, units or the province. Every figure it publishes (counts,
means, percentages, ranks) is a ratio of sums, and every respondent belongs to exactly one
source, so the sums per source add up: the marts are rebuilt from a few rows per source
(``figure_source``, ``figure_source_dimension``, ``figure_source_question``) instead of from
every answer of the campaign. A source's figures are written in the same transaction as its
answers (``warehouse.load.replace_source``), so they never disagree with them.

The formulas are DOMAIN.md's "Indices" (``figure_rows``). Pure functions: no IO here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
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
class FigureRows:
    """One source's sums as plain Python values, column by column, ready to insert.

    n_valid_responses: responses with at least one valid answer (completeness's n_valid).
    dimensions: one list per DIMENSION_COLUMNS column, one entry per dimension with a valid
        answer, sorted by dimension (n_satisfied and n_dissatisfied are None for MONG_DOI).
    questions: one list per QUESTION_COLUMNS column, one entry per (question, service) of a
        likert, yesno or level item with a valid answer, sorted by both; service is '' outside
        service reviews; n_k counts value k.
    Values are ints, floats, strings and None only.
    """

    n_valid_responses: int
    dimensions: list[list[Any]]
    questions: list[list[Any]]


# Answer kinds as small integers, so validity is one table lookup per answer rather than a
# string comparison per kind. 0 is any other kind (text, or an item the questionnaire lacks).
_OTHER, _PERCENT = 0, 4
_KIND_CODES = {"likert": 1, "yesno": 2, "level": 3, "percent": _PERCENT}
#: _VALID[kind code, v] says whether the whole number v (0–100) is valid for the kind.
_VALID = np.zeros((len(_KIND_CODES) + 1, 101), dtype=bool)
for _kind, _allowed in VALID_VALUES.items():
    _VALID[_KIND_CODES[_kind], list(_allowed)] = True
#: Histogram width of the counted kinds' values (all whole numbers 0–10).
_WIDTH = 11


@dataclass(frozen=True)
class Items:
    """A questionnaire's items prepared for ``figure_rows``; build with ``prepare_items``.

    Arrays are indexed by item position (items sorted by code) and have one more entry, at
    position ``len(codes)``, for an answer whose code is not an item: it is never valid.
    """

    codes: list[str]
    position: dict[str, int]
    kind: npt.NDArray[np.int64]
    #: index into ``labels`` of the item's dimension, -1 if the item belongs to none.
    dimension: npt.NDArray[np.int64]
    #: whether the item's counts feed the question figures (QUESTION_KINDS).
    counted: npt.NDArray[np.bool_]
    labels: list[str]
    #: per label: a Likert dimension (not MONG_DOI), which has satisfied/dissatisfied counts.
    likert: npt.NDArray[np.bool_]

    def locate(self, question_code: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
        """The item position of each answer's question code (``len(codes)`` if unknown)."""
        # factorize hashes each code once; only its few distinct codes are looked up in Python.
        # A missing code is factorized as -1, the last entry: no item.
        code, uniques = pd.factorize(question_code)
        missing = len(self.codes)
        of_unique = [self.position.get(c, missing) for c in uniques]
        return np.array([*of_unique, missing], dtype=np.int64)[code]


def prepare_items(rows: Iterable[tuple[str, Any, Any]]) -> Items:
    """``Items`` from (question_code, kind, dimension) rows; dimension None/NaN if none."""
    ordered = sorted(((str(c), k, d) for c, k, d in rows), key=lambda r: r[0])
    codes = [c for c, _, _ in ordered]
    kinds = [k if isinstance(k, str) else None for _, k, _ in ordered]
    # As DIMENSIONS documents: percent items form MONG_DOI; a Likert item counts in its
    # dimension; any other item in none.
    label: list[str | None] = [
        EXPECTATION_DIMENSION
        if k == "percent"
        else (str(d) if k == "likert" and not pd.isna(d) else None)
        for _, k, d in ordered
    ]
    labels = sorted({x for x in label if x is not None})
    index = {x: i for i, x in enumerate(labels)}
    return Items(
        codes=codes,
        position={c: i for i, c in enumerate(codes)},
        kind=np.array([_KIND_CODES.get(k or "", _OTHER) for k in kinds] + [_OTHER], np.int64),
        dimension=np.array([index[x] if x is not None else -1 for x in label] + [-1], np.int64),
        counted=np.array([k in QUESTION_KINDS for k in kinds] + [False], dtype=bool),
        labels=labels,
        likert=np.array([x != EXPECTATION_DIMENSION for x in labels], dtype=bool),
    )


def _valid(
    kind: npt.NDArray[np.int64], value: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Validity of each answer (by kind code), and its value as a whole number 0–100 (0 where
    it is not one), which indexes the counts of the counted kinds."""
    in_range = (value >= 0) & (value <= 100)  # False for NaN
    whole = in_range & (np.floor(value) == value)
    number = np.where(whole, value, 0).astype(np.int64)
    valid = np.where(kind == _PERCENT, in_range, whole & _VALID[kind, number])
    return valid, number


def service_codes(
    response_no: npt.NDArray[np.int64], keys: npt.NDArray[np.int64], names: Sequence[Any]
) -> tuple[npt.NDArray[np.int64], list[str]] | None:
    """Each answer's service, as an index into the sorted service names, and those names.

    ``keys`` and ``names`` give each response's service (names[i] of response keys[i]; None or
    NaN for none); an answer whose response has none, or is not listed, has service ''. None
    when no answer has a service (not a service review), which is the same as all ''.
    """
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    if len(sorted_keys) > 1 and (sorted_keys[1:] == sorted_keys[:-1]).any():
        raise ValueError("services: more than one service for the same response_no")
    labels = ["" if pd.isna(s) else s for s in names]
    distinct = sorted(set(labels))
    if not distinct or distinct == [""]:
        return None
    at = np.minimum(np.searchsorted(sorted_keys, response_no), len(sorted_keys) - 1)
    found = sorted_keys[at] == response_no
    if not found.all() and "" not in distinct:
        distinct = sorted([*distinct, ""])
    index = {s: i for i, s in enumerate(distinct)}
    of_response = np.array([index[s] for s in labels], dtype=np.int64)[order]
    return np.where(found, of_response[at], index.get("", 0)), distinct


def figure_rows(
    items: Items,
    code: npt.NDArray[np.int64],
    response_no: npt.NDArray[np.int64],
    value: npt.NDArray[np.float64],
    services: tuple[npt.NDArray[np.int64], list[str]] | None = None,
) -> FigureRows:
    """The sums of one source's answers, as plain rows.

    ``code``: each answer's item position (``Items.locate``); ``response_no`` and ``value``
    (NaN if unreadable) per answer; ``services``: ``service_codes`` of the answers, or None.
    Grouping is by small integer codes with bincount: a source has a few thousand answers and
    a province a thousand sources a night, so per-call overhead is what counts. Sums add the
    answers in their given order. As DOMAIN.md's "Indices" (and ``warehouse.marts``) define:

    - a *valid* answer has a value in its kind's range: likert 1–5, yesno 0/1, level 0/3/5/7/10,
      percent 0–100; an unreadable value (NaN) is never valid;
    - a dimension pools the valid Likert answers of its items; the 0–100 expectation item forms
      the ``MONG_DOI`` dimension, with no satisfied/dissatisfied counts;
    - a respondent counts in a dimension when it has at least one valid answer there.
    """
    valid, number = _valid(items.kind[code], value)
    code, response, value, number = code[valid], response_no[valid], value[valid], number[valid]
    return FigureRows(
        n_valid_responses=_n_distinct(response),
        dimensions=_dimension_rows(items, code, response, value),
        questions=_question_rows(
            items,
            code,
            value,
            number,
            None if services is None else services[0][valid],
            [""] if services is None else services[1],
        ),
    )


def _small(numbers: npt.NDArray[np.int64], size: int) -> bool:
    """Whether distinct ``numbers`` are best counted by a bincount of ``size`` bins (all
    non-negative, and not many more bins than numbers) rather than by sorting them."""
    return len(numbers) > 0 and int(numbers.min()) >= 0 and size <= 8 * len(numbers) + 4096


def _n_distinct(numbers: npt.NDArray[np.int64]) -> int:
    """How many distinct values ``numbers`` holds (response numbers: small, non-negative)."""
    size = int(numbers.max(initial=0)) + 1
    if _small(numbers, size):
        return int(np.count_nonzero(np.bincount(numbers, minlength=size)))
    return len(np.unique(numbers))


def _dimension_rows(
    items: Items,
    code: npt.NDArray[np.int64],
    response: npt.NDArray[np.int64],
    value: npt.NDArray[np.float64],
) -> list[list[Any]]:
    n = len(items.labels)
    dim = items.dimension[code]
    keep = dim >= 0
    dim, response, value = dim[keep], response[keep], value[keep]
    if not n or not len(dim):
        return [[] for _ in DIMENSION_COLUMNS]
    n_answers = np.bincount(dim, minlength=n)
    width = int(response.max(initial=0)) + 1
    if _small(response, n * width):
        seen = np.bincount(dim * width + response, minlength=n * width).reshape(n, width)
        n_respondents = np.count_nonzero(seen, axis=1)
    else:
        n_respondents = np.bincount(np.unique(dim * width + response) // width, minlength=n)
    total = np.bincount(dim, weights=value, minlength=n)
    sat = np.bincount(dim, weights=value >= SATISFIED_MIN, minlength=n)
    dis = np.bincount(dim, weights=value <= DISSATISFIED_MAX, minlength=n)
    at = np.flatnonzero(n_answers)
    likert = items.likert[at].tolist()
    return [
        [items.labels[i] for i in at.tolist()],
        n_respondents[at].tolist(),
        n_answers[at].tolist(),
        total[at].tolist(),
        # none for MONG_DOI: satisfied means nothing on a 0-100 scale
        [int(x) if ok else None for x, ok in zip(sat[at].tolist(), likert, strict=True)],
        [int(x) if ok else None for x, ok in zip(dis[at].tolist(), likert, strict=True)],
    ]


def _question_rows(
    items: Items,
    code: npt.NDArray[np.int64],
    value: npt.NDArray[np.float64],
    number: npt.NDArray[np.int64],
    service: npt.NDArray[np.int64] | None,
    services: list[str],
) -> list[list[Any]]:
    counted = items.counted[code]
    if not counted.any():
        return [[] for _ in QUESTION_COLUMNS]
    n_services = len(services)
    group = code[counted] * n_services
    if service is not None:
        group += service[counted]
    n = len(items.kind) * n_services
    n_answers = np.bincount(group, minlength=n)
    total = np.bincount(group, weights=value[counted], minlength=n)
    # counted kinds' valid values are whole numbers 0–10: one histogram gives every n_k
    hist = np.bincount(group * _WIDTH + number[counted], minlength=n * _WIDTH).reshape(n, _WIDTH)
    at = np.flatnonzero(n_answers)
    item, svc = np.divmod(at, n_services)
    return [
        [items.codes[i] for i in item.tolist()],
        [services[s] for s in svc.tolist()],
        n_answers[at].tolist(),
        *(hist[at, k].tolist() for k in range(1, 6)),
        total[at].tolist(),
    ]
