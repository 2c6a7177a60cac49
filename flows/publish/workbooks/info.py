"""Sheet "Thông tin": campaign, run stamp, data cut-off, sources by ledger status, thresholds."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from typing import Any

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from flows.publish.labels import (
    INFO_SHEET,
    LEDGER_LABELS,
    MIN_RESPONDENTS,
    STAMP_LABELS,
    SUPPRESSED,
    THRESHOLD_LABELS,
)
from flows.publish.workbooks.data import (
    CampaignData,
    Scope,
)
from flows.publish.workbooks.figures import (
    to_seconds,
)
from flows.publish.workbooks.sheet import (
    new_sheet,
    put,
    set_widths,
    write_header,
    write_section,
)
from flows.publish.xlsx import (
    BOLD,
    DATE_FORMAT,
    DATETIME_FORMAT,
    INT_FORMAT,
    LEFT,
    WRAP,
    merge_cells,
    print_setup,
    set_style,
    write_cell,
)
from flows.registry import ANY_SCHOOL
from warehouse.read_models import Row


def write_info_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "Thông tin": campaign, run stamp, data cut-off, sources by status from the ledger
    (failures listed without their messages, which may quote sheet contents), thresholds."""
    ws, r = new_sheet(wb, INFO_SHEET, data, scope)
    set_widths(ws, [34, 36, 22, 40, 26])
    r = _write_facts(ws, r, data, scope)
    r = _write_sources(ws, r, data, scope)
    r = _write_thresholds(ws, r, data)
    _write_notes(ws, r)
    print_setup(ws, None, None)
    return ws


#: Wording of a source that failed or went missing while its earlier answers still count.
PREVIOUS_SUBMISSION = "dùng số liệu lần nộp trước (ngày {date})"


def uses_previous(source: Row) -> bool:
    """True for a source whose latest state is failed or absent while the answers of an
    earlier load still count in the figures."""
    return (
        source["status"] in ("failed", "absent")
        and source.get("loaded_at") is not None
        and int(source.get("n_counted") or 0) > 0
    )


def newest_load(sources: Iterable[Row]) -> dt.datetime | None:
    """When the newest load whose answers the figures count ended (None before any)."""
    times = [s["loaded_at"] for s in sources if s.get("loaded_at") and s.get("n_counted")]
    return max(times, default=None)


def source_state(source: Row) -> str:
    """A source's state as the Thông tin sheet says it (``uses_previous``: with the date of
    that earlier load)."""
    label = LEDGER_LABELS.get(source["status"], source["status"])
    if uses_previous(source):
        when = source["loaded_at"].strftime("%d/%m/%Y")
        return f"{label}, {PREVIOUS_SUBMISSION.format(date=when)}"
    return str(label)


def _write_facts(ws: Worksheet, r: int, data: CampaignData, scope: Scope) -> int:
    """The campaign and the run stamp; returns the last row written."""
    run = data.run or {}
    facts: list[tuple[str, Any, str | None]] = [
        ("Mã đợt khảo sát", data.campaign_id, None),
        ("Tên đợt khảo sát", data.name, None),
        ("Năm học", data.school_year, None),
        ("Mở nhận phiếu", data.opens, DATE_FORMAT),
        ("Đóng nhận phiếu", data.closes, DATE_FORMAT),
        ("Hạn nộp", data.deadline, DATE_FORMAT),
        ("Mã tỉnh", data.province_code, None),
        ("Đợt năm trước để so sánh", data.previous_id or "—", None),
        ("Phạm vi", scope.name if scope.is_province else f"{scope.name} ({scope.code})", None),
        (STAMP_LABELS[0], run.get("run_id") or "—", None),
        (STAMP_LABELS[1], to_seconds(run.get("started_at")), DATETIME_FORMAT),
        # The newest answers the marts were built from, whichever run loaded them.
        (STAMP_LABELS[2], to_seconds(newest_load(data.sources)), DATETIME_FORMAT),
    ]
    write_section(ws, r, "Đợt khảo sát và lần chạy")
    for label, value, fmt in facts:
        r += 1
        write_cell(ws, r, 1, label, font=BOLD)
        cell = write_cell(ws, r, 2, value if value is not None else "—", number_format=fmt)
        set_style(cell, alignment=LEFT)
    return r


def _write_sources(ws: Worksheet, r: int, data: CampaignData, scope: Scope) -> int:
    """Sources by ledger status, those still counted from an earlier load, those not in the
    figures, and the files of folder sources not used (a newer file of the same school);
    returns the last row written. The province's workbook counts the sources of no registered
    school too (a file of a folder that names no school, a row naming a school schools.csv
    lacks)."""
    sources = [
        s
        for s in data.sources
        if scope.has_school(s["school_code"])
        or (scope.is_province and s["school_code"] not in data.schools)
    ]
    counts = Counter(s["status"] for s in sources)
    previous = [s for s in sources if uses_previous(s)]
    r += 2
    write_section(ws, r, "Nguồn dữ liệu (theo sổ nạp của lần chạy)")
    for status in ("loaded", "unchanged", "failed", "absent", None):
        r += 1
        write_cell(ws, r, 1, LEDGER_LABELS[status], font=BOLD)
        cell = write_cell(ws, r, 2, counts.get(status, 0), number_format=INT_FORMAT)
        set_style(cell, alignment=LEFT)
    r += 1
    write_cell(ws, r, 1, "Tổng số nguồn", font=BOLD)
    set_style(write_cell(ws, r, 2, len(sources), number_format=INT_FORMAT), alignment=LEFT)
    if previous:
        r += 1
        write_cell(ws, r, 1, "Trong đó lỗi hoặc thiếu tệp, vẫn tính lần nộp trước", font=BOLD)
        cell = write_cell(ws, r, 2, len(previous), number_format=INT_FORMAT)
        set_style(cell, alignment=LEFT)
    left_out = [s for s in sources if s["status"] not in ("loaded", "unchanged")]
    r = _source_table(ws, r, data, previous, "Nguồn vẫn tính theo lần nộp trước")
    left_out = [s for s in left_out if not uses_previous(s)]
    r = _source_table(ws, r, data, left_out, "Nguồn chưa đưa được vào số liệu")
    return _write_superseded(ws, r, data, scope)


