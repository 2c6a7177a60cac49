"""Publish: summary workbooks for leadership, written with openpyxl from the mart tables.

One workbook per reporting unit, ``<campaign_id>_<unit_code>.xlsx``. This first version has a
single sheet, "Tổng hợp" (level × questionnaire × dimension); the leadership design adds sheets
later, so each sheet is one function taking a :class:`UnitReport` and the workbook.

Everything written goes through :func:`write_cell`, which stores text as text: a school name or a
comment starting with ``=``, ``+``, ``-`` or ``@`` must never become a formula in a spreadsheet
that leadership opens. Files are byte-for-byte reproducible (fixed properties and zip times), so a
re-run with unchanged marts publishes identical files.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.xml.functions import tostring

from schemas.questionnaire import DIMENSIONS, Questionnaire

#: Level codes (schools.csv) in report order, with the names leadership reads.
LEVEL_LABELS: dict[str, str] = {
    "MN": "Mầm non",
    "TH": "Tiểu học",
    "THCS": "Trung học cơ sở",
    "THPT": "Trung học phổ thông",
    "GDTX": "Giáo dục thường xuyên",
}

SUMMARY_SHEET = "Tổng hợp"
SUMMARY_HEADERS = (
    "Cấp học",
    "Phiếu",
    "Tiêu chí",
    "Số phiếu",
    "Số câu trả lời",
    "Điểm trung bình",
    "Tỷ lệ hài lòng (%)",
    "Tỷ lệ không hài lòng (%)",
)
_SUMMARY_WIDTHS = (22, 24, 44, 10, 14, 14, 16, 20)

#: Excel and LibreOffice start a formula with any of these (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@")

#: Written into every workbook's core properties and zip entries, so output is reproducible.
FIXED_TIMESTAMP = dt.datetime(2020, 1, 1)

INT_FORMAT = "#,##0"
MEAN_FORMAT = "0.00"
PCT_FORMAT = "0.0"

_BOLD = Font(bold=True)
_TITLE = Font(bold=True, size=14)
_HEADER_FILL = PatternFill("solid", start_color="DDEBF7")
_THIN = Side(style="thin", color="A6A6A6")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_WRAP_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)

# Characters a file name must not carry from a registry code (separators, "..", shell specials).
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


# ---------------------------------------------------------------------------------------------
# Safe, reproducible writing (shared by every workbook the project writes)


def write_cell(
    ws: Worksheet,
    row: int,
    column: int,
    value: Any,
    *,
    number_format: str | None = None,
    font: Font | None = None,
) -> Cell:
    """Write one value; text is always stored as text, never as a formula.

    openpyxl turns any string starting with ``=`` into a formula, and spreadsheet programs
    re-evaluate cells starting with ``+``, ``-`` or ``@`` when edited, so such text gets the
    string type and a quote prefix. Characters XML cannot hold are dropped rather than failing
    the whole workbook over one comment.
    """
    cell: Cell = ws.cell(row=row, column=column)
    if isinstance(value, str):
        text = ILLEGAL_CHARACTERS_RE.sub("", value)
        cell.value = text
        if text.startswith(FORMULA_PREFIXES):
            cell.data_type = "s"
            cell.quotePrefix = True
    else:
        cell.value = value
    if number_format is not None:
        cell.number_format = number_format
    if font is not None:
        cell.font = font
    return cell


def save_workbook(wb: Workbook, path: Path, timestamp: dt.datetime = FIXED_TIMESTAMP) -> Path:
    """Save ``wb`` to ``path`` so the same content always gives the same bytes.

    openpyxl stamps the save time into docProps/core.xml and each zip entry; both are replaced
    by ``timestamp``. The file is written to a temporary name and renamed, so a reader never sees
    half a workbook.
    """
    props = wb.properties
    props.creator = "khaosat"
    props.created = timestamp
    raw = io.BytesIO()
    wb.save(raw)
    # openpyxl set `modified` to now while saving; write the core part again without it.
    props.modified = timestamp
    core = tostring(props.to_tree())
    out = io.BytesIO()
    stamp = timestamp.timetuple()[:6]
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = core if info.filename == "docProps/core.xml" else src.read(info.filename)
            entry = zipfile.ZipInfo(info.filename, date_time=stamp)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = info.external_attr
            dst.writestr(entry, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(out.getvalue())
    tmp.replace(path)
    return path


def safe_file_part(code: str) -> str:
    """A registry code made safe for a file name (no separators, no path traversal)."""
    cleaned = _UNSAFE_NAME.sub("_", code.strip())
    return cleaned.strip(".") or "_"


# ---------------------------------------------------------------------------------------------
# What a unit workbook shows, read from the marts


@dataclass(frozen=True)
class DimensionRow:
    """One row of mart_unit_dimension for one unit (grain: level × questionnaire × dimension)."""

    level: str
    questionnaire: str
    dimension: str
    n_schools: int | None
    n_respondents: int | None
    n_answers: int | None
    mean_score: float | None
    pct_satisfied: float | None
    pct_dissatisfied: float | None


@dataclass
class UnitReport:
    """Everything one unit's workbook shows; sheets are written from this alone."""

    campaign_id: str
    campaign_name: str
    school_year: str
    unit_code: str
    unit_name: str
    dimensions: list[DimensionRow] = field(default_factory=list)


