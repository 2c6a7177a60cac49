"""Sheet "Theo tiêu chí": mart_unit_dimension (and the province's figures), with the
province's rate beside a unit's.
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
    "Phiếu",
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
    ws, hr = new_sheet(wb, DIMENSION_SHEET, data, scope, note)
    th = data.thresholds
    headers = list(DIMENSION_HEADERS)
    if not scope.is_province:
        headers += ["Toàn tỉnh: tỷ lệ hài lòng (%)", "Chênh lệch với toàn tỉnh (điểm %)"]
    write_header(ws, hr, headers)
    set_widths(ws, _DIMENSION_WIDTHS[: len(headers)])
    province = {
        (p["level"], p["questionnaire"], p["dimension"]): p for p in data.province_dimension
    }
    blocks: list[tuple[str, list[Row]]] = []
    if scope.is_province:
        blocks.append(("Toàn tỉnh", data.province_dimension))
        for code in scope.unit_codes:
            rows = data.lookups.unit_dimension.get((code,), [])
            blocks.append((data.units.get(code, code), rows))
    else:
        blocks.append((scope.name, scope_dims(data, scope)))
    r = hr
    for unit_name, rows in blocks:
        ordered = sorted(
            rows,
            key=lambda d: (
                *group_key(data, d["level"], d["questionnaire"]),
                dimension_key(d["dimension"], data.questionnaires.get(d["questionnaire"])),
            ),
        )
        for d in ordered:
            r += 1
            n = d["n_respondents"]
            is_expectation = d["dimension"] == EXPECTATION
            values: list[tuple[Any, str | None]] = [
                (unit_name, None),
                (LEVEL_LABELS.get(d["level"], d["level"]), None),
                (questionnaire_label(data, d["questionnaire"]), None),
                (dimension_label(data, d["questionnaire"], d["dimension"]), None),
                (d["n_schools"], INT_FORMAT),
                (shown_value(n, n), INT_FORMAT),
                (shown_value(d["n_answers"], n), INT_FORMAT),
                (shown_value(d["mean_score"], n), PCT_FORMAT if is_expectation else MEAN_FORMAT),
                (shown_value(d["pct_satisfied"], n), PCT_FORMAT),
                (shown_value(d["pct_dissatisfied"], n), PCT_FORMAT),
            ]
            if not scope.is_province:
                p = province.get((d["level"], d["questionnaire"], d["dimension"]))
                prov = None if p is None else shown_value(p["pct_satisfied"], p["n_respondents"])
                mine = values[8][0]
                delta = (
                    mine - prov
                    if isinstance(mine, int | float) and isinstance(prov, int | float)
                    else None
                )
                values += [(prov, PCT_FORMAT), (delta, DELTA_FORMAT)]
            for col, (value, fmt) in enumerate(values, start=1):
                put(ws, r, col, value, fmt, wrap=col in (1, 4))
    if r == hr:
        write_empty(ws, hr + 1, "Chưa có số liệu theo tiêu chí.")
    else:
        ws.auto_filter.ref = f"A{hr}:{column_letter(len(headers))}{r}"
        tier_rules(ws, column_range(9, hr + 1, r), th)
        flag_rule(ws, column_range(8, hr + 1, r), "{c}<" + f"{th['mean_score_red']:g}")
        if not scope.is_province:
            tier_rules(ws, column_range(11, hr + 1, r), th)
    print_setup(ws, (hr, hr), f"E{hr + 1}")
    return ws
