"""Sheet "So sánh năm trước": year-on-year deltas when ``campaign.previous_id`` has marts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from flows.publish.labels import (
    FIVE_MEAN_LABEL,
    LEVEL_LABELS,
    YOY_SHEET,
)
from flows.publish.workbooks.data import (
    CampaignData,
    Scope,
)
from flows.publish.workbooks.figures import (
    by_group,
    dimension_key,
    dimension_label,
    five_mean,
    group_key,
    is_satisfaction,
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
    BOLD,
    DELTA_FORMAT,
    ITALIC,
    MEAN_DELTA_FORMAT,
    MEAN_FORMAT,
    PCT_FORMAT,
    column_range,
    print_setup,
    set_style,
    write_cell,
)
from warehouse.read_models import Row

YOY_HEADERS = (
    "Cấp học",
    "Đối tượng",
    "Tiêu chí",
    "Tỷ lệ hài lòng năm nay (%)",
    "Tỷ lệ hài lòng năm trước (%)",
    "Chênh lệch (điểm %)",
    "Điểm TB năm nay",
    "Điểm TB năm trước",
    "Chênh lệch điểm TB",
    "Nhận xét",
)


def _previous_dims(data: CampaignData, scope: Scope) -> list[Row]:
    if scope.is_province:
        return data.previous_province_dimension
    return [r for r in data.previous_unit_dimension if r["unit_code"] == scope.code]


def write_yoy_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "So sánh năm trước": this campaign's figures against ``campaign.previous_id``'s,
    matched by level, questionnaire and dimension (and unit code for a unit)."""
    th = data.thresholds
    ws, hr = new_sheet(wb, YOY_SHEET, data, scope)
    set_widths(ws, [20, 18, 36, 11, 11, 11, 10, 10, 10, 24])
    previous = by_group(_previous_dims(data, scope)) if data.previous_unit_dimension else {}
    missing = _no_comparison(data, scope, previous)
    if missing is not None:
        write_empty(ws, hr, missing)
        print_setup(ws, None, None)
        return ws
    write_cell(ws, 3, 1, f"So với đợt {data.previous_id}.", font=ITALIC)
    write_header(ws, hr, YOY_HEADERS)
    current = by_group(scope_dims(data, scope))
    r = hr
    for key in sorted(current, key=lambda k: group_key(data, *k)):
        level, qcode = key
        if not is_satisfaction(data, qcode):
            continue
        for entry in _entries(data, qcode, current[key], previous.get(key, {})):
            r += 1
            _write_entry(ws, r, data, level, qcode, entry)
    if r > hr:
        tier_rules(ws, f"D{hr + 1}:E{r}", th)
        flag_rule(ws, column_range(6, hr + 1, r), "{c}<=-" + f"{th['yoy_drop_points']:g}")
        ws.auto_filter.ref = f"A{hr}:J{r}"
    print_setup(ws, (hr, hr), f"D{hr + 1}")
    return ws


def _no_comparison(data: CampaignData, scope: Scope, previous: Mapping[Any, Any]) -> str | None:
    """Why the scope has nothing to compare with, or None if it has."""
    if not data.previous_id:
        return (
            "Không có đợt khảo sát năm trước để so sánh: cấu hình của đợt này chưa chỉ ra "
            "đợt năm trước."
        )
    if not data.previous_unit_dimension:
        return (
            f"Không có đợt khảo sát năm trước để so sánh: kho dữ liệu không có số liệu "
            f"của đợt {data.previous_id}."
        )
    if not previous:
        return (
            f"Không có đợt khảo sát năm trước để so sánh: đợt {data.previous_id} không "
            f"có số liệu của {scope.name} ({scope.code}), có thể do thay đổi đơn vị quản lý."
        )
    return None


#: One row of the comparison: label, pct now, pct before, mean now, mean before.
Entry = tuple[str, Any, Any, Any, Any]


def _entries(
    data: CampaignData, qcode: str, now_dims: Mapping[str, Row], before: Mapping[str, Row]
) -> list[Entry]:
    """The rows of one group: each dimension, then the mean of the five."""
    q = data.questionnaires.get(qcode)
    entries: list[Entry] = []
    for dim in sorted(now_dims, key=lambda d: dimension_key(d, q)):
        a, b = now_dims[dim], before.get(dim)
        entries.append(
            (
                dimension_label(data, qcode, dim),
                shown_value(a["pct_satisfied"], a["n_respondents"]),
                None if b is None else shown_value(b["pct_satisfied"], b["n_respondents"]),
                shown_value(a["mean_score"], a["n_respondents"]),
                None if b is None else shown_value(b["mean_score"], b["n_respondents"]),
            )
        )
    entries.append(
        (
            FIVE_MEAN_LABEL,
            five_mean(now_dims, "pct_satisfied"),
            five_mean(before, "pct_satisfied") if before else None,
            five_mean(now_dims, "mean_score"),
            five_mean(before, "mean_score") if before else None,
        )
    )
    return entries


def _write_entry(
    ws: Worksheet, r: int, data: CampaignData, level: str, qcode: str, entry: Entry
) -> None:
    """One comparison row, with the deltas and a note on a drop or a missing year."""
    label, pct_now, pct_before, mean_now, mean_before = entry
    drop = data.thresholds["yoy_drop_points"]
    numbers = all(isinstance(v, int | float) for v in (pct_now, pct_before))
    delta = pct_now - pct_before if numbers else None
    mean_numbers = all(isinstance(v, int | float) for v in (mean_now, mean_before))
    mean_delta = mean_now - mean_before if mean_numbers else None
    note = ""
    if delta is not None and delta <= -drop:
        note = f"Giảm ≥ {drop:g} điểm %"
    elif pct_before is None and mean_before is None:
        note = "Năm trước không có số liệu"
    values: list[tuple[Any, str | None]] = [
        (LEVEL_LABELS.get(level, level), None),
        (questionnaire_label(data, qcode), None),
        (label, None),
        (pct_now, PCT_FORMAT),
        (pct_before, PCT_FORMAT),
        (delta, DELTA_FORMAT),
        (mean_now, MEAN_FORMAT),
        (mean_before, MEAN_FORMAT),
        (mean_delta, MEAN_DELTA_FORMAT),
        (note, None),
    ]
    for col, (value, fmt) in enumerate(values, start=1):
        cell = put(ws, r, col, value, fmt, wrap=col in (1, 3))
        if label == FIVE_MEAN_LABEL:
            set_style(cell, font=BOLD)
