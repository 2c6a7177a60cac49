"""Pure figures of a scope: sort keys, labels, the privacy rule (``shown_value``), the
mean of the five dimensions, ranks, tiers, the summary per group and the scope's alerts.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flows.publish.labels import (
    ALERT_STATUS_LABELS,
    DIMENSION_LABELS,
    EXPECTATION,
    LEVEL_LABELS,
    MIN_RESPONDENTS,
    SERVICE_SHEET,
    SEVERITY_LABELS,
    SUPPRESSED,
)
from flows.publish.workbooks.data import (
    CampaignData,
    Scope,
)
from schemas.questionnaire import DIMENSIONS, Questionnaire
from warehouse.read_models import Row


def level_key(level: str) -> tuple[int, str]:
    """Sort key of a level code: report order, unknown levels last."""
    order = list(LEVEL_LABELS)
    return (order.index(level) if level in order else len(order), level)


def questionnaire_key(code: str, questionnaires: Mapping[str, Questionnaire]) -> tuple[int, str]:
    """Sort key of a questionnaire code: the questionnaires' order, unknown ones last."""
    order = list(questionnaires)
    return (order.index(code) if code in order else len(order), code)


def dimension_key(dimension: str, q: Questionnaire | None) -> tuple[int, str]:
    """Sort key of a dimension: the questionnaire's order, then the five, CHUNG, MONG_DOI."""
    order = [*DIMENSIONS, "CHUNG", EXPECTATION]
    if q is not None:
        order = [*q.dimensions, *(d for d in order if d not in q.dimensions)]
    return (order.index(dimension) if dimension in order else len(order), dimension)


def group_key(data: CampaignData, level: str, questionnaire: str) -> tuple[Any, ...]:
    """Sort key of a (level, questionnaire) group: level first, then questionnaire."""
    return (level_key(level), questionnaire_key(questionnaire, data.questionnaires))


def questionnaire_label(data: CampaignData, code: str) -> str:
    """How a questionnaire is named in a table whose rows also name the level."""
    q = data.questionnaires.get(code)
    if q is None:
        return code
    # Cấp học is its own column, so who answered is what tells the THPT forms apart; the
    # PAPI and service review forms are named for what they are.
    if q.kind == "papi":
        return f"{q.respondent} (PAPI)"
    if q.kind == "service_review":
        return SERVICE_SHEET
    return q.respondent


def dimension_label(data: CampaignData, questionnaire: str, dimension: str) -> str:
    """A dimension's name: its questionnaire's wording, else DIMENSION_LABELS'."""
    q = data.questionnaires.get(questionnaire)
    if q is not None and dimension in q.dimensions:
        return q.dimensions[dimension]
    return DIMENSION_LABELS.get(dimension, dimension)


def is_satisfaction(data: CampaignData, code: str) -> bool:
    """True unless the questionnaire is a PAPI or service review form."""
    q = data.questionnaires.get(code)
    return q is None or q.kind == "satisfaction"


def is_small(n: Any) -> bool:
    """True when ``n`` respondents are too few to publish a figure (privacy)."""
    return n is not None and n < MIN_RESPONDENTS


def shown_value(value: Any, n: Any) -> Any:
    """The figure, or SUPPRESSED when it comes from fewer than MIN_RESPONDENTS respondents."""
    if value is None:
        return None
    return SUPPRESSED if is_small(n) else value