def _table(engine: sa.Engine, name: str) -> sa.Table:
    # Reflection keeps this module independent of how warehouse/tables.py declares types;
    # column names are the DESIGN.md contract.
    return sa.Table(name, sa.MetaData(), autoload_with=engine)


def read_unit_reports(engine: sa.Engine, campaign_id: str) -> list[UnitReport]:
    """One report per unit of the campaign (units from `unit` plus any only in the marts)."""
    campaign_t = _table(engine, "campaign")
    unit_t = _table(engine, "unit")
    mart_t = _table(engine, "mart_unit_dimension")
    with engine.connect() as conn:
        camp = conn.execute(
            sa.select(campaign_t.c.name, campaign_t.c.school_year).where(
                campaign_t.c.campaign_id == campaign_id
            )
        ).first()
        units = conn.execute(
            sa.select(unit_t.c.unit_code, unit_t.c.unit_name).where(
                unit_t.c.campaign_id == campaign_id
            )
        ).all()
        marts = conn.execute(
            sa.select(
                mart_t.c.unit_code,
                mart_t.c.level,
                mart_t.c.questionnaire,
                mart_t.c.dimension,
                mart_t.c.n_schools,
                mart_t.c.n_respondents,
                mart_t.c.n_answers,
                mart_t.c.mean_score,
                mart_t.c.pct_satisfied,
                mart_t.c.pct_dissatisfied,
            ).where(mart_t.c.campaign_id == campaign_id)
        ).all()
    name = camp.name if camp is not None and camp.name else campaign_id
    year = camp.school_year if camp is not None and camp.school_year else ""
    reports: dict[str, UnitReport] = {}
    for u in units:
        reports[u.unit_code] = UnitReport(campaign_id, name, year, u.unit_code, u.unit_name or "")
    for m in marts:
        report = reports.get(m.unit_code)
        if report is None:
            report = reports[m.unit_code] = UnitReport(
                campaign_id, name, year, m.unit_code, m.unit_code
            )
        report.dimensions.append(
            DimensionRow(
                level=m.level,
                questionnaire=m.questionnaire,
                dimension=m.dimension,
                n_schools=m.n_schools,
                n_respondents=m.n_respondents,
                n_answers=m.n_answers,
                mean_score=_float(m.mean_score),
                pct_satisfied=_float(m.pct_satisfied),
                pct_dissatisfied=_float(m.pct_dissatisfied),
            )
        )
    return [reports[code] for code in sorted(reports)]


def _float(value: Any) -> float | None:
    # PostgreSQL NUMERIC arrives as Decimal; openpyxl writes floats.
    return None if value is None else float(value)


# ---------------------------------------------------------------------------------------------
# Sheets


def _level_key(level: str) -> tuple[int, str]:
    order = list(LEVEL_LABELS)
    return (order.index(level) if level in order else len(order), level)


def _questionnaire_key(code: str, questionnaires: Mapping[str, Questionnaire]) -> tuple[int, str]:
    order = list(questionnaires)
    return (order.index(code) if code in order else len(order), code)


def _dimension_key(
    row: DimensionRow, questionnaires: Mapping[str, Questionnaire]
) -> tuple[int, str]:
    q = questionnaires.get(row.questionnaire)
    order = list(q.dimensions) if q is not None else [*DIMENSIONS, "CHUNG"]
    return (order.index(row.dimension) if row.dimension in order else len(order), row.dimension)


def _questionnaire_label(code: str, questionnaires: Mapping[str, Questionnaire]) -> str:
    q = questionnaires.get(code)
    # Cấp học is its own column, so who answered is what tells the THPT forms apart.
    return q.respondent if q is not None else code


def _dimension_label(row: DimensionRow, questionnaires: Mapping[str, Questionnaire]) -> str:
    q = questionnaires.get(row.questionnaire)
    if q is not None and row.dimension in q.dimensions:
        return q.dimensions[row.dimension]
    return row.dimension


