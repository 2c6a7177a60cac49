"""Sheet "Theo tiêu chí": mart_unit_dimension (and the province's figures), with the
province's rate beside a unit's, unless the unit is all the province has of that level.
"""

from __future__ import annotations

from typing import Any

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from flows.publish.labels import (
    DIMENSION_SHEET,
    EXPECTATION,
    LEVEL_LABELS,
)
from flows.publish.workbooks.data import (
    CampaignData,
    Scope,
)
from flows.publish.workbooks.figures import (
    dimension_key,
    dimension_label,
    group_key,
    questionnaire_label,
    scope_dims,
    shown_value,
)
from flows.publish.workbooks.sheet import (
    flag_rule,
    new_sheet,
    put,
    set_widths,
    tier_rules,
    write_empty,
    write_header,
)
from flows.publish.xlsx import (
    DELTA_FORMAT,
    INT_FORMAT,
    MEAN_FORMAT,
    PCT_FORMAT,
    column_range,
    print_setup,
)
from schemas.records import column_letter
from warehouse.read_models import Row

DIMENSION_HEADERS = (
    "Đơn vị",
    "Cấp học",
    "Đối tượng",
    "Tiêu chí",
    "Số trường",
    "Số phiếu",
    "Số câu trả lời",
    "Điểm trung bình",
    "Tỷ lệ hài lòng (%)",
    "Tỷ lệ không hài lòng (%)",
)
_DIMENSION_WIDTHS = (24, 16, 18, 36, 8, 9, 10, 10, 11, 12, 12, 12)


def write_dimension_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "Theo tiêu chí": one row per unit × level × questionnaire × dimension.

    The province's workbook lists the province (Toàn tỉnh) and then every unit; a unit's lists
    its own rows with the province's rate beside them.
    """
    note = (
        "Tỷ lệ hài lòng = (số ý kiến 4 và 5) / số ý kiến hợp lệ × 100. Mức đáp ứng mong đợi: "
        "cột Điểm trung bình là % trung bình."
    )
    ws, header_row = new_sheet(wb, DIMENSION_SHEET, data, scope, note)
    thresholds = data.thresholds
    province = {
        (dim["level"], dim["questionnaire"], dim["dimension"]): dim
        for dim in data.province_dimension
    }
    blocks = _dimension_blocks(data, scope)
    # A unit that holds every school of its levels (the Sở's own THPT/GDTX unit) would be
    # compared with itself: those rows get no province figure, and if all do, no columns.
    beside = not scope.is_province and not all(
        is_whole_province(province, dim) for _, rows in blocks for dim in rows
    )
    headers = list(DIMENSION_HEADERS)
    if beside:
        headers += ["Toàn tỉnh: tỷ lệ hài lòng (%)", "Chênh lệch với toàn tỉnh (điểm %)"]
    write_header(ws, header_row, headers)
    set_widths(ws, _DIMENSION_WIDTHS[: len(headers)])
    row = header_row
    for unit_name, rows in blocks:
        for dim in sorted(rows, key=lambda dim: _dimension_order(data, dim)):
            row += 1
            values = _dimension_values(data, unit_name, dim)
            if beside and is_whole_province(province, dim):
                values += [(None, None), (None, None)]
            elif beside:
                values += _province_beside(province, dim, values[8][0])
            for col, (value, fmt) in enumerate(values, start=1):
                put(ws, row, col, value, fmt, wrap=col in (1, 4))
    if row == header_row:
        write_empty(ws, header_row + 1, "Chưa có số liệu theo tiêu chí.")
    else:
        ws.auto_filter.ref = f"A{header_row}:{column_letter(len(headers))}{row}"
        tier_rules(ws, column_range(9, header_row + 1, row), thresholds)
        flag_rule(
            ws,
            column_range(8, header_row + 1, row),
            "{c}<" + f"{thresholds['mean_score_red']:g}",
        )
        if beside:
            tier_rules(ws, column_range(11, header_row + 1, row), thresholds)
    print_setup(ws, (header_row, header_row), f"E{header_row + 1}")
    return ws


def _dimension_blocks(data: CampaignData, scope: Scope) -> list[tuple[str, list[Row]]]:
    """(name, rows) listed in turn: the province then each unit on the province's sheet, the
    unit alone on a unit's."""
    if not scope.is_province:
        return [(scope.name, scope_dims(data, scope))]
    blocks: list[tuple[str, list[Row]]] = [("Toàn tỉnh", data.province_dimension)]
    for code in scope.unit_codes:
        rows = data.lookups.unit_dimension.get((code,), [])
        blocks.append((data.units.get(code, code), rows))
    return blocks


def _dimension_order(data: CampaignData, dim: Row) -> tuple[Any, ...]:
    """Sort key of a dimension row: level and questionnaire, then the dimension's place."""
    return (
        *group_key(data, dim["level"], dim["questionnaire"]),
        dimension_key(dim["dimension"], data.questionnaires.get(dim["questionnaire"])),
    )


def _dimension_values(data: CampaignData, unit_name: str, dim: Row) -> list[tuple[Any, str | None]]:
    """One dimension row's cells with their number formats (the expectation's mean is a %)."""
    n = dim["n_respondents"]
    mean_format = PCT_FORMAT if dim["dimension"] == EXPECTATION else MEAN_FORMAT
    return [
        (unit_name, None),
        (LEVEL_LABELS.get(dim["level"], dim["level"]), None),
        (questionnaire_label(data, dim["questionnaire"]), None),
        (dimension_label(data, dim["questionnaire"], dim["dimension"]), None),
        (dim["n_schools"], INT_FORMAT),
        (shown_value(n, n), INT_FORMAT),
        (shown_value(dim["n_answers"], n), INT_FORMAT),
        (shown_value(dim["mean_score"], n), mean_format),
        (shown_value(dim["pct_satisfied"], n), PCT_FORMAT),
        (shown_value(dim["pct_dissatisfied"], n), PCT_FORMAT),
    ]


def is_whole_province(province: dict[tuple[str, str, str], Row], dim: Row) -> bool:
    """True when a unit's dimension row covers the same schools and respondents as the
    province's row for that level, questionnaire and dimension: the unit is all there is."""
    found = province.get((dim["level"], dim["questionnaire"], dim["dimension"]))
    return found is not None and all(
        found[key] == dim[key] for key in ("n_schools", "n_respondents", "n_answers")
    )


def _province_beside(
    province: dict[tuple[str, str, str], Row], dim: Row, mine: Any
) -> list[tuple[Any, str | None]]:
    """The province's rate for the same level, questionnaire and dimension, and the unit's
    difference from it (none when either is hidden or missing)."""
    found = province.get((dim["level"], dim["questionnaire"], dim["dimension"]))
    theirs = None if found is None else shown_value(found["pct_satisfied"], found["n_respondents"])
    delta = (
        mine - theirs if isinstance(mine, int | float) and isinstance(theirs, int | float) else None
    )
    return [(theirs, PCT_FORMAT), (delta, DELTA_FORMAT)]