def mean_of(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None; None if there are none."""
    got = [v for v in values if v is not None]
    return sum(got) / len(got) if got else None


def five_mean(by_dim: Mapping[str, Row], column: str) -> Any:
    """Mean over the five dimensions of ``column`` (the published overall figure); SUPPRESSED
    if any dimension's figure is (a mean would let the hidden figure be worked out)."""
    rows = [by_dim[d] for d in DIMENSIONS if d in by_dim]
    if any(is_small(r.get("n_respondents")) for r in rows):
        return SUPPRESSED
    return mean_of(r.get(column) for r in rows)


def competition_ranks(values: Sequence[float]) -> list[int]:
    """Competition ranks, highest first; ties share a rank (1, 2, 2, 4)."""
    return [1 + sum(other > v for other in values) for v in values]


def tier_of(value: Any, th: Mapping[str, float]) -> str | None:
    """The colour tier (red, amber, green) of a pct_satisfied figure; None for text."""
    if not isinstance(value, int | float):
        return None
    if value < th["pct_satisfied_red"]:
        return "red"
    if value < th["pct_satisfied_amber"]:
        return "amber"
    return "green"


def tier_text(value: Any, th: Mapping[str, float]) -> str:
    """The tier of a pct_satisfied figure in words, with its bounds."""
    tier = tier_of(value, th)
    if tier == "green":
        return f"Đạt mục tiêu (≥ {th['pct_satisfied_amber']:g}%)"
    if tier == "amber":
        return f"Dưới mục tiêu ({th['pct_satisfied_red']:g}–{th['pct_satisfied_amber']:g}%)"
    if tier == "red":
        return f"Thấp (< {th['pct_satisfied_red']:g}%)"
    return ""


def scope_dims(data: CampaignData, scope: Scope) -> list[Row]:
    """The scope's own dimension rows: the unit's mart rows, or the province's figures."""
    if scope.is_province:
        return data.province_dimension
    return list(data.lookups.unit_dimension.get((scope.code,), []))


def by_group(rows: Iterable[Row]) -> dict[tuple[str, str], dict[str, Row]]:
    """(level, questionnaire) -> dimension -> row."""
    out: dict[tuple[str, str], dict[str, Row]] = defaultdict(dict)
    for r in rows:
        out[(r["level"], r["questionnaire"])][r["dimension"]] = r
    return out


def scope_completeness(data: CampaignData, scope: Scope) -> list[Row]:
    """mart_completeness rows of the scope's schools, with the school's level."""
    out = []
    for r in data.completeness:
        if scope.has_school(r["school_code"]):
            school = data.schools.get(r["school_code"], {})
            out.append({**r, "level": school.get("level", "")})
    return out


@dataclass
class GroupSummary:
    """One row of "Tổng hợp": a level × questionnaire of the scope."""

    level: str
    questionnaire: str
    n_expected: int = 0
    n_submitted: int = 0
    n_late: int = 0
    n_not_submitted: int = 0
    n_failed: int = 0
    n_responses: int = 0
    pct_five: Any = None
    pct_chung: Any = None
    mean_five: Any = None
    expectation: Any = None


def summarise(data: CampaignData, scope: Scope) -> list[GroupSummary]:
    """Per level × questionnaire: completeness counts (mart_completeness) and the headline
    figures (the scope's dimension rows), in report order."""
    groups: dict[tuple[str, str], GroupSummary] = {}

    def group(level: str, questionnaire: str) -> GroupSummary:
        key = (level, questionnaire)
        if key not in groups:
            groups[key] = GroupSummary(level, questionnaire)
        return groups[key]

    for r in scope_completeness(data, scope):
        g = group(r["level"], r["questionnaire"])
        g.n_expected += 1
        status = r["status"]
        if status in ("submitted", "late"):
            g.n_submitted += 1
            g.n_late += status == "late"
        elif status == "failed":
            g.n_failed += 1
        else:  # pending, missing
            g.n_not_submitted += 1
        g.n_responses += int(r["n_valid"] or 0)
    for (level, questionnaire), dims in by_group(scope_dims(data, scope)).items():
        g = group(level, questionnaire)
        g.pct_five = five_mean(dims, "pct_satisfied")
        g.mean_five = five_mean(dims, "mean_score")
        chung, expectation = dims.get("CHUNG"), dims.get(EXPECTATION)
        if chung is not None:
            g.pct_chung = shown_value(chung["pct_satisfied"], chung["n_respondents"])
        if expectation is not None:
            g.expectation = shown_value(expectation["mean_score"], expectation["n_respondents"])
    return [groups[k] for k in sorted(groups, key=lambda k: group_key(data, *k))]


def scope_alerts(data: CampaignData, scope: Scope) -> list[Row]:
    """The alerts of the scope: everything for the province; a unit's own and its schools'."""
    if scope.is_province:
        chosen = list(data.alerts)
    else:
        chosen = [
            a
            for a in data.alerts
            if (a["scope"] == "unit" and a["scope_code"] == scope.code)
            or (a["scope"] == "school" and scope.has_school(a["scope_code"]))
        ]
    status_order = list(ALERT_STATUS_LABELS)
    severity_order = list(SEVERITY_LABELS)
    scope_order = ["province", "unit", "school"]

    def key(a: Row) -> tuple[Any, ...]:
        def pos(order: list[str], v: str) -> int:
            return order.index(v) if v in order else len(order)

        return (
            pos(status_order, a["status"]),
            pos(severity_order, a["severity"]),
            pos(scope_order, a["scope"]),
            a["scope_code"],
            a["subject"] or "",
            a["rule"],
        )

    return sorted(chosen, key=key)


def to_seconds(value: Any) -> Any:
    """A datetime without its microseconds (shown to the minute; kept exact to the second)."""
    return value.replace(microsecond=0) if isinstance(value, dt.datetime) else value
