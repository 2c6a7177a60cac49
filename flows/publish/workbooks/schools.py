"""Sheet "Theo trường": mart_school_dimension, schools ranked per questionnaire."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from flows.publish.labels import (
    DIMENSION_SHORT,
    EXPECTATION,
    FIVE_MEAN_LABEL,
    LEVEL_LABELS,
    MIN_RESPONDENTS,
    SCHOOL_SHEET,
    SUPPRESSED,
)
from flows.publish.workbooks.data import (
    CampaignData,
    Scope,
)
from flows.publish.workbooks.figures import (
    competition_ranks,
    five_mean,
    is_satisfaction,
    is_small,
    questionnaire_key,
    shown_value,
)
from flows.publish.workbooks.sheet import (
    flag_rule,
    group_row,
    new_sheet,
    put,
    set_widths,
    tier_rules,
    write_empty,
    write_header,
)
from flows.publish.xlsx import (
    INT_FORMAT,
    MEAN_FORMAT,
    PCT_FORMAT,
    column_range,
    print_setup,
)
from schemas.questionnaire import DIMENSIONS
from schemas.records import column_letter
from warehouse.read_models import Row


@dataclass
class SchoolRow:
    """One school's figures for one questionnaire, as "Theo trường" shows them."""

    school_code: str
    n_responses: int
    rank: int | None = None
    figures: dict[str, Any] = field(default_factory=dict)


def school_rows(data: CampaignData, scope: Scope, questionnaire: str) -> list[SchoolRow]:
    """The scope's schools with figures for ``questionnaire``, ranked by the mean of their five
    dimension rates (ties share a rank); schools whose figures are hidden are not ranked."""
    lookups = data.lookups
    n_valid = lookups.n_valid.get(questionnaire, {})
    per_school: dict[str, dict[str, Row]] = {}
    for code in scope.school_codes:
        found = lookups.school_dimension.get((questionnaire, code))
        if found:
            per_school[code] = {r["dimension"]: r for r in found}
    rows = []
    for code in sorted(per_school):
        dims = per_school[code]
        n = n_valid.get(code) or max(d["n_respondents"] for d in dims.values())
        row = SchoolRow(code, n)
        hidden = is_small(n)
        for dim in (*DIMENSIONS, "CHUNG"):
            d = dims.get(dim)
            value = None if d is None else shown_value(d["pct_satisfied"], d["n_respondents"])
            row.figures[dim] = SUPPRESSED if hidden and value is not None else value
        five = five_mean(dims, "pct_satisfied")
        five_score = five_mean(dims, "mean_score")
        expectation = dims.get(EXPECTATION)
        row.figures["FIVE"] = SUPPRESSED if hidden and five is not None else five
        row.figures["MEAN"] = SUPPRESSED if hidden and five_score is not None else five_score
        exp = None
        if expectation is not None:
            exp = shown_value(expectation["mean_score"], expectation["n_respondents"])
        row.figures[EXPECTATION] = SUPPRESSED if hidden and exp is not None else exp
        rows.append(row)
    ranked = [r for r in rows if isinstance(r.figures["FIVE"], int | float)]
    for row, rank in zip(
        ranked, competition_ranks([r.figures["FIVE"] for r in ranked]), strict=True
    ):
        row.rank = rank
    # Ranked schools first, best first; then the unranked, by code.
    return sorted(rows, key=lambda r: (r.rank is None, r.rank or 0, r.school_code))


def write_school_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "Theo trường": per questionnaire, the schools ranked by the mean of the five
    dimension rates, with each dimension's rate, CHUNG, mean score and expectation met."""
    ws, header_row = new_sheet(
        wb,
        SCHOOL_SHEET,
        data,
        scope,
        f"Xếp hạng theo tỷ lệ hài lòng bình quân 5 tiêu chí. Trường dưới {MIN_RESPONDENTS} phiếu: "
        f"số liệu ẩn ({SUPPRESSED}), không xếp hạng.",
    )
    thresholds = data.thresholds
    lead = _lead_headers(scope)
    headers = [
        *lead,
        *(f"{DIMENSION_SHORT[d]} (%)" for d in (*DIMENSIONS, "CHUNG")),
        f"{FIVE_MEAN_LABEL} (%)",
        "Điểm TB 5 tiêu chí",
        "Mức đáp ứng mong đợi (%)",
    ]
    write_header(ws, header_row, headers)
    widths = [6, 10, 30] + ([20] if scope.is_province else []) + [16, 8] + [10] * 6 + [11, 9, 11]
    set_widths(ws, widths)
    first_pct = len(lead) + 1
    last_row = _write_school_groups(ws, data, scope, header_row, len(headers))
    if last_row == header_row:
        write_empty(ws, header_row + 1, "Chưa có số liệu theo trường.")
    else:
        last_pct = column_letter(first_pct + 6)
        pct_range = f"{column_letter(first_pct)}{header_row + 1}:{last_pct}{last_row}"
        tier_rules(ws, pct_range, thresholds)
        mean_col = first_pct + 7
        flag_rule(
            ws,
            column_range(mean_col, header_row + 1, last_row),
            "{c}<" + f"{thresholds['mean_score_red']:g}",
        )
    print_setup(ws, (header_row, header_row), f"D{header_row + 1}")
    return ws


def _lead_headers(scope: Scope) -> list[str]:
    """The headers before the figures: rank, school, its unit on the province's, level, forms."""
    lead = ["Hạng", "Mã trường", "Tên trường"]
    if scope.is_province:
        lead.append("Đơn vị")
    return [*lead, "Cấp học", "Số phiếu"]


def _write_school_groups(
    ws: Worksheet, data: CampaignData, scope: Scope, header_row: int, width: int
) -> int:
    """Below ``header_row``, a group row per satisfaction questionnaire and its ranked schools;
    returns the last row written."""
    codes = sorted(
        {code for code in data.lookups.school_questionnaires if is_satisfaction(data, code)},
        key=lambda code: questionnaire_key(code, data.questionnaires),
    )
    row = header_row
    for qcode in codes:
        rows = school_rows(data, scope, qcode)
        if not rows:
            continue
        questionnaire = data.questionnaires.get(qcode)
        row += 1
        title = f"{questionnaire.name} ({qcode})" if questionnaire else qcode
        group_row(ws, row, title, width)
        for school_row in rows:
            row += 1
            values = _school_values(data, scope, school_row)
            for col, (value, fmt) in enumerate(values, start=1):
                put(ws, row, col, value, fmt, wrap=col in (3, 4, 5))
    return row


def _school_values(
    data: CampaignData, scope: Scope, school_row: SchoolRow
) -> list[tuple[Any, str | None]]:
    """One school's cells with their number formats, in the sheet's column order."""
    school = data.schools.get(school_row.school_code, {})
    values: list[tuple[Any, str | None]] = [
        (school_row.rank, INT_FORMAT),
        (school_row.school_code, None),
        (school.get("school_name") or school_row.school_code, None),
    ]
    if scope.is_province:
        unit = school.get("unit_code", "")
        values.append((data.units.get(unit, unit), None))
    level = school.get("level", "")
    n_responses = school_row.n_responses
    values += [
        (LEVEL_LABELS.get(level, level), None),
        (shown_value(n_responses, n_responses), INT_FORMAT),
    ]
    figures = school_row.figures
    values += [(figures[d], PCT_FORMAT) for d in (*DIMENSIONS, "CHUNG")]
    values += [
        (figures["FIVE"], PCT_FORMAT),
        (figures["MEAN"], MEAN_FORMAT),
        (figures[EXPECTATION], PCT_FORMAT),
    ]
    return values
