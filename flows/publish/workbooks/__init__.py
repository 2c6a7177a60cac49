"""Publish: the leadership workbooks, written with openpyxl from the marts.

One workbook per reporting unit, ``<campaign_id>_<unit_code>.xlsx``, and one for the province,
``<campaign_id>_<province_code>.xlsx``; :func:`write_workbooks` writes them all. Sheets, in tab
order (each is one function taking the workbook, the campaign's data and the scope):

- **Tổng hợp**: where the unit stands, on one page: submissions, alerts, then per level and
  questionnaire the satisfaction rate (the CHUNG item and the mean of the five dimension rates,
  the figure published reports use), mean score, expectation met (MONG_DOI), responses and
  schools submitted or missing; a dimension × group matrix and one bar chart per group;
- **Theo tiêu chí**: mart_unit_dimension (the province: ``warehouse.marts.province_dimension``
  and every unit), with the province's rate beside a unit's for comparison;
- **Theo câu hỏi**: mart_unit_question per level, items grouped by dimension with their wording;
- **Theo trường**: mart_school_dimension, schools ranked per questionnaire;
- **Dịch vụ giáo dục**: mart_service_ranking per service;
- **PAPI**: mart_papi, the nine indicators;
- **So sánh năm trước**: year-on-year deltas when ``campaign.previous_id`` has marts here;
- **Cảnh báo**: the ``alerts`` rows of the scope, each with its suggested follow-up;
- **Thông tin**: campaign, run, data cut-off, sources by ledger status, thresholds used.

Figures are written unrounded (number formats show one decimal), so each cell equals its mart
row. Colours follow DOMAIN.md's tiers on pct_satisfied (red below 70, amber below 85, green),
as conditional formats so they follow the thresholds passed in.

Privacy (DOMAIN.md): any figure computed from fewer than :data:`MIN_RESPONDENTS` respondents is
written as ``"<5"``, never the figure; unit and province rows get the same treatment as schools,
because a unit with one small school would otherwise publish that school's figure. No response
row, respondent hash, comment or ledger message is read here, and free text that does reach a
workbook (service names, alert subjects and notes) has e-mail addresses and phone numbers
masked. Everything goes through :func:`write_cell`, which stores text as text: a name starting
with ``=``, ``+``, ``-`` or ``@`` never becomes a formula.

Output is reproducible: the same warehouse gives byte-identical files (fixed properties and zip
times, everything sorted); between two runs over the same data only the run stamp on "Thông
tin" (:data:`STAMP_LABELS`) differs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import io
import pickle
import re
import uuid
import weakref
import zipfile
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell, MergedCell
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.label import DataLabelList
from openpyxl.chart.marker import DataPoint
from openpyxl.chart.text import RichText, Text
from openpyxl.chart.title import Title
from openpyxl.drawing.text import (
    CharacterProperties,
    Paragraph,
    ParagraphProperties,
    RegularTextRun,
)
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.cell_range import CellRange
from openpyxl.worksheet.merge import MergedCellRange
from openpyxl.worksheet.pagebreak import Break
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.xml.functions import tostring

from flows.alerts import RULES, Thresholds, action_for
from schemas.questionnaire import DIMENSIONS, Questionnaire
from warehouse import tables as t
from warehouse.ledger import latest_loads
from warehouse.marts import province_dimension

#: Level codes (schools.csv) in report order, with the names leadership reads.
LEVEL_LABELS: dict[str, str] = {
    "MN": "Mầm non",
    "TH": "Tiểu học",
    "THCS": "Trung học cơ sở",
    "THPT": "Trung học phổ thông",
    "GDTX": "Giáo dục thường xuyên",
}

#: The canonical Likert labels (DOMAIN.md), 1–5: report headers here and the blank form's
#: dropdown (flows.publish.template).
LIKERT_LABELS: dict[int, str] = {
    1: "Rất không hài lòng",
    2: "Không hài lòng",
    3: "Bình thường",
    4: "Hài lòng",
    5: "Rất hài lòng",
}

#: Dimension names where no questionnaire names them (DOMAIN.md), and the short forms used as
#: chart categories and matrix rows.
DIMENSION_LABELS: dict[str, str] = {
    "TIEP_CAN": "Tiếp cận dịch vụ giáo dục",
    "CSVC": "Cơ sở vật chất, trang thiết bị dạy học",
    "MOI_TRUONG": "Môi trường giáo dục",
    "HOAT_DONG": "Hoạt động giáo dục",
    "PHAT_TRIEN": "Sự phát triển và tiến bộ của người học",
    "CHUNG": "Hài lòng chung",
    "MONG_DOI": "Mức đáp ứng mong đợi (%)",
}
DIMENSION_SHORT: dict[str, str] = {
    "TIEP_CAN": "Tiếp cận",
    "CSVC": "Cơ sở vật chất",
    "MOI_TRUONG": "Môi trường",
    "HOAT_DONG": "Hoạt động",
    "PHAT_TRIEN": "Sự phát triển",
    "CHUNG": "Hài lòng chung",
}
#: The 0–100 expectation item's dimension in the marts (warehouse.marts.EXPECTATION_DIMENSION).
EXPECTATION = "MONG_DOI"
#: Label of the published overall rate: the mean of the five dimension rates.
FIVE_MEAN_LABEL = "Bình quân 5 tiêu chí"

SUMMARY_SHEET = "Tổng hợp"
DIMENSION_SHEET = "Theo tiêu chí"
QUESTION_SHEET = "Theo câu hỏi"
SCHOOL_SHEET = "Theo trường"
SERVICE_SHEET = "Dịch vụ giáo dục"
PAPI_SHEET = "PAPI"
YOY_SHEET = "So sánh năm trước"
ALERT_SHEET = "Cảnh báo"
INFO_SHEET = "Thông tin"

#: Figures from fewer respondents than this are written as SUPPRESSED (DOMAIN.md, Privacy).
MIN_RESPONDENTS = 5
SUPPRESSED = "<5"

#: What each threshold (``flows.alerts.Thresholds``, khaosat.yaml ``thresholds:``) means, for
#: the "Thông tin" sheet. The workbooks colour and flag with the same thresholds the alert
#: rules use, so a cell is red exactly when its alert is.
THRESHOLD_LABELS: dict[str, str] = {
    "pct_satisfied_red": "Tỷ lệ hài lòng dưới mức này: mức đỏ",
    "pct_satisfied_amber": "Tỷ lệ hài lòng dưới mức này: mức vàng (mục tiêu quốc gia 2025)",
    "mean_score_red": "Điểm trung bình dưới mức này: mức đỏ",
    "item_pct_dissatisfied_red": "Tỷ lệ không hài lòng của một câu hỏi từ mức này: mức đỏ",
    "min_respondents": "Dưới số phiếu này: mẫu nhỏ, chưa đủ để kết luận",
    "wilson_z": "Hệ số z của khoảng tin cậy Wilson cho mẫu nhỏ",
    "yoy_drop_points": "Giảm so với năm trước từ mức này (điểm %): cảnh báo",
    "papi_pct_yes_min": "Chỉ số PAPI dưới mức này (% Có): cảnh báo",
    "service_total_min": "Dịch vụ dưới số điểm này (trên 80): cảnh báo",
    "service_criterion_poor": "Tiêu chí dịch vụ từ số điểm này trở xuống (Kém = 0): cảnh báo",
    "min_response_share": "Số phiếu dưới tỷ lệ này so với số học sinh: cảnh báo",
    "max_rejected_share": "Tỷ lệ giá trị bị loại của một nguồn trên mức này: cảnh báo",
}

#: Labels of the "Thông tin" rows that carry the run stamp: the only cells that differ between
#: two runs over the same data.
STAMP_LABELS = ("Lần chạy (run id)", "Bắt đầu lần chạy", "Số liệu tính đến")

#: Excel and LibreOffice start a formula with any of these (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@")

#: Written into every workbook's core properties and zip entries, so output is reproducible.
FIXED_TIMESTAMP = dt.datetime(2020, 1, 1)

INT_FORMAT = "#,##0"
MEAN_FORMAT = "0.00"
PCT_FORMAT = "0.0"
POINTS_FORMAT = "0.0"
DELTA_FORMAT = "+0.0;-0.0;0.0"
MEAN_DELTA_FORMAT = "+0.00;-0.00;0.00"
VALUE_FORMAT = "#,##0.0#"
DATE_FORMAT = "dd/mm/yyyy"
DATETIME_FORMAT = "dd/mm/yyyy hh:mm"

_BOLD = Font(bold=True)
_ITALIC = Font(italic=True, color="595959")
_TITLE = Font(bold=True, size=14)
_SECTION = Font(bold=True, size=12, color="1F4E78")
_HEADER_FILL = PatternFill("solid", start_color="DDEBF7")
_GROUP_FILL = PatternFill("solid", start_color="F2F2F2")
_THIN = Side(style="thin", color="A6A6A6")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_WRAP_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
_WRAP = Alignment(vertical="top", wrap_text=True)
# Table cells sit mid-row, so a number lines up with the wrapped name beside it.
_MIDDLE = Alignment(vertical="center")
_WRAP_MIDDLE = Alignment(vertical="center", wrap_text=True)
_SUPPRESSED_ALIGN = Alignment(horizontal="right", vertical="center")
_LEFT = Alignment(horizontal="left")

#: Tier colours: cell fill and font (Excel's own good/neutral/bad styles) and chart bars.
_TIER_STYLE = {
    "red": ("FFC7CE", "9C0006", "C00000"),
    "amber": ("FFEB9C", "9C5700", "FFC000"),
    "green": ("C6EFCE", "006100", "70AD47"),
}
#: The "Mức" cell of a red or amber alert: the tier's fill, its font in bold.
_SEVERITY_STYLE = {
    tier: (PatternFill("solid", start_color=fill, end_color=fill), Font(color=font, bold=True))
    for tier, (fill, font, _) in _TIER_STYLE.items()
}

# Characters a file name must not carry from a registry code (separators, "..", shell specials).
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
# Personal data that free text might carry into a workbook (a service name or alert note typed
# by someone): e-mail addresses and Vietnamese phone numbers (0xx…, +84…, with separators).
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w+])(?:\+?84|0)(?:[\s.-]?\d){8,10}(?!\d)")
_MASK = "[đã ẩn]"


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
        _set_style(cell, font=font)
    return cell


# Per workbook: (style list, id of a Font/PatternFill/Border/Alignment) -> (the object, its
# index in the workbook's list). Assigning ``cell.border = x`` makes openpyxl hash ``x`` to find
# its index, and hashing a Border walks its Sides and Colors: the largest share of the time
# spent writing a province's workbooks went there. The object is kept in the entry so its id
# cannot be reused.
_STYLE_IDS: weakref.WeakKeyDictionary[Workbook, dict[tuple[str, int], tuple[Any, int]]] = (
    weakref.WeakKeyDictionary()
)


def _style_id(
    ids: dict[tuple[str, int], tuple[Any, int]], wb: Workbook, collection: str, style: Any
) -> int:
    found = ids.get((collection, id(style)))
    if found is not None:
        return found[1]
    # The same call openpyxl makes on assignment, so indexes and their order are unchanged.
    index: int = getattr(wb, collection).add(style)
    ids[(collection, id(style))] = (style, index)
    return index


def _style_array(cell: Any) -> StyleArray:
    """The cell's style indexes (a new cell has none until its first style)."""
    if cell._style is None:
        cell._style = StyleArray()
    return cell._style


