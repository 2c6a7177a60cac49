"""Sheet "Dịch vụ giáo dục": mart_service_ranking per service."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from flows.privacy import mask_personal
from flows.publish.labels import (
    SERVICE_SHEET,
)
from flows.publish.workbooks.data import (
    CampaignData,
    Scope,
)
from flows.publish.workbooks.figures import (
    competition_ranks,
)
from flows.publish.workbooks.sheet import (
    flag_rule,
    new_sheet,
    put,
    set_widths,
    write_empty,
    write_header,
)
from flows.publish.xlsx import (
    INT_FORMAT,
    POINTS_FORMAT,
    column_range,
    print_setup,
)
from schemas.records import column_letter
from warehouse.read_models import Row


def write_service_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "Dịch vụ giáo dục": per service, the schools ranked by total points (0–80) as
    mart_service_ranking ranks them within their unit; the province's also ranks province-wide."""
    thresholds = data.thresholds
    ws, header_row = new_sheet(
        wb,
        SERVICE_SHEET,
        data,
        scope,
        "Tổng điểm = tổng 8 tiêu chí (Tốt 10, Khá 7, Trung bình 5, Yếu 3, Kém 0); "
        f"dưới {thresholds['service_total_min']:g}/80 điểm: cần rà soát.",
    )
    headers, widths = _service_headers(scope)
    write_header(ws, header_row, headers)
    set_widths(ws, widths)
    by_service: dict[str, list[Row]] = defaultdict(list)
    for service_row in data.services:
        if service_row["unit_code"] in scope.unit_codes:
            by_service[service_row["service"]].append(service_row)
    row = header_row
    for service in sorted(by_service):
        for item, province_rank in _service_order(by_service[service], scope):
            row += 1
            values = _service_values(data, scope, service, item, province_rank)
            for col, (value, fmt) in enumerate(values, start=1):
                put(ws, row, col, value, fmt, wrap=col in (1, 3, len(values) - 2))
    if row == header_row:
        write_empty(ws, header_row + 1, "Chưa có số liệu rà soát dịch vụ giáo dục.")
    else:
        points_col = len(headers) - 1
        flag_rule(
            ws,
            column_range(points_col, header_row + 1, row),
            "{c}<" + f"{thresholds['service_total_min']:g}",
        )
        ws.auto_filter.ref = f"A{header_row}:{column_letter(len(headers))}{row}"
    print_setup(ws, (header_row, header_row), f"B{header_row + 1}")
    return ws


def _service_headers(scope: Scope) -> tuple[list[str], list[float]]:
    """The sheet's headers and column widths; the province's adds its rank and the unit."""
    headers = ["Dịch vụ", "Hạng trong đơn vị", "Mã trường", "Tên trường"]
    widths: list[float] = [34, 9, 10, 32]
    if scope.is_province:
        headers = [
            "Dịch vụ",
            "Hạng toàn tỉnh",
            "Đơn vị",
            "Hạng trong đơn vị",
            "Mã trường",
            "Tên trường",
        ]
        widths = [30, 9, 22, 9, 10, 30]
    return [*headers, "Tổng điểm (/80)", "Đánh giá"], [*widths, 10, 20]


def _service_order(items: list[Row], scope: Scope) -> list[tuple[Row, int]]:
    """One service's rows with their province-wide rank, in the order the sheet lists them:
    by that rank on the province's sheet, by the rank within the unit on a unit's."""
    province_rank = competition_ranks([float(i["total_points"]) for i in items])
    return sorted(
        zip(items, province_rank, strict=True),
        key=lambda pair: (
            (pair[1], pair[0]["unit_code"], pair[0]["rank"], pair[0]["school_code"])
            if scope.is_province
            else (pair[0]["rank"], pair[0]["school_code"])
        ),
    )


def _service_values(
    data: CampaignData, scope: Scope, service: str, item: Row, province_rank: int
) -> list[tuple[Any, str | None]]:
    """One school's row for one service: its cells with their number formats."""
    school = data.schools.get(item["school_code"], {})
    points = item["total_points"]
    below = points is not None and points < data.thresholds["service_total_min"]
    values: list[tuple[Any, str | None]] = [(mask_personal(service), None)]
    if scope.is_province:
        values += [
            (province_rank, INT_FORMAT),
            (data.units.get(item["unit_code"], item["unit_code"]), None),
        ]
    return [
        *values,
        (item["rank"], INT_FORMAT),
        (item["school_code"], None),
        (school.get("school_name") or item["school_code"], None),
        (points, POINTS_FORMAT),
        ("Cần rà soát" if below else "", None),
    ]
