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
    th = data.thresholds
    ws, hr = new_sheet(
        wb,
        PAPI_SHEET,
        data,
        scope,
        f"Tỷ lệ trả lời “Có” (%) trên số trả lời hợp lệ; dưới {th['papi_pct_yes_min']:g}%: "
        "cảnh báo.",
    )
    items = _papi_items(data)
    figures = {(r["scope"], r["scope_code"], r["indicator"]): r for r in data.papi}
    scope_kind = "province" if scope.is_province else "unit"
    ours = [r for r in data.papi if r["scope"] == scope_kind and r["scope_code"] == scope.code]
    if not ours and not any(
        r["scope"] == "school" and scope.has_school(r["scope_code"]) for r in data.papi
    ):
        write_header(ws, hr, ["Mã", "Chỉ số"])
        set_widths(ws, [12, 60])
        write_empty(ws, hr + 1, "Chưa có số liệu PAPI.")
        print_setup(ws, (hr, hr), None)
        return ws

    headers = ["Mã", "Chỉ số", "Số trả lời", "Tỷ lệ Có (%)"]
    if not scope.is_province:
        headers.append("Toàn tỉnh: tỷ lệ Có (%)")
    write_header(ws, hr, headers)
    r = hr
    for code, text in items:
        r += 1
        row = figures.get((scope_kind, scope.code, code))
        n = row["n_answers"] if row else None
        values: list[tuple[Any, str | None]] = [
            (code, None),
            (text, None),
            (shown_value(n, n), INT_FORMAT),
            (shown_value(row["pct_yes"], n) if row else None, PCT_FORMAT),
        ]
        if not scope.is_province:
            p = figures.get(("province", data.province_code, code))
            values.append((shown_value(p["pct_yes"], p["n_answers"]) if p else None, PCT_FORMAT))
        for col, (value, fmt) in enumerate(values, start=1):
            put(ws, r, col, value, fmt, wrap=col == 2)
    papi_min = f"{th['papi_pct_yes_min']:g}"
    flag_rule(ws, f"D{hr + 1}:{column_letter(len(headers))}{r}", "{c}<" + papi_min)

    # Matrix: one row per unit (province only) and per school, one column per indicator.
    r += 2
    write_section(
        ws, r, "Tỷ lệ Có (%) theo " + ("đơn vị và trường" if scope.is_province else "trường")
    )
    r += 1
    matrix_hr = r
    write_header(ws, r, ["Mã", "Tên", *(code for code, _ in items)])
    units = [
        ("unit", c, data.units.get(c, c))
        for c in (scope.unit_codes if scope.is_province else [])
        if any(("unit", c, i) in figures for i, _ in items)
    ]
    schools = [
        ("school", c, data.schools[c].get("school_name") or c)
        for c in scope.school_codes
        if any(("school", c, i) in figures for i, _ in items)
    ]
    for kind, code, name in [*units, *schools]:
        r += 1
        if scope.is_province and (kind, code, name) in (units[:1] + schools[:1]):
            group_row(ws, r, "Đơn vị" if kind == "unit" else "Trường", 2 + len(items))
            r += 1
        put(ws, r, 1, code)
        put(ws, r, 2, name, wrap=True)
        for j, (indicator, _) in enumerate(items):
            row = figures.get((kind, code, indicator))
            value = shown_value(row["pct_yes"], row["n_answers"]) if row else None
            put(ws, r, 3 + j, value, PCT_FORMAT)
    if r > matrix_hr:
        last = column_letter(2 + len(items))
        flag_rule(ws, f"C{matrix_hr + 1}:{last}{r}", "{c}<" + papi_min)
    set_widths(ws, [12, 48, *([12] * max(len(items), 3))])
    print_setup(ws, (hr, hr), f"A{hr + 1}")
    return ws