#: What the source list says of the school of a folder's file that could not be placed.
UNPLACED_NAME = "(tên tệp không cho biết trường nào)"


def _where(location: str, found_in: str | None) -> str:
    """A source's file, and the folder row of sources.csv that found it, if one did."""
    return f"{location}\n(tìm thấy trong thư mục {found_in})" if found_in else location


def _source_table(ws: Worksheet, r: int, data: CampaignData, sources: list[Row], title: str) -> int:
    """A titled table of ``sources`` (nothing when there are none); returns the last row."""
    if not sources:
        return r
    r += 2
    write_section(ws, r, title)
    r += 1
    write_header(
        ws, r, ["Mã trường", "Tên trường", "Mẫu phiếu", "Nguồn (tệp, bảng tính)", "Tình trạng"]
    )
    for s in sources:
        r += 1
        name = data.schools.get(s["school_code"], {}).get("school_name") or (
            # a file of a folder row whose name names no school, or two
            UNPLACED_NAME if s["school_code"] == ANY_SCHOOL else s["school_code"]
        )
        where = _where(s["location"], s.get("found_in"))
        values = (s["school_code"], name, s["questionnaire"], where, source_state(s))
        for col, value in enumerate(values, start=1):
            put(ws, r, col, value, wrap=True)
    return r


def _write_superseded(ws: Worksheet, r: int, data: CampaignData, scope: Scope) -> int:
    """The files of folder sources not used because the school has a newer one; returns the
    last row written."""
    files = [f for f in data.superseded if scope.has_school(f["school_code"])]
    if not files:
        return r
    r += 2
    write_section(ws, r, "Tệp không dùng vì trường đã có tệp mới hơn")
    r += 1
    write_header(ws, r, ["Mã trường", "Tên trường", "Mẫu phiếu", "Tệp không dùng", "Tệp được dùng"])
    for f in files:
        r += 1
        name = data.schools.get(f["school_code"], {}).get("school_name") or f["school_code"]
        for col, value in enumerate(
            (f["school_code"], name, f["questionnaire"], f["location"], f["used_location"]),
            start=1,
        ):
            put(ws, r, col, value, wrap=True)
    return r


def _write_thresholds(ws: Worksheet, r: int, data: CampaignData) -> int:
    """The thresholds used and the anonymity promise, each described, its setting's name in a
    last column for the data officer; returns the last row written."""
    r += 2
    write_section(ws, r, "Ngưỡng sử dụng")
    r += 1
    write_header(ws, r, ["Ngưỡng", "Giá trị", "Thiết lập (khaosat.yaml)"])
    for key, value in data.thresholds.items():
        r += 1
        put(ws, r, 1, THRESHOLD_LABELS.get(key, key), wrap=True)
        put(ws, r, 2, value, "General")
        put(ws, r, 3, key)
    r += 1
    # Not a threshold: the anonymity promise, the same in every province.
    put(ws, r, 1, "Ẩn số liệu tính từ ít hơn số người trả lời này (cam kết ẩn danh)", wrap=True)
    put(ws, r, 2, MIN_RESPONDENTS, "0")
    put(ws, r, 3, "(ẩn danh)")
    return r


def _write_notes(ws: Worksheet, r: int) -> None:
    """How the figures are computed."""
    r += 2
    write_section(ws, r, "Cách tính")
    notes = (
        "Tỷ lệ hài lòng = (số ý kiến Hài lòng + Rất hài lòng) / số ý kiến hợp lệ × 100.",
        "Tỷ lệ hài lòng bình quân 5 tiêu chí = trung bình cộng tỷ lệ của 5 tiêu chí (cách các "
        "báo cáo công bố sử dụng); tỷ lệ hài lòng chung lấy từ câu hỏi chung.",
        "Mỗi tiêu chí gộp mọi ý kiến của các câu hỏi thuộc tiêu chí đó, không lấy trung bình "
        "tỷ lệ từng câu.",
        "Mức đáp ứng mong đợi = trung bình các câu trả lời 0–100%.",
        f"Số liệu tính từ ít hơn {MIN_RESPONDENTS} người trả lời được ẩn ({SUPPRESSED}). "
        "Không có họ tên, thư điện tử hay số điện thoại của người trả lời trong tệp này.",
    )
    for text in notes:
        r += 1
        write_cell(ws, r, 1, text)
        merge_cells(ws, r, 1, r, 5)
        set_style(ws.cell(row=r, column=1), alignment=WRAP)
        ws.row_dimensions[r].height = 30