def _set_style(
    cell: Cell,
    *,
    font: Font | None = None,
    fill: PatternFill | None = None,
    border: Border | None = None,
    alignment: Alignment | None = None,
) -> Cell:
    """Set the given styles of ``cell``; the same as assigning ``cell.font`` etc., faster.

    The style objects must not be changed afterwards (openpyxl treats them as values too): an
    object is looked up in the workbook's style lists once, by identity, and its index reused.
    """
    wb = cell.parent.parent
    ids = _STYLE_IDS.get(wb)
    if ids is None:
        ids = _STYLE_IDS[wb] = {}
    style = _style_array(cell)
    if font is not None:
        style.fontId = _style_id(ids, wb, "_fonts", font)
    if fill is not None:
        style.fillId = _style_id(ids, wb, "_fills", fill)
    if border is not None:
        style.borderId = _style_id(ids, wb, "_borders", border)
    if alignment is not None:
        style.alignmentId = _style_id(ids, wb, "_alignments", alignment)
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


def mask_personal(text: str) -> str:
    """``text`` with e-mail addresses and phone numbers replaced by "[đã ẩn]"."""
    return _PHONE.sub(_MASK, _EMAIL.sub(_MASK, text))


def unit_workbook_path(output_dir: Path, campaign_id: str, unit_code: str) -> Path:
    """``output_dir/<campaign_id>_<unit_code>.xlsx`` with both parts safe for a file name."""
    return output_dir / f"{safe_file_part(campaign_id)}_{safe_file_part(unit_code)}.xlsx"


# ---------------------------------------------------------------------------------------------
# What the workbooks show, read from the warehouse once per call

Row = dict[str, Any]


def _plain(value: Any) -> Any:
    # PostgreSQL NUMERIC arrives as Decimal; openpyxl writes floats.
    return float(value) if isinstance(value, Decimal) else value


def _fetch(conn: sa.Connection, stmt: sa.Select[Any]) -> list[Row]:
    return [{k: _plain(v) for k, v in r._mapping.items()} for r in conn.execute(stmt)]


@dataclass
class CampaignData:
    """Every row the workbooks of one campaign show (marts are aggregates: this stays small)."""

    campaign_id: str
    name: str
    school_year: str
    opens: dt.date | None
    closes: dt.date | None
    deadline: dt.date | None
    previous_id: str | None
    province_code: str
    units: dict[str, str]
    schools: dict[str, Row]
    unit_dimension: list[Row]
    province_dimension: list[Row]
    unit_question: list[Row]
    school_dimension: list[Row]
    papi: list[Row]
    services: list[Row]
    completeness: list[Row]
    alerts: list[Row]
    sources: list[Row]
    run: Row | None
    previous_unit_dimension: list[Row]
    previous_province_dimension: list[Row]
    questionnaires: Mapping[str, Questionnaire]
    thresholds: dict[str, float]
    #: khaosat.yaml ``actions:``: the province's own follow-up actions (``action_for``).
    actions: dict[str, str] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def _lookups(self) -> _Lookups:
        """The rows above indexed by the keys the sheets look them up by, built on first use.

        Built once per campaign rather than scanning every mart for each unit, school and
        alert; the rows must not change after this is first read."""
        return _Lookups(self)


def _grouped(rows: Iterable[Row], *columns: str) -> dict[tuple[Any, ...], list[Row]]:
    """``rows`` grouped by the values of ``columns``, each group in the rows' order."""
    out: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for r in rows:
        out[tuple(r[c] for c in columns)].append(r)
    return dict(out)


class _Lookups:
    """A campaign's mart rows indexed for the sheets (``CampaignData._lookups``).

    Every group keeps the rows' original order, so a sheet that used to filter a whole mart
    finds the same rows in the same order."""

    def __init__(self, data: CampaignData) -> None:
        self.unit_dimension = _grouped(data.unit_dimension, "unit_code")
        self.unit_dimension_q = _grouped(data.unit_dimension, "unit_code", "questionnaire")
        self.unit_question = _grouped(data.unit_question, "unit_code")
        self.unit_question_item = _grouped(
            data.unit_question, "unit_code", "level", "questionnaire", "question_code"
        )
        self.school_dimension = _grouped(data.school_dimension, "questionnaire", "school_code")
        self.school_dimension_q = _grouped(data.school_dimension, "school_code", "questionnaire")
        self.school_questionnaires = {r["questionnaire"] for r in data.school_dimension}
        self.completeness = _grouped(data.completeness, "school_code", "questionnaire")
        # school_code -> n_valid per questionnaire, the last row winning as in a dict literal.
        self.n_valid: dict[str, dict[str, int]] = defaultdict(dict)
        for r in data.completeness:
            self.n_valid[r["questionnaire"]][r["school_code"]] = int(r["n_valid"] or 0)
        self.papi = _grouped(data.papi, "scope", "scope_code", "indicator")
        self.known_items = {i.code for q in data.questionnaires.values() for i in q.items}
        self.subjects: dict[str, _Subject] = {}
        self.subject_texts: dict[str, str] = {}


def read_campaign(
    engine: sa.Engine,
    campaign_id: str,
    questionnaires: Mapping[str, Questionnaire],
    *,
    run_id: str | None = None,
    thresholds: Mapping[str, float] | Thresholds | None = None,
    actions: Mapping[str, str] | None = None,
) -> CampaignData:
    """Read what the campaign's workbooks show: registry, marts, alerts, the run and ledger.

    ``run_id`` names the run whose stamp and ledger the workbooks carry (default: the latest
    run of the campaign). Each source's state is its latest ledger row up to that run, so a
    re-run of one school still reports every source.
    """
    c = t.campaign
    with engine.connect() as conn:
        camp = conn.execute(sa.select(c).where(c.c.campaign_id == campaign_id)).first()

        def rows(table: sa.Table, cid: str = campaign_id) -> list[Row]:
            key = [col for col in table.primary_key.columns] or list(table.columns)
            return _fetch(conn, sa.select(table).where(table.c.campaign_id == cid).order_by(*key))

        units = {r["unit_code"]: r["unit_name"] or r["unit_code"] for r in rows(t.unit)}
        schools = {r["school_code"]: r for r in rows(t.school)}
        data = {
            "unit_dimension": rows(t.mart_unit_dimension),
            "unit_question": rows(t.mart_unit_question),
            "school_dimension": rows(t.mart_school_dimension),
            "papi": rows(t.mart_papi),
            "services": rows(t.mart_service_ranking),
            "completeness": rows(t.mart_completeness),
            "alerts": rows(t.alerts),
        }
        run = _read_run(conn, campaign_id, run_id)
        sources = _read_sources(conn, campaign_id, run)
        previous_id = camp.previous_id if camp is not None else None
        previous = rows(t.mart_unit_dimension, previous_id) if previous_id else []
    if not isinstance(thresholds, Thresholds):
        thresholds = Thresholds.from_mapping(thresholds)
    return CampaignData(
        campaign_id=campaign_id,
        name=(camp.name if camp is not None else "") or campaign_id,
        school_year=(camp.school_year if camp is not None else "") or "",
        opens=camp.opens if camp is not None else None,
        closes=camp.closes if camp is not None else None,
        deadline=camp.deadline if camp is not None else None,
        previous_id=previous_id,
        province_code=(camp.province_code if camp is not None else "") or "TINH",
        units=units,
        schools=schools,
        province_dimension=_frame_rows(province_dimension(engine, campaign_id)),
        previous_unit_dimension=previous,
        previous_province_dimension=(
            _frame_rows(province_dimension(engine, previous_id)) if previous_id and previous else []
        ),
        run=run,
        sources=sources,
        questionnaires=questionnaires,
        thresholds=dataclasses.asdict(thresholds),
        actions=dict(actions or {}),
        **data,
    )


def _frame_rows(frame: Any) -> list[Row]:
    """province_dimension's DataFrame as rows, NaN as None."""
    return [
        {k: None if isinstance(v, float) and v != v else _plain(v) for k, v in rec.items()}
        for rec in frame.to_dict("records")
    ]


def _read_run(conn: sa.Connection, campaign_id: str, run_id: str | None) -> Row | None:
    r = t.run
    stmt = sa.select(r).where(r.c.campaign_id == campaign_id)
    if run_id is not None:
        found = _fetch(conn, stmt.where(r.c.run_id == run_id))
        # A run id the warehouse does not know still goes on the stamp.
        return found[0] if found else {"run_id": run_id, "started_at": None, "status": None}
    latest = _fetch(conn, stmt.order_by(r.c.started_at.desc(), r.c.run_id.desc()).limit(1))
    return latest[0] if latest else None


def _read_sources(conn: sa.Connection, campaign_id: str, run: Row | None) -> list[Row]:
    """Active sources with the status of their latest ledger row up to ``run``."""
    s, led = t.source, t.load_ledger
    upto = sa.select(sa.func.max(led.c.load_id)).where(led.c.campaign_id == campaign_id)
    if run is not None:
        in_run = conn.execute(upto.where(led.c.run_id == run["run_id"])).scalar()
        if in_run is not None:
            upto = sa.select(sa.literal(in_run))
    last = latest_loads(campaign_id, led.c.load_id <= upto.scalar_subquery(), name="last")
    stmt = (
        sa.select(
            s.c.school_code,
            s.c.questionnaire,
            s.c.location,
            led.c.status,
            led.c.modified_at,
        )
        .select_from(
            s.outerjoin(last, last.c.source_id == s.c.source_id).outerjoin(
                led, led.c.load_id == last.c.load_id
            )
        )
        .where(s.c.campaign_id == campaign_id, s.c.is_active.is_(sa.true()))
        .order_by(s.c.school_code, s.c.questionnaire, s.c.location)
    )
    return _fetch(conn, stmt)


@dataclass
class Scope:
    """What one workbook covers: a reporting unit, or the whole province."""

    kind: str  # "unit" | "province"
    code: str
    name: str
    unit_codes: list[str]
    school_codes: list[str] = field(default_factory=list)
    _schools: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._schools = frozenset(self.school_codes)

    @property
    def is_province(self) -> bool:
        """True for the province's workbook."""
        return self.kind == "province"

    def has_school(self, code: str) -> bool:
        """True if the school belongs to the scope."""
        return code in self._schools


def unit_scope(data: CampaignData, unit_code: str) -> Scope:
    """The scope of one unit's workbook."""
    codes = sorted(c for c, s in data.schools.items() if s["unit_code"] == unit_code)
    return Scope("unit", unit_code, data.units.get(unit_code, unit_code), [unit_code], codes)


def province_scope(data: CampaignData) -> Scope:
    """The scope of the province workbook."""
    units = sorted(set(data.units) | {r["unit_code"] for r in data.unit_dimension})
    return Scope("province", data.province_code, "Toàn tỉnh", units, sorted(data.schools))


# ---------------------------------------------------------------------------------------------
# Small pure helpers


def _level_key(level: str) -> tuple[int, str]:
    order = list(LEVEL_LABELS)
    return (order.index(level) if level in order else len(order), level)


