"""Sheet "PAPI": mart_papi, the indicators of the scope, its units and schools."""

from __future__ import annotations

from typing import Any

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from flows.publish.labels import (
    PAPI_SHEET,
)
from flows.publish.workbooks.data import (
    CampaignData,
    Scope,
)
from flows.publish.workbooks.figures import (
    shown_value,
)
from flows.publish.workbooks.sheet import (
    flag_rule,
    group_row,
    new_sheet,
    put,
    set_widths,
    write_empty,
    write_header,
    write_section,
)
from flows.publish.xlsx import (
    INT_FORMAT,
    PCT_FORMAT,
    print_setup,
)
from schemas.records import column_letter
from warehouse.read_models import Row


def _papi_items(data: CampaignData) -> list[tuple[str, str]]:
    """(indicator code, wording) of the papi questionnaires, then any other code in mart_papi."""
    items: list[tuple[str, str]] = []
    seen: set[str] = set()
    for q in data.questionnaires.values():
        if q.kind != "papi":
            continue
        for item in q.items:
            if item.kind == "yesno" and item.code not in seen:
                items.append((item.code, item.text))
                seen.add(item.code)
    for code in sorted({r["indicator"] for r in data.papi} - seen):
        items.append((code, code))
    return items


def write_papi_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "PAPI": % "Có" per indicator for the scope (beside the province's), then per school
    (and, for the province, per unit)."""
    thresholds = data.thresholds
    ws, header_row = new_sheet(
        wb,
        PAPI_SHEET,
        data,
        scope,
        f"Tỷ lệ trả lời “Có” (%) trên số trả lời hợp lệ; dưới {thresholds['papi_pct_yes_min']:g}%: "
        "cảnh báo.",
    )
    items = _papi_items(data)
    figures = {(r["scope"], r["scope_code"], r["indicator"]): r for r in data.papi}
    scope_kind = "province" if scope.is_province else "unit"
    ours = [r for r in data.papi if r["scope"] == scope_kind and r["scope_code"] == scope.code]
    if not ours and not any(
        r["scope"] == "school" and scope.has_school(r["scope_code"]) for r in data.papi
    ):
        write_header(ws, header_row, ["Mã", "Chỉ số"])
        set_widths(ws, [12, 60])
        write_empty(ws, header_row + 1, "Chưa có số liệu PAPI.")
        print_setup(ws, (header_row, header_row), None)
        return ws
    row = _write_indicator_table(ws, data, scope, items, figures, header_row)
    _write_papi_matrix(ws, data, scope, items, figures, row + 2)
    set_widths(ws, [12, 48, *([12] * max(len(items), 3))])
    print_setup(ws, (header_row, header_row), f"A{header_row + 1}")
    return ws


def _write_indicator_table(
    ws: Worksheet,
    data: CampaignData,
    scope: Scope,
    items: list[tuple[str, str]],
    figures: dict[tuple[str, str, str], Row],
    header_row: int,
) -> int:
    """From ``header_row``: the scope's answers and % "Có" per indicator (a unit's beside the
    province's), flagged under the minimum; returns the last row written."""
    scope_kind = "province" if scope.is_province else "unit"
    headers = ["Mã", "Chỉ số", "Số trả lời", "Tỷ lệ Có (%)"]
    if not scope.is_province:
        headers.append("Toàn tỉnh: tỷ lệ Có (%)")
    write_header(ws, header_row, headers)
    row = header_row
    for code, text in items:
        row += 1
        found = figures.get((scope_kind, scope.code, code))
        n = found["n_answers"] if found else None
        values: list[tuple[Any, str | None]] = [
            (code, None),
            (text, None),
            (shown_value(n, n), INT_FORMAT),
            (shown_value(found["pct_yes"], n) if found else None, PCT_FORMAT),
        ]
        if not scope.is_province:
            theirs = figures.get(("province", data.province_code, code))
            values.append(
                (
                    shown_value(theirs["pct_yes"], theirs["n_answers"]) if theirs else None,
                    PCT_FORMAT,
                )
            )
        for col, (value, fmt) in enumerate(values, start=1):
            put(ws, row, col, value, fmt, wrap=col == 2)
    papi_min = f"{data.thresholds['papi_pct_yes_min']:g}"
    flag_rule(ws, f"D{header_row + 1}:{column_letter(len(headers))}{row}", "{c}<" + papi_min)
    return row


def _write_papi_matrix(
    ws: Worksheet,
    data: CampaignData,
    scope: Scope,
    items: list[tuple[str, str]],
    figures: dict[tuple[str, str, str], Row],
    row: int,
) -> None:
    """From ``row``: % "Có", one row per unit (province only) and per school, one column per
    indicator, flagged under the minimum."""
    write_section(
        ws, row, "Tỷ lệ Có (%) theo " + ("đơn vị và trường" if scope.is_province else "trường")
    )
    row += 1
    matrix_header_row = row
    write_header(ws, row, ["Mã", "Tên", *(code for code, _ in items)])
    units = [
        ("unit", code, data.units.get(code, code))
        for code in (scope.unit_codes if scope.is_province else [])
        if any(("unit", code, indicator) in figures for indicator, _ in items)
    ]
    schools = [
        ("school", code, data.schools[code].get("school_name") or code)
        for code in scope.school_codes
        if any(("school", code, indicator) in figures for indicator, _ in items)
    ]
    for kind, code, name in [*units, *schools]:
        row += 1
        if scope.is_province and (kind, code, name) in (units[:1] + schools[:1]):
            group_row(ws, row, "Đơn vị" if kind == "unit" else "Trường", 2 + len(items))
            row += 1
        put(ws, row, 1, code)
        put(ws, row, 2, name, wrap=True)
        for offset, (indicator, _) in enumerate(items):
            found = figures.get((kind, code, indicator))
            value = shown_value(found["pct_yes"], found["n_answers"]) if found else None
            put(ws, row, 3 + offset, value, PCT_FORMAT)
    if row > matrix_header_row:
        last = column_letter(2 + len(items))
        papi_min = f"{data.thresholds['papi_pct_yes_min']:g}"
        flag_rule(ws, f"C{matrix_header_row + 1}:{last}{row}", "{c}<" + papi_min)