def _write_title(ws: Worksheet, report: UnitReport, width: int) -> int:
    """Title block; returns the first free row."""
    write_cell(ws, 1, 1, report.unit_name or report.unit_code, font=_TITLE)
    write_cell(ws, 2, 1, report.campaign_name, font=_BOLD)
    detail = f"Mã đơn vị: {report.unit_code} · Đợt khảo sát: {report.campaign_id}"
    if report.school_year:
        detail = f"Năm học {report.school_year} · {detail}"
    write_cell(ws, 3, 1, detail)
    for r in (1, 2, 3):
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
    return 5


def _write_header(ws: Worksheet, row: int, headers: Sequence[str], widths: Sequence[int]) -> None:
    for col, (text, w) in enumerate(zip(headers, widths, strict=True), start=1):
        cell = write_cell(ws, row, col, text, font=_BOLD)
        cell.fill = _HEADER_FILL
        cell.alignment = _WRAP_CENTER
        cell.border = _BOX
        ws.column_dimensions[get_column_letter(col)].width = w
    ws.row_dimensions[row].height = 32
    # Rows above the data scroll away; the header stays.
    ws.freeze_panes = ws.cell(row=row + 1, column=1)


def write_summary_sheet(
    wb: Workbook, report: UnitReport, questionnaires: Mapping[str, Questionnaire]
) -> Worksheet:
    """Sheet "Tổng hợp": one row per level × questionnaire × dimension of the unit."""
    ws = wb.create_sheet(SUMMARY_SHEET)
    header_row = _write_title(ws, report, len(SUMMARY_HEADERS))
    _write_header(ws, header_row, SUMMARY_HEADERS, _SUMMARY_WIDTHS)
    rows = sorted(
        report.dimensions,
        key=lambda d: (
            _level_key(d.level),
            _questionnaire_key(d.questionnaire, questionnaires),
            _dimension_key(d, questionnaires),
        ),
    )
    r = header_row
    for d in rows:
        r += 1
        values: Iterable[tuple[Any, str | None]] = (
            (LEVEL_LABELS.get(d.level, d.level), None),
            (_questionnaire_label(d.questionnaire, questionnaires), None),
            (_dimension_label(d, questionnaires), None),
            (d.n_respondents, INT_FORMAT),
            (d.n_answers, INT_FORMAT),
            (d.mean_score, MEAN_FORMAT),
            (d.pct_satisfied, PCT_FORMAT),
            (d.pct_dissatisfied, PCT_FORMAT),
        )
        for col, (value, fmt) in enumerate(values, start=1):
            write_cell(ws, r, col, value, number_format=fmt).border = _BOX
    if not rows:
        write_cell(ws, header_row + 1, 1, "Chưa có số liệu của đơn vị trong đợt khảo sát này.")
    else:
        ws.auto_filter.ref = f"A{header_row}:{get_column_letter(len(SUMMARY_HEADERS))}{r}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{header_row}:{header_row}"
    return ws


#: Writes one sheet of a unit workbook.
SheetWriter = Callable[[Workbook, UnitReport, Mapping[str, Questionnaire]], Worksheet]

#: Sheets of a unit workbook, in tab order; the leadership design appends to this.
UNIT_SHEETS: tuple[SheetWriter, ...] = (write_summary_sheet,)


def build_unit_workbook(
    report: UnitReport, questionnaires: Mapping[str, Questionnaire]
) -> Workbook:
    """The workbook of one unit, in memory."""
    wb = Workbook()
    default = wb.active
    for sheet in UNIT_SHEETS:
        sheet(wb, report, questionnaires)
    if default is not None:
        wb.remove(default)
    wb.properties.title = f"{report.campaign_name} · {report.unit_name or report.unit_code}"
    return wb


def unit_workbook_path(output_dir: Path, campaign_id: str, unit_code: str) -> Path:
    """``output_dir/<campaign_id>_<unit_code>.xlsx`` with both parts safe for a file name."""
    return output_dir / f"{safe_file_part(campaign_id)}_{safe_file_part(unit_code)}.xlsx"


def write_unit_workbooks(
    engine: sa.Engine,
    campaign_id: str,
    output_dir: Path,
    questionnaires: Mapping[str, Questionnaire],
) -> list[Path]:
    """Write one summary workbook per reporting unit of the campaign; return their paths.

    Units come from the `unit` table (a unit with no figures yet still gets a workbook saying
    so) plus any unit found only in mart_unit_dimension. Labels come from ``questionnaires``.
    """
    paths = []
    for report in read_unit_reports(engine, campaign_id):
        wb = build_unit_workbook(report, questionnaires)
        paths.append(
            save_workbook(wb, unit_workbook_path(output_dir, campaign_id, report.unit_code))
        )
    return paths