def _q_key(code: str, questionnaires: Mapping[str, Questionnaire]) -> tuple[int, str]:
    order = list(questionnaires)
    return (order.index(code) if code in order else len(order), code)


def _dim_key(dimension: str, q: Questionnaire | None) -> tuple[int, str]:
    order = [*DIMENSIONS, "CHUNG", EXPECTATION]
    if q is not None:
        order = [*q.dimensions, *(d for d in order if d not in q.dimensions)]
    return (order.index(dimension) if dimension in order else len(order), dimension)


def _group_key(data: CampaignData, level: str, questionnaire: str) -> tuple[Any, ...]:
    return (_level_key(level), _q_key(questionnaire, data.questionnaires))


def _q_label(data: CampaignData, code: str) -> str:
    """How a questionnaire is named in a table whose rows also name the level."""
    q = data.questionnaires.get(code)
    if q is None:
        return code
    # Cấp học is its own column, so who answered is what tells the THPT forms apart; the
    # PAPI and service review forms are named for what they are.
    if q.kind == "papi":
        return f"{q.respondent} (PAPI)"
    if q.kind == "service_review":
        return SERVICE_SHEET
    return q.respondent


def _dim_label(data: CampaignData, questionnaire: str, dimension: str) -> str:
    q = data.questionnaires.get(questionnaire)
    if q is not None and dimension in q.dimensions:
        return q.dimensions[dimension]
    return DIMENSION_LABELS.get(dimension, dimension)


def _is_satisfaction(data: CampaignData, code: str) -> bool:
    q = data.questionnaires.get(code)
    return q is None or q.kind == "satisfaction"


def _small(n: Any) -> bool:
    return n is not None and n < MIN_RESPONDENTS


def _shown(value: Any, n: Any) -> Any:
    """The figure, or SUPPRESSED when it comes from fewer than MIN_RESPONDENTS respondents."""
    if value is None:
        return None
    return SUPPRESSED if _small(n) else value


