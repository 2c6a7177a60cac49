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
    th = data.thresholds
    ws, hr = new_sheet(
        wb,
        SERVICE_SHEET,
        data,
        scope,
        "Tổng điểm = tổng 8 tiêu chí (Tốt 10, Khá 7, Trung bình 5, Yếu 3, Kém 0); "
        f"dưới {th['service_total_min']:g}/80 điểm: cần rà soát.",
    )
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
    headers += ["Tổng điểm (/80)", "Đánh giá"]
    widths += [10, 20]
    write_header(ws, hr, headers)
    set_widths(ws, widths)
    rows = [r for r in data.services if r["unit_code"] in scope.unit_codes]
    by_service: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_service[row["service"]].append(row)
    r = hr
    for service in sorted(by_service):
        items = by_service[service]
        province_rank = competition_ranks([float(i["total_points"]) for i in items])
        order = sorted(
            zip(items, province_rank, strict=True),
            key=lambda p: (
                (p[1], p[0]["unit_code"], p[0]["rank"], p[0]["school_code"])
                if scope.is_province
                else (p[0]["rank"], p[0]["school_code"])
            ),
        )
        for item, prov_rank in order:
            r += 1
            school = data.schools.get(item["school_code"], {})
            points = item["total_points"]
            verdict = (
                "Cần rà soát" if points is not None and points < th["service_total_min"] else ""
            )
            values: list[tuple[Any, str | None]] = [(mask_personal(service), None)]
            if scope.is_province:
                values += [
                    (prov_rank, INT_FORMAT),
                    (data.units.get(item["unit_code"], item["unit_code"]), None),
                ]
            values += [
                (item["rank"], INT_FORMAT),
                (item["school_code"], None),
                (school.get("school_name") or item["school_code"], None),
                (points, POINTS_FORMAT),
                (verdict, None),
            ]
            for col, (value, fmt) in enumerate(values, start=1):
                put(ws, r, col, value, fmt, wrap=col in (1, 3, len(values) - 2))
    if r == hr:
        write_empty(ws, hr + 1, "Chưa có số liệu rà soát dịch vụ giáo dục.")
    else:
        points_col = len(headers) - 1
        flag_rule(ws, column_range(points_col, hr + 1, r), "{c}<" + f"{th['service_total_min']:g}")
        ws.auto_filter.ref = f"A{hr}:{column_letter(len(headers))}{r}"
    print_setup(ws, (hr, hr), f"B{hr + 1}")
    return ws