def _mean(values: Iterable[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return sum(got) / len(got) if got else None


def _five_mean(by_dim: Mapping[str, Row], column: str) -> Any:
    """Mean over the five dimensions of ``column`` (the published overall figure); SUPPRESSED
    if any dimension's figure is (a mean would let the hidden figure be worked out)."""
    rows = [by_dim[d] for d in DIMENSIONS if d in by_dim]
    if any(_small(r.get("n_respondents")) for r in rows):
        return SUPPRESSED
    return _mean(r.get(column) for r in rows)


def _rank(values: Sequence[float]) -> list[int]:
    """Competition ranks, highest first; ties share a rank (1, 2, 2, 4)."""
    return [1 + sum(other > v for other in values) for v in values]


def _tier(value: Any, th: Mapping[str, float]) -> str | None:
    if not isinstance(value, int | float):
        return None
    if value < th["pct_satisfied_red"]:
        return "red"
    if value < th["pct_satisfied_amber"]:
        return "amber"
    return "green"


def _tier_text(value: Any, th: Mapping[str, float]) -> str:
    tier = _tier(value, th)
    if tier == "green":
        return f"Đạt mục tiêu (≥ {th['pct_satisfied_amber']:g}%)"
    if tier == "amber":
        return f"Dưới mục tiêu ({th['pct_satisfied_red']:g}–{th['pct_satisfied_amber']:g}%)"
    if tier == "red":
        return f"Thấp (< {th['pct_satisfied_red']:g}%)"
    return ""


# ---------------------------------------------------------------------------------------------
# Sheet scaffolding: titles, headers, styles, print setup


def _new_sheet(
    wb: Workbook, title: str, data: CampaignData, scope: Scope, note: str | None = None
) -> tuple[Worksheet, int]:
    """A sheet with its title block (sheet name and scope, campaign, note); returns the sheet
    and the first free row."""
    ws = wb.create_sheet(title)
    where = scope.name if scope.is_province else f"{scope.name} ({scope.code})"
    write_cell(ws, 1, 1, f"{title.upper()} · {where}", font=_TITLE)
    ws.row_dimensions[1].height = 22  # room for the marks above Vietnamese capitals
    detail = data.name
    if data.school_year and data.school_year not in data.name:
        detail += f" · năm học {data.school_year}"
    write_cell(ws, 2, 1, f"{detail} · đợt {data.campaign_id}", font=_BOLD)
    if note:
        write_cell(ws, 3, 1, note, font=_ITALIC)
    return ws, 5


def _section(ws: Worksheet, row: int, text: str) -> None:
    write_cell(ws, row, 1, text, font=_SECTION)


def _header(ws: Worksheet, row: int, headers: Sequence[str], start: int = 1) -> None:
    for col, text in enumerate(headers, start=start):
        cell = write_cell(ws, row, col, text, font=_BOLD)
        _set_style(cell, fill=_HEADER_FILL, alignment=_WRAP_CENTER, border=_BOX)


def _widths(ws: Worksheet, widths: Sequence[float]) -> None:
    for col, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = w


def _put(
    ws: Worksheet, row: int, col: int, value: Any, fmt: str | None = None, *, wrap: bool = False
) -> Cell:
    """A bordered table cell; text figures (SUPPRESSED) are right-aligned like numbers."""
    cell = write_cell(ws, row, col, value, number_format=fmt)
    if value == SUPPRESSED:
        alignment = _SUPPRESSED_ALIGN
    elif wrap:
        alignment = _WRAP_MIDDLE
    else:
        alignment = _MIDDLE
    return _set_style(cell, border=_BOX, alignment=alignment)


# Per workbook: (border index of a cell, edge, border index of the range's top-left cell) ->
# index of the cell's border once merged.
_MERGED_BORDERS: weakref.WeakKeyDictionary[Workbook, dict[tuple[int, str, int], int]] = (
    weakref.WeakKeyDictionary()
)


def merge_cells(
    ws: Worksheet, first_row: int, first_col: int, last_row: int, last_col: int
) -> None:
    """Merge a range of cells: the same as ``ws.merge_cells(...)``, faster.

    openpyxl gives every cell on the edge of the range the top-left cell's border on that
    edge by adding two Border objects and hashing the sum, once per cell: about a third of the
    time spent building a province's workbooks once cells were styled by index. This does
    what ``Worksheet.merge_cells`` does (openpyxl 3.1, ``MergedCellRange.format``) with each
    sum worked out once per workbook; tests/test_workbooks.py checks the two give the same
    file.
    """
    wb = ws.parent
    merged = MergedCellRange(
        ws,
        CellRange(min_row=first_row, min_col=first_col, max_row=last_row, max_col=last_col).coord,
    )
    ws.merged_cells.add(merged)
    cells = merged.cells
    next(cells)  # the top-left cell keeps its value and style
    for row, col in cells:
        ws._cells[row, col] = MergedCell(ws, row, col)
    sums = _MERGED_BORDERS.get(wb)
    if sums is None:
        sums = _MERGED_BORDERS[wb] = {}
    borders = wb._borders
    start = merged.start_cell
    for edge in ("top", "left", "right", "bottom"):
        source = _style_array(start).borderId
        side = getattr(borders[source], edge)
        if side and side.style is None:
            continue
        for coord in getattr(merged, edge):
            cell = ws._cells.get(coord)
            if cell is None:
                cell = ws._cells[coord] = MergedCell(ws, *coord)
            style = _style_array(cell)
            key = (style.borderId, edge, source)
            index = sums.get(key)
            if index is None:
                index = sums[key] = borders.add(borders[style.borderId] + Border(**{edge: side}))
            style.borderId = index
    # Every cell of the range takes the top-left cell's protection.
    protection = _style_array(start).protectionId
    for coord in merged.cells:
        _style_array(ws._cells[coord]).protectionId = protection


def _group_row(ws: Worksheet, row: int, text: str, width: int) -> None:
    for col in range(1, width + 1):
        _set_style(ws.cell(row=row, column=col), fill=_GROUP_FILL, border=_BOX)
    write_cell(ws, row, 1, text, font=_BOLD)
    merge_cells(ws, row, 1, row, width)


def _tier_rules(ws: Worksheet, ref: str, th: Mapping[str, float]) -> None:
    """Conditional fills on a range of pct_satisfied cells (numbers only: "<5" stays plain)."""
    top_left = ref.split(":")[0]
    red, target = th["pct_satisfied_red"], th["pct_satisfied_amber"]
    conditions = {
        "red": f"AND(ISNUMBER({top_left}),{top_left}<{red:g})",
        "amber": f"AND(ISNUMBER({top_left}),{top_left}>={red:g},{top_left}<{target:g})",
        "green": f"AND(ISNUMBER({top_left}),{top_left}>={target:g})",
    }
    for tier, formula in conditions.items():
        fill, font, _ = _TIER_STYLE[tier]
        ws.conditional_formatting.add(
            ref,
            FormulaRule(
                formula=[formula],
                fill=PatternFill("solid", start_color=fill, end_color=fill),
                font=Font(color=font),
                stopIfTrue=True,
            ),
        )


def _flag_rule(ws: Worksheet, ref: str, condition: str, tier: str = "red") -> None:
    """A conditional fill where ``condition`` (written for the range's top-left cell as
    ``{c}``) holds on a number."""
    top_left = ref.split(":")[0]
    fill, font, _ = _TIER_STYLE[tier]
    ws.conditional_formatting.add(
        ref,
        FormulaRule(
            formula=[f"AND(ISNUMBER({top_left}),{condition.format(c=top_left)})"],
            fill=PatternFill("solid", start_color=fill, end_color=fill),
            font=Font(color=font),
            stopIfTrue=True,
        ),
    )


def _col_range(col: int, first: int, last: int) -> str:
    letter = get_column_letter(col)
    return f"{letter}{first}:{letter}{last}"


# A cell never styled has no style array: index 0 of every style list, the defaults.
_NO_STYLE = StyleArray()


def fit_row_heights(ws: Worksheet) -> None:
    """Give rows with wrapped text the height it needs, estimated from the column widths.

    Neither Excel nor LibreOffice grows a row for wrapped text in a file it did not lay out
    itself, so a long school name or item wording would be cut off on screen and on paper.
    Rows without wrapped text keep their height.
    """
    wb = ws.parent
    # Each cell's alignment and font read from the workbook's style lists by index: going
    # through cell.alignment builds a proxy object per cell.
    alignments, fonts = wb._alignments, wb._fonts
    column_widths: dict[int, float] = {}

    def column_width(col: int) -> float:
        if col not in column_widths:
            column_widths[col] = _column_width(ws, col)
        return column_widths[col]

    widths: dict[tuple[int, int], float] = {}
    for coord in ws.merged_cells.ranges:
        span = range(coord.min_col, coord.max_col + 1)
        widths[(coord.min_row, coord.min_col)] = sum(column_width(c) for c in span)
    for row in ws.iter_rows():
        lines = 1
        for cell in row:
            value = cell.value
            if not isinstance(value, str):
                continue
            style = cell._style or _NO_STYLE
            if not alignments[style.alignmentId].wrap_text:
                continue
            width = widths.get((cell.row, cell.column)) or column_width(cell.column)
            # The cell's padding takes about one character of the width.
            usable = max(1.0, width - 1.0)
            bold = bool(fonts[style.fontId].b)
            lines = max(lines, _wrapped_lines(value, usable, bold=bold))
        if lines > 1:
            ws.row_dimensions[row[0].row].height = 15 * lines + 2


def _text_width(text: str, bold: bool) -> float:
    """Width of ``text`` in column-width units (the digit "0"), erring wide: lower-case
    Vietnamese averages about 0.85 of it in the fonts LibreOffice substitutes for Calibri (less
    in Calibri itself), capitals, digits and symbols about 1; bold about a tenth more. A row a
    little too tall costs nothing; one too short hides text."""
    width = sum(0.85 if c.islower() else 0.55 if c == " " else 1.0 for c in text)
    return width * (1.1 if bold else 1.0)


# The same names and wordings come back in every workbook of a province.
@functools.lru_cache(maxsize=1 << 16)
def _wrapped_lines(text: str, per_line: float, *, bold: bool = False) -> int:
    """Lines ``text`` takes when wrapped at word boundaries in ``per_line`` width units."""
    space = _text_width(" ", bold)
    lines = 0
    for paragraph in text.split("\n"):
        lines += 1
        used = 0.0
        for word in paragraph.split():
            size = _text_width(word, bold)
            if used and used + space + size > per_line:
                lines += 1
                used = 0.0
            used += size + (space if used else 0.0)
            while used > per_line:  # a word longer than the line breaks inside it
                lines += 1
                used -= per_line
    return lines


def _column_width(ws: Worksheet, col: int) -> float:
    width = ws.column_dimensions[get_column_letter(col)].width
    return float(width) if width else 8.43


def _print_setup(ws: Worksheet, header_rows: tuple[int, int] | None, freeze: str | None) -> None:
    """A4 landscape, fitted to the page width, header rows repeated on every page; rows with
    wrapped text made tall enough to show it."""
    fit_row_heights(ws)
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    ws.print_options.horizontalCentered = True
    ws.oddFooter.left.text = "&A"
    ws.oddFooter.right.text = "Trang &P / &N"
    if header_rows is not None:
        ws.print_title_rows = f"{header_rows[0]}:{header_rows[1]}"
    if freeze is not None:
        # Rows above the data scroll away; the header stays.
        ws.freeze_panes = freeze


def _empty(ws: Worksheet, row: int, text: str) -> None:
    write_cell(ws, row, 1, text, font=_ITALIC)


# ---------------------------------------------------------------------------------------------
# Figures per scope


def _scope_dims(data: CampaignData, scope: Scope) -> list[Row]:
    """The scope's own dimension rows: the unit's mart rows, or the province's figures."""
    if scope.is_province:
        return data.province_dimension
    return list(data._lookups.unit_dimension.get((scope.code,), []))


def _by_group(rows: Iterable[Row]) -> dict[tuple[str, str], dict[str, Row]]:
    """(level, questionnaire) -> dimension -> row."""
    out: dict[tuple[str, str], dict[str, Row]] = defaultdict(dict)
    for r in rows:
        out[(r["level"], r["questionnaire"])][r["dimension"]] = r
    return out


def _scope_completeness(data: CampaignData, scope: Scope) -> list[Row]:
    """mart_completeness rows of the scope's schools, with the school's level."""
    out = []
    for r in data.completeness:
        if scope.has_school(r["school_code"]):
            school = data.schools.get(r["school_code"], {})
            out.append({**r, "level": school.get("level", "")})
    return out


@dataclass
class GroupSummary:
    """One row of "Tổng hợp": a level × questionnaire of the scope."""

    level: str
    questionnaire: str
    n_expected: int = 0
    n_submitted: int = 0
    n_late: int = 0
    n_not_submitted: int = 0
    n_failed: int = 0
    n_responses: int = 0
    pct_five: Any = None
    pct_chung: Any = None
    mean_five: Any = None
    expectation: Any = None


def summarise(data: CampaignData, scope: Scope) -> list[GroupSummary]:
    """Per level × questionnaire: completeness counts (mart_completeness) and the headline
    figures (the scope's dimension rows), in report order."""
    groups: dict[tuple[str, str], GroupSummary] = {}

    def group(level: str, questionnaire: str) -> GroupSummary:
        key = (level, questionnaire)
        if key not in groups:
            groups[key] = GroupSummary(level, questionnaire)
        return groups[key]

    for r in _scope_completeness(data, scope):
        g = group(r["level"], r["questionnaire"])
        g.n_expected += 1
        status = r["status"]
        if status in ("submitted", "late"):
            g.n_submitted += 1
            g.n_late += status == "late"
        elif status == "failed":
            g.n_failed += 1
        else:  # pending, missing
            g.n_not_submitted += 1
        g.n_responses += int(r["n_valid"] or 0)
    for (level, questionnaire), dims in _by_group(_scope_dims(data, scope)).items():
        g = group(level, questionnaire)
        g.pct_five = _five_mean(dims, "pct_satisfied")
        g.mean_five = _five_mean(dims, "mean_score")
        chung, expectation = dims.get("CHUNG"), dims.get(EXPECTATION)
        if chung is not None:
            g.pct_chung = _shown(chung["pct_satisfied"], chung["n_respondents"])
        if expectation is not None:
            g.expectation = _shown(expectation["mean_score"], expectation["n_respondents"])
    return [groups[k] for k in sorted(groups, key=lambda k: _group_key(data, *k))]


# ---------------------------------------------------------------------------------------------
# Sheet: Tổng hợp

SUMMARY_HEADERS = (
    "Cấp học",
    "Phiếu",
    "Số trường phải nộp",
    "Đã nộp",
    "Trong đó nộp muộn",
    "Chưa nộp",
    "Lỗi tệp",
    "Số phiếu hợp lệ",
    "Tỷ lệ hài lòng (%) bình quân 5 tiêu chí",
    "Tỷ lệ hài lòng chung (%) (câu hỏi chung)",
    "Điểm trung bình bình quân 5 tiêu chí",
    "Mức đáp ứng mong đợi (%)",
    "Đánh giá",
)
_SUMMARY_WIDTHS = (20, 20, 10, 9, 10, 9, 8, 10, 13, 13, 12, 12, 26)
#: Row of the summary table's header (rows above: title block and key lines).
SUMMARY_HEADER_ROW = 9


def write_summary_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "Tổng hợp": the scope's state at a glance, for leadership."""
    ws, _ = _new_sheet(wb, SUMMARY_SHEET, data, scope)
    th = data.thresholds
    width = len(SUMMARY_HEADERS)
    groups = summarise(data, scope)

    expected = sum(g.n_expected for g in groups)
    submitted = sum(g.n_submitted for g in groups)
    lines = [
        f"Nộp phiếu: {submitted}/{expected} phiếu phải nộp đã nộp "
        f"({sum(g.n_late for g in groups)} nộp muộn); "
        f"{sum(g.n_not_submitted for g in groups)} chưa nộp; "
        f"{sum(g.n_failed for g in groups)} tệp lỗi chưa đọc được.",
    ]
    active = [a for a in _scope_alerts(data, scope) if a["status"] != "resolved"]
    by_severity = Counter(a["severity"] for a in active)
    lines.append(
        f"Cảnh báo chưa xử lý: {by_severity.get('red', 0)} mức đỏ, "
        f"{by_severity.get('amber', 0)} mức vàng, {by_severity.get('info', 0)} thông tin "
        f"(xem trang {ALERT_SHEET})."
    )
    rated = [g for g in groups if isinstance(g.pct_five, int | float)]
    reached = sum(g.pct_five >= th["pct_satisfied_amber"] for g in rated)
    lines.append(
        f"Mục tiêu ≥ {th['pct_satisfied_amber']:g}% hài lòng (QĐ 2034/QĐ-BGDĐT): "
        f"{reached}/{len(rated)} nhóm đạt (tỷ lệ bình quân 5 tiêu chí)."
    )
    lines.append(
        f"Màu: xanh ≥ {th['pct_satisfied_amber']:g}%, vàng {th['pct_satisfied_red']:g}–"
        f"{th['pct_satisfied_amber']:g}%, đỏ < {th['pct_satisfied_red']:g}%. Số liệu của nhóm "
        f"dưới {MIN_RESPONDENTS} người trả lời được ẩn ({SUPPRESSED})."
    )
    for i, line in enumerate(lines):
        _set_style(
            write_cell(ws, 4 + i, 1, line, font=_BOLD if i < 3 else _ITALIC), alignment=_WRAP
        )

    hr = SUMMARY_HEADER_ROW
    _header(ws, hr, SUMMARY_HEADERS)
    _widths(ws, _SUMMARY_WIDTHS)
    r = hr
    for g in groups:
        r += 1
        satisfaction = _is_satisfaction(data, g.questionnaire)
        verdict = _tier_text(g.pct_five, th) if satisfaction else ""
        if not satisfaction:
            kind = data.questionnaires[g.questionnaire].kind
            verdict = f"Xem trang {PAPI_SHEET if kind == 'papi' else SERVICE_SHEET}"
        elif g.pct_five == SUPPRESSED:
            verdict = f"Dưới {MIN_RESPONDENTS} người trả lời: số liệu ẩn"
        elif g.n_responses and g.n_responses < th["min_respondents"]:
            verdict = (verdict + "; " if verdict else "") + f"mẫu nhỏ (< {th['min_respondents']:g})"
        values: list[tuple[Any, str | None]] = [
            (LEVEL_LABELS.get(g.level, g.level), None),
            (_q_label(data, g.questionnaire), None),
            (g.n_expected, INT_FORMAT),
            (g.n_submitted, INT_FORMAT),
            (g.n_late, INT_FORMAT),
            (g.n_not_submitted, INT_FORMAT),
            (g.n_failed, INT_FORMAT),
            (g.n_responses, INT_FORMAT),
            (g.pct_five, PCT_FORMAT),
            (g.pct_chung, PCT_FORMAT),
            (g.mean_five, MEAN_FORMAT),
            (g.expectation, PCT_FORMAT),
            (verdict, None),
        ]
        for col, (value, fmt) in enumerate(values, start=1):
            _put(ws, r, col, value, fmt, wrap=col in (1, 2, width))
    if not groups:
        _empty(ws, hr + 1, "Chưa có số liệu trong đợt khảo sát này.")
        r = hr + 1
    else:
        ws.auto_filter.ref = f"A{hr}:{get_column_letter(width)}{r}"
        _tier_rules(ws, f"I{hr + 1}:J{r}", th)
        _flag_rule(ws, _col_range(11, hr + 1, r), "{c}<" + f"{th['mean_score_red']:g}")
        _flag_rule(ws, _col_range(6, hr + 1, r), "{c}>0", "amber")
        _flag_rule(ws, _col_range(7, hr + 1, r), "{c}>0", "red")
    for i in range(4, 8):  # key lines span the table's width
        merge_cells(ws, i, 1, i, width)
    _matrix_and_charts(ws, r + 2, data, scope)
    # No repeated header rows: later pages hold the matrix and charts, not the table.
    _print_setup(ws, None, f"C{hr + 1}")
    return ws


#: Chart grid on "Tổng hợp": columns where each chart of a row starts (about 11 cm apart with
#: the summary's column widths), chart size, sheet rows per chart row, and the rows an A4
#: landscape page holds at the scale that fits the summary's width.
_CHART_COLUMNS = ("A", "E", "K")
_CHARTS_PER_ROW = len(_CHART_COLUMNS)
_CHART_WIDTH_CM = 11.5
_CHART_HEIGHT_CM = 6.5
_CHART_ROWS = 14
_PAGE_ROWS = 44


def _chart_title(text: str) -> Title:
    """A chart title at 11 pt: the default (18 pt in LibreOffice) crowds a small chart."""
    font = CharacterProperties(sz=1100, b=True)
    paragraph = Paragraph(
        pPr=ParagraphProperties(defRPr=font), r=[RegularTextRun(rPr=font, t=text)]
    )
    return Title(tx=Text(rich=RichText(p=[paragraph])), overlay=False)


def _matrix_and_charts(ws: Worksheet, row: int, data: CampaignData, scope: Scope) -> None:
    """Dimension × group matrix of pct_satisfied, and one bar chart per group under it."""
    th = data.thresholds
    groups = {
        k: v for k, v in _by_group(_scope_dims(data, scope)).items() if _is_satisfaction(data, k[1])
    }
    keys = sorted(groups, key=lambda k: _group_key(data, *k))
    if not keys:
        return
    _section(ws, row, "Tỷ lệ hài lòng (%) theo tiêu chí")
    hr = row + 1
    labels = [f"{LEVEL_LABELS.get(lv, lv)} – {_q_label(data, q)}" for lv, q in keys]
    _header(ws, hr, ["Tiêu chí", "", *labels])
    merge_cells(ws, hr, 1, hr, 2)
    dims = [*DIMENSIONS, "CHUNG"]
    first = hr + 1
    for i, dim in enumerate([*dims, "FIVE"]):
        r = first + i
        label = FIVE_MEAN_LABEL if dim == "FIVE" else DIMENSION_SHORT[dim]
        _set_style(write_cell(ws, r, 1, label, font=_BOLD if dim == "FIVE" else None), border=_BOX)
        merge_cells(ws, r, 1, r, 2)
        for j, key in enumerate(keys):
            by_dim = groups[key]
            if dim == "FIVE":
                value = _five_mean(by_dim, "pct_satisfied")
            else:
                d = by_dim.get(dim)
                value = None if d is None else _shown(d["pct_satisfied"], d["n_respondents"])
            _put(ws, r, 3 + j, value, PCT_FORMAT)
    last = first + len(dims)
    _tier_rules(ws, f"C{first}:{get_column_letter(2 + len(keys))}{last}", th)

    # One chart per group: bars for the five dimensions and CHUNG, coloured by tier, three
    # to a row. A printed chart must not straddle two pages: the charts start a new page when
    # they would not fit under the tables, and each page holds three rows of them.
    # A group whose every figure is suppressed gets no chart: it would be empty bars.
    def shown(key: tuple[str, str], dim: str) -> Any:
        d = groups[key].get(dim)
        return None if d is None else _shown(d["pct_satisfied"], d["n_respondents"])

    charted = [
        (j, key)
        for j, key in enumerate(keys)
        if any(isinstance(shown(key, dim), int | float) for dim in dims)
    ]
    anchor_row = last + 2
    chart_rows = -(-len(charted) // _CHARTS_PER_ROW)
    if chart_rows and anchor_row + min(chart_rows, 3) * _CHART_ROWS > _PAGE_ROWS:
        ws.row_breaks.append(Break(id=anchor_row - 2))
    for k in range(3, chart_rows, 3):
        ws.row_breaks.append(Break(id=anchor_row + k * _CHART_ROWS - 1))
    for n, (j, key) in enumerate(charted):
        col = 3 + j
        chart = BarChart()
        chart.type = "col"
        chart.title = _chart_title(labels[j])
        chart.legend = None
        chart.height = _CHART_HEIGHT_CM
        chart.width = _CHART_WIDTH_CM
        chart.y_axis.scaling.min = 0
        chart.y_axis.scaling.max = 100
        chart.y_axis.majorUnit = 20
        chart.y_axis.number_format = "0"
        chart.y_axis.delete = False
        chart.x_axis.delete = False
        chart.add_data(Reference(ws, min_col=col, min_row=first, max_row=first + len(dims) - 1))
        chart.set_categories(Reference(ws, min_col=1, min_row=first, max_row=first + len(dims) - 1))
        series = chart.series[0]
        series.dLbls = DataLabelList()
        series.dLbls.showVal = True
        for flag in ("showSerName", "showCatName", "showLegendKey", "showPercent"):
            setattr(series.dLbls, flag, False)
        series.dLbls.numFmt = "0.0"
        for i, dim in enumerate(dims):
            tier = _tier(shown(key, dim), th)
            if tier is None:
                continue
            point = DataPoint(idx=i)
            colour = _TIER_STYLE[tier][2]
            point.graphicalProperties.solidFill = colour
            point.graphicalProperties.line.solidFill = colour
            series.dPt.append(point)
        column = _CHART_COLUMNS[n % _CHARTS_PER_ROW]
        at = f"{column}{anchor_row + (n // _CHARTS_PER_ROW) * _CHART_ROWS}"
        ws.add_chart(chart, at)


# ---------------------------------------------------------------------------------------------
# Sheet: Theo tiêu chí

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
    ws, hr = _new_sheet(wb, DIMENSION_SHEET, data, scope, note)
    th = data.thresholds
    headers = list(DIMENSION_HEADERS)
    if not scope.is_province:
        headers += ["Toàn tỉnh: tỷ lệ hài lòng (%)", "Chênh lệch với toàn tỉnh (điểm %)"]
    _header(ws, hr, headers)
    _widths(ws, _DIMENSION_WIDTHS[: len(headers)])
    province = {
        (p["level"], p["questionnaire"], p["dimension"]): p for p in data.province_dimension
    }
    blocks: list[tuple[str, list[Row]]] = []
    if scope.is_province:
        blocks.append(("Toàn tỉnh", data.province_dimension))
        for code in scope.unit_codes:
            rows = data._lookups.unit_dimension.get((code,), [])
            blocks.append((data.units.get(code, code), rows))
    else:
        blocks.append((scope.name, _scope_dims(data, scope)))
    r = hr
    for unit_name, rows in blocks:
        ordered = sorted(
            rows,
            key=lambda d: (
                *_group_key(data, d["level"], d["questionnaire"]),
                _dim_key(d["dimension"], data.questionnaires.get(d["questionnaire"])),
            ),
        )
        for d in ordered:
            r += 1
            n = d["n_respondents"]
            is_expectation = d["dimension"] == EXPECTATION
            values: list[tuple[Any, str | None]] = [
                (unit_name, None),
                (LEVEL_LABELS.get(d["level"], d["level"]), None),
                (_q_label(data, d["questionnaire"]), None),
                (_dim_label(data, d["questionnaire"], d["dimension"]), None),
                (d["n_schools"], INT_FORMAT),
                (_shown(n, n), INT_FORMAT),
                (_shown(d["n_answers"], n), INT_FORMAT),
                (_shown(d["mean_score"], n), PCT_FORMAT if is_expectation else MEAN_FORMAT),
                (_shown(d["pct_satisfied"], n), PCT_FORMAT),
                (_shown(d["pct_dissatisfied"], n), PCT_FORMAT),
            ]
            if not scope.is_province:
                p = province.get((d["level"], d["questionnaire"], d["dimension"]))
                prov = None if p is None else _shown(p["pct_satisfied"], p["n_respondents"])
                mine = values[8][0]
                delta = (
                    mine - prov
                    if isinstance(mine, int | float) and isinstance(prov, int | float)
                    else None
                )
                values += [(prov, PCT_FORMAT), (delta, DELTA_FORMAT)]
            for col, (value, fmt) in enumerate(values, start=1):
                _put(ws, r, col, value, fmt, wrap=col in (1, 4))
    if r == hr:
        _empty(ws, hr + 1, "Chưa có số liệu theo tiêu chí.")
    else:
        ws.auto_filter.ref = f"A{hr}:{get_column_letter(len(headers))}{r}"
        _tier_rules(ws, _col_range(9, hr + 1, r), th)
        _flag_rule(ws, _col_range(8, hr + 1, r), "{c}<" + f"{th['mean_score_red']:g}")
        if not scope.is_province:
            _tier_rules(ws, _col_range(11, hr + 1, r), th)
    _print_setup(ws, (hr, hr), f"E{hr + 1}")
    return ws


# ---------------------------------------------------------------------------------------------
# Sheet: Theo câu hỏi

_QUESTION_WIDTHS = (8, 44, *([7, 7] * 5), 9, 10, 10, 9)


def _scope_questions(data: CampaignData, scope: Scope) -> dict[tuple[str, str], dict[str, Row]]:
    """(level, questionnaire) -> question_code -> counts and figures of the scope.

    A unit's rows are its mart_unit_question rows as they are; the province's are the units'
    counts summed, with mean and pct recomputed from the summed counts (the same pooling the
    marts use, so they equal what SQL would give over all answers)."""
    out: dict[tuple[str, str], dict[str, Row]] = defaultdict(dict)
    if not scope.is_province:
        for r in data._lookups.unit_question.get((scope.code,), []):
            out[(r["level"], r["questionnaire"])][r["question_code"]] = r
        return out
    for r in data.unit_question:
        group = out[(r["level"], r["questionnaire"])]
        acc = group.setdefault(
            r["question_code"], {"n_answers": 0, **{f"n_{k}": 0 for k in range(1, 6)}}
        )
        for k in ("n_answers", "n_1", "n_2", "n_3", "n_4", "n_5"):
            acc[k] += int(r[k] or 0)
    for group in out.values():
        for acc in group.values():
            n = acc["n_answers"]
            acc["mean_score"] = sum(k * acc[f"n_{k}"] for k in range(1, 6)) / n if n else None
            acc["pct_satisfied"] = 100.0 * (acc["n_4"] + acc["n_5"]) / n if n else None
    return out


def write_question_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "Theo câu hỏi": per level and questionnaire, every Likert item grouped by dimension,
    with the count and % at each answer level, valid total, % satisfied, % dissatisfied, mean."""
    ws, top = _new_sheet(
        wb,
        QUESTION_SHEET,
        data,
        scope,
        "SL: số ý kiến; %: tỷ lệ trên tổng số ý kiến hợp lệ của câu hỏi.",
    )
    th = data.thresholds
    headers = ["Mã", "Nội dung câu hỏi"]
    for k, label in LIKERT_LABELS.items():
        headers += [f"{k}. {label}", ""]
    headers += ["Tổng số hợp lệ", "Tỷ lệ hài lòng (%)", "Tỷ lệ không hài lòng (%)", "Điểm TB"]
    _header(ws, top, headers)
    sub = ["", ""] + ["SL", "%"] * 5 + ["", "", "", ""]
    _header(ws, top + 1, sub)
    for k in range(5):  # each answer level spans its SL and % columns
        merge_cells(ws, top, 3 + 2 * k, top, 4 + 2 * k)
    for col in (1, 2, 13, 14, 15, 16):
        merge_cells(ws, top, col, top + 1, col)
    _widths(ws, _QUESTION_WIDTHS)
    width = len(headers)
    questions = _scope_questions(data, scope)
    r = top + 1
    first_data = r + 1
    for level, qcode in sorted(questions, key=lambda k: _group_key(data, *k)):
        found = questions[(level, qcode)]
        q = data.questionnaires.get(qcode)
        r += 1
        title = f"{LEVEL_LABELS.get(level, level)} · {_q_label(data, qcode)}"
        if q is not None:
            title += f" · {q.name} ({qcode})"
        _group_row(ws, r, title, width)
        # Items in the questionnaire's order grouped by its dimensions; anything the mart has
        # that the questionnaire no longer lists goes last under "Khác".
        groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
        listed = set()
        if q is not None:
            for item in q.items:
                if item.kind == "likert":
                    groups[item.dimension or "_OTHER"].append((item.code, item.text))
                    listed.add(item.code)
        for code in sorted(set(found) - listed):
            groups["_OTHER"].append((code, code))
        if all(_small(row["n_answers"]) for row in found.values()):
            # A page of "<5" says less than one line.
            r += 1
            write_cell(
                ws,
                r,
                1,
                f"Dưới {MIN_RESPONDENTS} người trả lời: số liệu ẩn ({SUPPRESSED}).",
                font=_ITALIC,
            )
            continue
        order = sorted(groups, key=lambda d: _dim_key(d, q) if d != "_OTHER" else (99, d))
        for dim in order:
            r += 1
            label = "Khác" if dim == "_OTHER" else _dim_label(data, qcode, dim)
            write_cell(ws, r, 1, label, font=_BOLD)
            for code, text in groups[dim]:
                r += 1
                row = found.get(code)
                _put(ws, r, 1, code)
                _put(ws, r, 2, text, wrap=True)
                n = row["n_answers"] if row else 0
                cells: list[tuple[Any, str]] = []
                for k in range(1, 6):
                    count = row[f"n_{k}"] if row else None
                    pct = 100.0 * count / n if count is not None and n else None
                    cells += [(_shown(count, n), INT_FORMAT), (_shown(pct, n), PCT_FORMAT)]
                dissatisfied = 100.0 * (row["n_1"] + row["n_2"]) / n if row and n else None
                cells += [
                    (_shown(n, n), INT_FORMAT),
                    (_shown(row["pct_satisfied"], n) if row else None, PCT_FORMAT),
                    (_shown(dissatisfied, n), PCT_FORMAT),
                    (_shown(row["mean_score"], n) if row else None, MEAN_FORMAT),
                ]
                for col, (value, fmt) in enumerate(cells, start=3):
                    _put(ws, r, col, value, fmt)
    if r < first_data:
        _empty(ws, first_data, "Chưa có số liệu theo câu hỏi.")
    else:
        _tier_rules(ws, _col_range(14, first_data, r), th)
        _flag_rule(
            ws, _col_range(15, first_data, r), "{c}>=" + f"{th['item_pct_dissatisfied_red']:g}"
        )
        _flag_rule(ws, _col_range(16, first_data, r), "{c}<" + f"{th['mean_score_red']:g}")
    _print_setup(ws, (top, top + 1), f"C{top + 2}")
    return ws


# ---------------------------------------------------------------------------------------------
# Sheet: Theo trường


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
    lookups = data._lookups
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
        hidden = _small(n)
        for dim in (*DIMENSIONS, "CHUNG"):
            d = dims.get(dim)
            value = None if d is None else _shown(d["pct_satisfied"], d["n_respondents"])
            row.figures[dim] = SUPPRESSED if hidden and value is not None else value
        five = _five_mean(dims, "pct_satisfied")
        five_mean = _five_mean(dims, "mean_score")
        expectation = dims.get(EXPECTATION)
        row.figures["FIVE"] = SUPPRESSED if hidden and five is not None else five
        row.figures["MEAN"] = SUPPRESSED if hidden and five_mean is not None else five_mean
        exp = None
        if expectation is not None:
            exp = _shown(expectation["mean_score"], expectation["n_respondents"])
        row.figures[EXPECTATION] = SUPPRESSED if hidden and exp is not None else exp
        rows.append(row)
    ranked = [r for r in rows if isinstance(r.figures["FIVE"], int | float)]
    for row, rank in zip(ranked, _rank([r.figures["FIVE"] for r in ranked]), strict=True):
        row.rank = rank
    # Ranked schools first, best first; then the unranked, by code.
    return sorted(rows, key=lambda r: (r.rank is None, r.rank or 0, r.school_code))


def write_school_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "Theo trường": per questionnaire, the schools ranked by the mean of the five
    dimension rates, with each dimension's rate, CHUNG, mean score and expectation met."""
    ws, hr = _new_sheet(
        wb,
        SCHOOL_SHEET,
        data,
        scope,
        f"Xếp hạng theo tỷ lệ hài lòng bình quân 5 tiêu chí. Trường dưới {MIN_RESPONDENTS} phiếu: "
        f"số liệu ẩn ({SUPPRESSED}), không xếp hạng.",
    )
    th = data.thresholds
    lead = ["Hạng", "Mã trường", "Tên trường"]
    if scope.is_province:
        lead.append("Đơn vị")
    lead += ["Cấp học", "Số phiếu"]
    dims_headers = [f"{DIMENSION_SHORT[d]} (%)" for d in (*DIMENSIONS, "CHUNG")]
    headers = [
        *lead,
        *dims_headers,
        f"{FIVE_MEAN_LABEL} (%)",
        "Điểm TB 5 tiêu chí",
        "Mức đáp ứng mong đợi (%)",
    ]
    _header(ws, hr, headers)
    widths = [6, 10, 30] + ([20] if scope.is_province else []) + [16, 8] + [10] * 6 + [11, 9, 11]
    _widths(ws, widths)
    width = len(headers)
    first_pct = len(lead) + 1
    codes = sorted(
        {q for q in data._lookups.school_questionnaires if _is_satisfaction(data, q)},
        key=lambda c: _q_key(c, data.questionnaires),
    )
    r = hr
    for qcode in codes:
        rows = school_rows(data, scope, qcode)
        if not rows:
            continue
        q = data.questionnaires.get(qcode)
        r += 1
        _group_row(ws, r, f"{q.name} ({qcode})" if q else qcode, width)
        for sr in rows:
            r += 1
            school = data.schools.get(sr.school_code, {})
            values: list[tuple[Any, str | None]] = [
                (sr.rank, INT_FORMAT),
                (sr.school_code, None),
                (school.get("school_name") or sr.school_code, None),
            ]
            if scope.is_province:
                unit = school.get("unit_code", "")
                values.append((data.units.get(unit, unit), None))
            level = school.get("level", "")
            values += [
                (LEVEL_LABELS.get(level, level), None),
                (_shown(sr.n_responses, sr.n_responses), INT_FORMAT),
            ]
            values += [(sr.figures[d], PCT_FORMAT) for d in (*DIMENSIONS, "CHUNG")]
            values += [
                (sr.figures["FIVE"], PCT_FORMAT),
                (sr.figures["MEAN"], MEAN_FORMAT),
                (sr.figures[EXPECTATION], PCT_FORMAT),
            ]
            for col, (value, fmt) in enumerate(values, start=1):
                _put(ws, r, col, value, fmt, wrap=col in (3, 4, 5))
    if r == hr:
        _empty(ws, hr + 1, "Chưa có số liệu theo trường.")
    else:
        last_pct = get_column_letter(first_pct + 6)
        _tier_rules(ws, f"{get_column_letter(first_pct)}{hr + 1}:{last_pct}{r}", th)
        mean_col = first_pct + 7
        _flag_rule(ws, _col_range(mean_col, hr + 1, r), "{c}<" + f"{th['mean_score_red']:g}")
    _print_setup(ws, (hr, hr), f"D{hr + 1}")
    return ws


# ---------------------------------------------------------------------------------------------
# Sheet: Dịch vụ giáo dục


def write_service_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "Dịch vụ giáo dục": per service, the schools ranked by total points (0–80) as
    mart_service_ranking ranks them within their unit; the province's also ranks province-wide."""
    th = data.thresholds
    ws, hr = _new_sheet(
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
    _header(ws, hr, headers)
    _widths(ws, widths)
    rows = [r for r in data.services if r["unit_code"] in scope.unit_codes]
    by_service: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_service[row["service"]].append(row)
    r = hr
    for service in sorted(by_service):
        items = by_service[service]
        province_rank = _rank([float(i["total_points"]) for i in items])
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
                _put(ws, r, col, value, fmt, wrap=col in (1, 3, len(values) - 2))
    if r == hr:
        _empty(ws, hr + 1, "Chưa có số liệu rà soát dịch vụ giáo dục.")
    else:
        points_col = len(headers) - 1
        _flag_rule(ws, _col_range(points_col, hr + 1, r), "{c}<" + f"{th['service_total_min']:g}")
        ws.auto_filter.ref = f"A{hr}:{get_column_letter(len(headers))}{r}"
    _print_setup(ws, (hr, hr), f"B{hr + 1}")
    return ws


# ---------------------------------------------------------------------------------------------
# Sheet: PAPI


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
    ws, hr = _new_sheet(
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
        _header(ws, hr, ["Mã", "Chỉ số"])
        _widths(ws, [12, 60])
        _empty(ws, hr + 1, "Chưa có số liệu PAPI.")
        _print_setup(ws, (hr, hr), None)
        return ws

    headers = ["Mã", "Chỉ số", "Số trả lời", "Tỷ lệ Có (%)"]
    if not scope.is_province:
        headers.append("Toàn tỉnh: tỷ lệ Có (%)")
    _header(ws, hr, headers)
    r = hr
    for code, text in items:
        r += 1
        row = figures.get((scope_kind, scope.code, code))
        n = row["n_answers"] if row else None
        values: list[tuple[Any, str | None]] = [
            (code, None),
            (text, None),
            (_shown(n, n), INT_FORMAT),
            (_shown(row["pct_yes"], n) if row else None, PCT_FORMAT),
        ]
        if not scope.is_province:
            p = figures.get(("province", data.province_code, code))
            values.append((_shown(p["pct_yes"], p["n_answers"]) if p else None, PCT_FORMAT))
        for col, (value, fmt) in enumerate(values, start=1):
            _put(ws, r, col, value, fmt, wrap=col == 2)
    papi_min = f"{th['papi_pct_yes_min']:g}"
    _flag_rule(ws, f"D{hr + 1}:{get_column_letter(len(headers))}{r}", "{c}<" + papi_min)

    # Matrix: one row per unit (province only) and per school, one column per indicator.
    r += 2
    _section(ws, r, "Tỷ lệ Có (%) theo " + ("đơn vị và trường" if scope.is_province else "trường"))
    r += 1
    matrix_hr = r
    _header(ws, r, ["Mã", "Tên", *(code for code, _ in items)])
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
            _group_row(ws, r, "Đơn vị" if kind == "unit" else "Trường", 2 + len(items))
            r += 1
        _put(ws, r, 1, code)
        _put(ws, r, 2, name, wrap=True)
        for j, (indicator, _) in enumerate(items):
            row = figures.get((kind, code, indicator))
            value = _shown(row["pct_yes"], row["n_answers"]) if row else None
            _put(ws, r, 3 + j, value, PCT_FORMAT)
    if r > matrix_hr:
        last = get_column_letter(2 + len(items))
        _flag_rule(ws, f"C{matrix_hr + 1}:{last}{r}", "{c}<" + papi_min)
    _widths(ws, [12, 48, *([12] * max(len(items), 3))])
    _print_setup(ws, (hr, hr), f"A{hr + 1}")
    return ws


# ---------------------------------------------------------------------------------------------
# Sheet: So sánh năm trước

YOY_HEADERS = (
    "Cấp học",
    "Phiếu",
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
    ws, hr = _new_sheet(wb, YOY_SHEET, data, scope)
    _widths(ws, [20, 18, 36, 11, 11, 11, 10, 10, 10, 24])
    if not data.previous_id:
        _empty(
            ws, hr, "Không có đợt khảo sát năm trước để so sánh (chưa khai báo campaign.previous)."
        )
        _print_setup(ws, None, None)
        return ws
    if not data.previous_unit_dimension:
        _empty(
            ws,
            hr,
            f"Không có đợt khảo sát năm trước để so sánh: kho dữ liệu không có số liệu "
            f"của đợt {data.previous_id}.",
        )
        _print_setup(ws, None, None)
        return ws
    previous = _by_group(_previous_dims(data, scope))
    if not previous:
        _empty(
            ws,
            hr,
            f"Không có đợt khảo sát năm trước để so sánh: đợt {data.previous_id} không "
            f"có số liệu của {scope.name} ({scope.code}), có thể do thay đổi đơn vị quản lý.",
        )
        _print_setup(ws, None, None)
        return ws
    write_cell(ws, 3, 1, f"So với đợt {data.previous_id}.", font=_ITALIC)
    _header(ws, hr, YOY_HEADERS)
    current = _by_group(_scope_dims(data, scope))
    drop = th["yoy_drop_points"]
    r = hr
    for key in sorted(current, key=lambda k: _group_key(data, *k)):
        level, qcode = key
        if not _is_satisfaction(data, qcode):
            continue
        now_dims, before = current[key], previous.get(key, {})
        q = data.questionnaires.get(qcode)
        dims = sorted(now_dims, key=lambda d: _dim_key(d, q))
        entries: list[tuple[str, Any, Any, Any, Any]] = []
        for dim in dims:
            a, b = now_dims[dim], before.get(dim)
            entries.append(
                (
                    _dim_label(data, qcode, dim),
                    _shown(a["pct_satisfied"], a["n_respondents"]),
                    None if b is None else _shown(b["pct_satisfied"], b["n_respondents"]),
                    _shown(a["mean_score"], a["n_respondents"]),
                    None if b is None else _shown(b["mean_score"], b["n_respondents"]),
                )
            )
        entries.append(
            (
                FIVE_MEAN_LABEL,
                _five_mean(now_dims, "pct_satisfied"),
                _five_mean(before, "pct_satisfied") if before else None,
                _five_mean(now_dims, "mean_score"),
                _five_mean(before, "mean_score") if before else None,
            )
        )
        for label, pct_now, pct_before, mean_now, mean_before in entries:
            r += 1
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
                (_q_label(data, qcode), None),
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
                cell = _put(ws, r, col, value, fmt, wrap=col in (1, 3))
                if label == FIVE_MEAN_LABEL:
                    _set_style(cell, font=_BOLD)
    if r > hr:
        _tier_rules(ws, f"D{hr + 1}:E{r}", th)
        _flag_rule(ws, _col_range(6, hr + 1, r), "{c}<=-" + f"{drop:g}")
        ws.auto_filter.ref = f"A{hr}:J{r}"
    _print_setup(ws, (hr, hr), f"D{hr + 1}")
    return ws


# ---------------------------------------------------------------------------------------------
# Sheet: Cảnh báo

SEVERITY_LABELS = {"red": "Đỏ", "amber": "Vàng", "info": "Thông tin"}
ALERT_STATUS_LABELS = {"open": "Đang mở", "acknowledged": "Đã ghi nhận", "resolved": "Đã xử lý"}
SCOPE_LABELS = {"school": "Trường", "unit": "Đơn vị", "province": "Tỉnh"}
ALERT_HEADERS = (
    "Mức",
    "Quy tắc",
    "Phạm vi",
    "Mã",
    "Tên",
    "Nội dung",
    "Giá trị",
    "Ngưỡng",
    "Trạng thái",
    "Lần đầu",
    "Lần gần nhất",
    "Ghi chú",
    "Hướng xử lý đề xuất",
)


def _scope_alerts(data: CampaignData, scope: Scope) -> list[Row]:
    """The alerts of the scope: everything for the province; a unit's own and its schools'."""
    if scope.is_province:
        chosen = list(data.alerts)
    else:
        chosen = [
            a
            for a in data.alerts
            if (a["scope"] == "unit" and a["scope_code"] == scope.code)
            or (a["scope"] == "school" and scope.has_school(a["scope_code"]))
        ]
    status_order = list(ALERT_STATUS_LABELS)
    severity_order = list(SEVERITY_LABELS)
    scope_order = ["province", "unit", "school"]

    def key(a: Row) -> tuple[Any, ...]:
        def pos(order: list[str], v: str) -> int:
            return order.index(v) if v in order else len(order)

        return (
            pos(status_order, a["status"]),
            pos(severity_order, a["severity"]),
            pos(scope_order, a["scope"]),
            a["scope_code"],
            a["subject"] or "",
            a["rule"],
        )

    return sorted(chosen, key=key)


def write_alert_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "Cảnh báo": the rows of ``alerts`` for the scope, unresolved and most severe first."""
    ws, hr = _new_sheet(wb, ALERT_SHEET, data, scope)
    _header(ws, hr, ALERT_HEADERS)
    _widths(ws, [9, 22, 8, 9, 24, 34, 9, 9, 11, 15, 15, 28, 40])
    alerts = _scope_alerts(data, scope)
    r = hr
    for a in alerts:
        r += 1
        if a["scope"] == "school":
            name = data.schools.get(a["scope_code"], {}).get("school_name") or a["scope_code"]
        elif a["scope"] == "unit":
            name = data.units.get(a["scope_code"], a["scope_code"])
        else:
            name = "Toàn tỉnh"
        rule = RULES.get(a["rule"])
        unit_fmt = _UNIT_FORMATS.get(rule.unit, VALUE_FORMAT) if rule else VALUE_FORMAT
        values: list[tuple[Any, str | None]] = [
            (SEVERITY_LABELS.get(a["severity"], a["severity"]), None),
            (rule.title if rule else a["rule"], None),
            (SCOPE_LABELS.get(a["scope"], a["scope"]), None),
            (a["scope_code"], None),
            (name, None),
            (_subject_text(data, mask_personal(a["subject"] or "")), None),
            (_shown(a["value"], _alert_respondents(data, a)), unit_fmt),
            (a["threshold"], unit_fmt),
            (ALERT_STATUS_LABELS.get(a["status"], a["status"]), None),
            (_seconds(a["first_seen_at"]), DATETIME_FORMAT),
            (_seconds(a["last_seen_at"]), DATETIME_FORMAT),
            (mask_personal(a["note"]) if a["note"] else None, None),
            (action_for(a["rule"], a["subject"] or "", data.actions) or None, None),
        ]
        for col, (value, fmt) in enumerate(values, start=1):
            cell = _put(ws, r, col, value, fmt, wrap=col in (2, 5, 6, 9, 12, 13))
            if col == 1 and a["severity"] in ("red", "amber"):
                fill, font = _SEVERITY_STYLE[a["severity"]]
                _set_style(cell, fill=fill, font=font)
    if not alerts:
        _empty(ws, hr + 1, "Không có cảnh báo nào cho phạm vi này.")
    else:
        ws.auto_filter.ref = f"A{hr}:{get_column_letter(len(ALERT_HEADERS))}{r}"
    _print_setup(ws, (hr, hr), f"A{hr + 1}")
    return ws


@dataclass(frozen=True)
class _Subject:
    """An alert subject taken apart: "TH/CMHS_TH/CSVC/CS2" (unit), "CMHS_TH/CSVC" (school),
    "HOC_THEM" (PAPI), "Bán trú/C3" (service). Parts not recognised stay in ``rest``."""

    level: str | None
    questionnaire: str | None
    dimension: str | None
    item: str | None
    rest: tuple[str, ...]


def _parse_subject(data: CampaignData, subject: str) -> _Subject:
    # Each alert's subject is taken apart for its text and again for its respondents.
    parsed = data._lookups.subjects.get(subject)
    if parsed is None:
        parsed = data._lookups.subjects[subject] = _split_subject(data, subject)
    return parsed


def _split_subject(data: CampaignData, subject: str) -> _Subject:
    level = questionnaire = dimension = item = None
    rest: list[str] = []
    known_items = data._lookups.known_items
    for part in (p for p in subject.split("/") if p):
        if level is None and part in LEVEL_LABELS:
            level = part
        elif questionnaire is None and part in data.questionnaires:
            questionnaire = part
        elif dimension is None and part in (*DIMENSIONS, "CHUNG", EXPECTATION):
            dimension = part
        elif item is None and part in known_items:
            item = part
        else:
            rest.append(part)
    return _Subject(level, questionnaire, dimension, item, tuple(rest))


def _item_text(data: CampaignData, questionnaire: str | None, code: str) -> str:
    """An item's wording: from its questionnaire, else the first questionnaire that has it."""
    first = data.questionnaires.get(questionnaire) if questionnaire else None
    ordered = [first] if first is not None else []
    for q in [*ordered, *data.questionnaires.values()]:
        for item in q.items:
            if item.code == code:
                return item.text
    return code


def _subject_text(data: CampaignData, subject: str) -> str:
    """An alert subject in words ("Tiểu học · Cha mẹ học sinh · Cơ sở vật chất, …"), with the
    subject itself kept in brackets for the officer who acknowledges it."""
    texts = data._lookups.subject_texts
    if subject not in texts:
        texts[subject] = _describe_subject(data, subject)
    return texts[subject]


def _describe_subject(data: CampaignData, subject: str) -> str:
    parts = _parse_subject(data, subject)
    words = list(parts.rest)
    if parts.level:
        words.append(LEVEL_LABELS[parts.level])
    if parts.questionnaire:
        words.append(_q_label(data, parts.questionnaire))
    if parts.dimension:
        words.append(_dim_label(data, parts.questionnaire or "", parts.dimension))
    if parts.item:
        words.append(_item_text(data, parts.questionnaire, parts.item))
    text = " · ".join(words)
    return text if text == subject else f"{text} ({subject})"


def _alert_respondents(data: CampaignData, alert: Row) -> int | None:
    """How many respondents the alert's value was computed from, where it is an opinion
    figure (None otherwise: services are scored by a board, completeness has no answers).

    The alert rules raise small-sample alerts too (amber, on a Wilson bound), so their value
    may be a figure the privacy rule hides; this finds the count to decide.
    """
    rule, scope, code = alert["rule"], alert["scope"], alert["scope_code"]
    if rule.startswith(("service_", "submission_")) or rule in ("rejected_share_high",):
        return None
    s = _parse_subject(data, alert["subject"] or "")
    lookups = data._lookups
    if rule == "papi_low" or (s.item and not s.questionnaire and not s.dimension):
        indicator = s.item or (s.rest[0] if s.rest else "")
        papi = lookups.papi.get((scope, code, indicator))
        return int(papi[0]["n_answers"]) if papi else None
    if s.questionnaire is None:
        return None
    if scope == "school":
        dims = lookups.school_dimension_q.get((code, s.questionnaire), [])
    elif scope == "unit":
        dims = [
            r
            for r in lookups.unit_dimension_q.get((code, s.questionnaire), [])
            if s.level is None or r["level"] == s.level
        ]
        if s.item:
            item = lookups.unit_question_item.get((code, s.level, s.questionnaire, s.item))
            if item:
                return int(item[0]["n_answers"])
    else:
        return None
    if s.dimension:
        dims = [r for r in dims if r["dimension"] == s.dimension]
    counts = [int(r["n_respondents"]) for r in dims]
    if scope == "school" and s.item is None and s.dimension is None:
        for r in lookups.completeness.get((code, s.questionnaire), []):
            counts.append(int(r["n_valid"] or 0))
    return max(counts) if counts else None


#: Number formats of an alert's value and threshold, by the rule's unit (flows.alerts.RULES).
_UNIT_FORMATS = {
    "pct": PCT_FORMAT,
    "score": MEAN_FORMAT,
    "points": POINTS_FORMAT,
    "share": "0.0%",
    "count": INT_FORMAT,
}


def _seconds(value: Any) -> Any:
    """A datetime without its microseconds (shown to the minute; kept exact to the second)."""
    return value.replace(microsecond=0) if isinstance(value, dt.datetime) else value


# ---------------------------------------------------------------------------------------------
# Sheet: Thông tin

LEDGER_LABELS = {
    "loaded": "Đã nạp",
    "unchanged": "Không thay đổi (đã nạp trước đó)",
    "failed": "Lỗi, không đọc được",
    "absent": "Chưa có tệp",
    None: "Chưa xử lý",
}


def write_info_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "Thông tin": campaign, run stamp, data cut-off, sources by status from the ledger
    (failures listed without their messages, which may quote sheet contents), thresholds."""
    ws, r = _new_sheet(wb, INFO_SHEET, data, scope)
    _widths(ws, [34, 36, 22, 40, 26])
    run = data.run or {}
    started = _seconds(run.get("started_at"))
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
        (STAMP_LABELS[1], started, DATETIME_FORMAT),
        # The marts are rebuilt from what was fetched when the run started.
        (STAMP_LABELS[2], started, DATETIME_FORMAT),
    ]
    _section(ws, r, "Đợt khảo sát và lần chạy")
    for label, value, fmt in facts:
        r += 1
        write_cell(ws, r, 1, label, font=_BOLD)
        cell = write_cell(ws, r, 2, value if value is not None else "—", number_format=fmt)
        _set_style(cell, alignment=_LEFT)

    sources = [s for s in data.sources if scope.has_school(s["school_code"])]
    counts = Counter(s["status"] for s in sources)
    r += 2
    _section(ws, r, "Nguồn dữ liệu (theo sổ nạp của lần chạy)")
    for status in ("loaded", "unchanged", "failed", "absent", None):
        r += 1
        write_cell(ws, r, 1, LEDGER_LABELS[status], font=_BOLD)
        cell = write_cell(ws, r, 2, counts.get(status, 0), number_format=INT_FORMAT)
        _set_style(cell, alignment=_LEFT)
    r += 1
    write_cell(ws, r, 1, "Tổng số nguồn", font=_BOLD)
    _set_style(write_cell(ws, r, 2, len(sources), number_format=INT_FORMAT), alignment=_LEFT)
    problems = [s for s in sources if s["status"] not in ("loaded", "unchanged")]
    if problems:
        r += 2
        _section(ws, r, "Nguồn chưa đưa được vào số liệu")
        r += 1
        _header(ws, r, ["Mã trường", "Tên trường", "Phiếu", "Nguồn (tệp, bảng tính)", "Tình trạng"])
        for s in problems:
            r += 1
            name = data.schools.get(s["school_code"], {}).get("school_name") or s["school_code"]
            for col, value in enumerate(
                (
                    s["school_code"],
                    name,
                    s["questionnaire"],
                    s["location"],
                    LEDGER_LABELS.get(s["status"], s["status"]),
                ),
                start=1,
            ):
                _put(ws, r, col, value, wrap=True)

    r += 2
    _section(ws, r, "Ngưỡng sử dụng")
    r += 1
    _header(ws, r, ["Ngưỡng", "Ý nghĩa", "Giá trị"])
    for key, value in data.thresholds.items():
        r += 1
        _put(ws, r, 1, key)
        _put(ws, r, 2, THRESHOLD_LABELS.get(key, ""), wrap=True)
        _put(ws, r, 3, value, "General")
    r += 1
    # Not a threshold: the anonymity promise, the same in every province.
    _put(ws, r, 1, "(ẩn danh)")
    _put(ws, r, 2, "Ẩn số liệu tính từ ít hơn số người trả lời này (cam kết ẩn danh)", wrap=True)
    _put(ws, r, 3, MIN_RESPONDENTS, "0")

    r += 2
    _section(ws, r, "Cách tính")
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
        _set_style(ws.cell(row=r, column=1), alignment=_WRAP)
        ws.row_dimensions[r].height = 30
    _print_setup(ws, None, None)
    return ws


# ---------------------------------------------------------------------------------------------
# Workbooks

#: Writes one sheet of a workbook.
SheetWriter = Callable[[Workbook, CampaignData, Scope], Worksheet]

#: Sheets of every workbook, in tab order.
SHEETS: tuple[SheetWriter, ...] = (
    write_summary_sheet,
    write_dimension_sheet,
    write_question_sheet,
    write_school_sheet,
    write_service_sheet,
    write_papi_sheet,
    write_yoy_sheet,
    write_alert_sheet,
    write_info_sheet,
)


def build_workbook(data: CampaignData, scope: Scope) -> Workbook:
    """The workbook of one scope, in memory."""
    wb = Workbook()
    default = wb.active
    for sheet in SHEETS:
        sheet(wb, data, scope)
    if default is not None:
        wb.remove(default)
    wb.active = 0
    wb.properties.title = f"{data.name} · {scope.name}"
    return wb


def province_workbook_path(output_dir: Path, campaign_id: str, province_code: str) -> Path:
    """``output_dir/<campaign_id>_<province_code>.xlsx``."""
    return unit_workbook_path(output_dir, campaign_id, province_code)


def write_workbooks(
    engine: sa.Engine,
    campaign_id: str,
    output_dir: Path,
    questionnaires: Mapping[str, Questionnaire],
    *,
    run_id: str | None = None,
    thresholds: Mapping[str, float] | Thresholds | None = None,
    actions: Mapping[str, str] | None = None,
    pool: Executor | None = None,
    workers: int = 1,
) -> list[Path]:
    """Write the province's workbook and one per reporting unit; return their paths.

    The province's comes first, then the units' by unit code. Units come from the ``unit``
    table (a unit with no figures yet still gets a workbook saying so) plus any unit found only
    in mart_unit_dimension. ``run_id`` is the run whose stamp and ledger the workbooks carry
    (default: the campaign's latest run); ``thresholds`` is khaosat.yaml ``thresholds``
    (``Settings.thresholds``) or a ``flows.alerts.Thresholds``: the alert rules' own, so colours
    and flags agree with the alerts (an unknown key raises ``ThresholdError``); ``actions`` is
    khaosat.yaml ``actions`` (``Settings.actions``), the follow-up the Cảnh báo sheet suggests
    for each alert, as ``khaosat alerts list`` does. Labels and item wording come from
    ``questionnaires``.

    With a process ``pool`` of ``workers`` processes, the units' workbooks are written there
    while this thread writes the province's (the largest); then this thread writes the units
    not yet given to a process, from the last, so that both finish together. A unit whose
    process died (the pool is then broken, and discarded) is written here. The files are the
    same either way.
    """
    data = read_campaign(
        engine, campaign_id, questionnaires, run_id=run_id, thresholds=thresholds, actions=actions
    )
    province = province_scope(data)
    units = [unit_scope(data, code) for code in province.unit_codes]
    province_path = province_workbook_path(output_dir, campaign_id, data.province_code)
    unit_paths = [unit_workbook_path(output_dir, campaign_id, u.code) for u in units]
    if province_path in unit_paths:
        # A unit coded like the province must not overwrite (or be overwritten by) it.
        province_path = province_path.with_name(province_path.stem + "_toan-tinh.xlsx")
    jobs = list(zip(units, unit_paths, strict=True))
    if pool is None or not jobs:
        return write_scopes(data, [(province, province_path), *jobs])
    # The data is pickled here, once, before this thread writes the province's workbook: that
    # fills the data's lookup caches, and the pool pickles arguments in a thread of its own,
    # which would then see the data change under it. A process unpickles it once (the token).
    pickled = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    token = uuid.uuid4().hex
    waiting = deque(range(len(jobs)))  # the pool takes the first, this thread the last
    running: dict[Future[Path], int] = {}
    written: dict[int, Path] = {}
    broken = False

    def feed() -> None:
        # Two jobs a process, one running and one queued, so that no process waits for this
        # thread; never more, so that the rest stay here to take (a job given to a pool cannot
        # be taken back safely: cancelling races with a pool that breaks).
        while not broken and waiting and len(running) < 2 * workers:
            i = waiting.popleft()
            running[pool.submit(_write_pickled, token, pickled, jobs[i])] = i

    feed()
    paths = write_scopes(data, [(province, province_path)])
    while waiting or running:
        for future in [f for f in running if f.done()]:
            i = running.pop(future)
            try:
                written[i] = future.result()
            except BrokenProcessPool:  # its process died (killed, out of memory): write it here
                broken = True
                waiting.append(i)
        feed()
        if waiting:
            i = waiting.pop()
            written[i] = write_scope(data, *jobs[i])
        elif running:
            wait(running, return_when=FIRST_COMPLETED)
    if broken:
        from flows.pipeline.pools import discard_pool  # the flow's pools; imports Prefect

        discard_pool(pool)
    return [*paths, *(written[i] for i in range(len(jobs)))]


def write_scopes(data: CampaignData, jobs: Sequence[tuple[Scope, Path]]) -> list[Path]:
    """Build and save the workbook of each (scope, path); the paths written, in order."""
    return [write_scope(data, scope, path) for scope, path in jobs]


def write_scope(data: CampaignData, scope: Scope, path: Path) -> Path:
    """Build and save the workbook of ``scope`` to ``path``."""
    return save_workbook(build_workbook(data, scope), path)


#: In a worker process: the campaign's data of the latest token it was sent with.
_UNPICKLED: dict[str, CampaignData] = {}


def _write_pickled(token: str, pickled: bytes, job: tuple[Scope, Path]) -> Path:
    # A worker process's job: the campaign's data as write_workbooks pickled it, unpickled once
    # per process and publish (the token), not once per unit.
    data = _UNPICKLED.get(token)
    if data is None:
        _UNPICKLED.clear()
        data = _UNPICKLED[token] = pickle.loads(pickled)  # noqa: S301 - our own bytes
    return write_scope(data, *job)


def write_unit_workbooks(
    engine: sa.Engine,
    campaign_id: str,
    output_dir: Path,
    questionnaires: Mapping[str, Questionnaire],
) -> list[Path]:
    """The earlier entry point: :func:`write_workbooks` with the latest run and default
    thresholds."""
    return write_workbooks(engine, campaign_id, output_dir, questionnaires)
