"""The demo's files as schools send them: Google Forms downloads (xlsx, csv), answers typed from
paper, service reviews, and the broken ones (corrupt, empty, late), written byte-identically
for a seed."""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from flows.cli.demo.answers import (
    COMMON_SERVICES,
    EXTRA_QUESTION,
    FORCED_VARIANTS,
    LEVEL_LABELS,
    LEVEL_SERVICES,
    LIKERT_LABELS,
    LIKERT_VARIANTS,
    SERVICE_GROUPS,
    Response,
    add_traps,
    papi_responses,
    satisfaction_responses,
)
from flows.cli.demo.province import CLOSES, DEADLINE, PROVINCE_NAME, SCHOOL_YEAR, PlannedSource
from flows.publish.xlsx import save_workbook, write_cell
from schemas.campaign import DEFAULT_TIMEZONE
from schemas.questionnaire import Item, Questionnaire
from schemas.records import Cell

# ---------------------------------------------------------------------------------------------
# Sheets: what a file holds, before it is written as xlsx or CSV


@dataclass
class Sheet:
    """What a file holds, before it is written as xlsx or CSV."""

    name: str
    header: list[str]
    rows: list[list[Cell]]  # an empty list is a blank row
    #: title rows above the header: each a list of (first column, last column, text), merged.
    title: list[list[tuple[int, int, str]]] = field(default_factory=list)
    #: 0-based column -> number format (datetime columns).
    formats: dict[int, str] = field(default_factory=dict)


Column = tuple[str, Callable[[Response], Cell]]


class _Formula(str):
    """A formula typed into a sheet (written as a formula, with no cached value)."""

    __slots__ = ()


def _as_int(value: Cell) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {value!r}")
    return value


def _header(item: Item, grid: bool) -> str:
    return f"{item.grid} [{item.text}]" if grid and item.grid else item.text


def _forms_label(item: Item, value: Cell, linear: bool) -> Cell:
    if value is None or value == "":
        return None
    if item.kind == "likert":
        return value if linear else LIKERT_LABELS[_as_int(value)]
    if item.kind == "yesno":
        return "Có" if value else "Không"
    if item.kind == "level":
        return LEVEL_LABELS[_as_int(value)]
    return value


def _timestamp_text(ts: dt.datetime) -> str:
    # Google Sheets in a Vietnamese locale: day first, hour without a leading zero.
    return f"{ts:%d/%m/%Y} {ts.hour}:{ts:%M:%S}"


def _item_getter(item: Item, linear: bool) -> Callable[[Response], Cell]:
    return lambda r: _forms_label(item, r.values.get(item.code), linear)


def _stamp(text: bool, traps: Sequence[str]) -> Callable[[Response], Cell]:
    """How the timestamp column shows a response's time."""
    if text:
        return lambda r: _timestamp_text(r.submitted_at)
    if "serial_timestamps" in traps:
        return lambda r: _serial_time(r.submitted_at)
    return lambda r: r.submitted_at


def forms_sheet(
    q: Questionnaire, responses: list[Response], traps: Sequence[str], csv_file: bool
) -> Sheet:
    """A Google Forms response sheet (the download of its linked Google Sheet)."""
    english = "english_headers" in traps
    text_ts = csv_file or "timestamp_text" in traps
    linear = "linear_scale" in traps
    grid = "grid_headers" in traps
    columns: list[Column] = [("Timestamp" if english else "Dấu thời gian", _stamp(text_ts, traps))]
    if "email" in traps:
        columns.append(("Email Address" if english else "Địa chỉ email", lambda r: r.email))
    if "personal_data" in traps:
        columns.append(("Họ và tên", lambda r: r.name))
        columns.append(("Số điện thoại", lambda r: r.phone))
    items = list(q.items)
    if "missing_question" in traps:
        items = [i for i in items if i.code != "KHU_VUC"]
    if "reordered" in traps:
        # Background first, then the Likert blocks last-to-first, the school's own question
        # in the middle, and the closing questions.
        background = [i for i in items if i.kind == "text" and i.code != "Y_KIEN"]
        likert = [i for i in items if i.kind == "likert" and i.code != "CHUNG"][::-1]
        rest = [i for i in items if i not in background and i not in likert]
        items = background + likert + rest
    renamed_likert = 0
    for n, item in enumerate(items, start=1):
        head = _header(item, grid)
        if "renamed" in traps and item.aliases:
            is_grid_row = item.kind == "likert" and item.code != "CHUNG"
            # Every renamed background/closing question, and the first two grid rows.
            if not is_grid_row or renamed_likert < 2:
                head = item.aliases[0]
                renamed_likert += is_grid_row
        if "numbered_headers" in traps and item.kind == "likert":
            # Schools rebuilding the form number its questions; extra spaces come along.
            head = f"Câu {n}.  {head} "
        columns.append((head, _item_getter(item, linear)))
        if "extra_question" in traps and item.code == "CHUNG":
            columns.append((EXTRA_QUESTION, lambda r: r.extra))
    rows = [[get(r) for _, get in columns] for r in responses]
    formats = {} if text_ts or "serial_timestamps" in traps else {0: "dd/mm/yyyy hh:mm:ss"}
    name = "Form Responses 1" if english else "Câu trả lời biểu mẫu 1"
    return Sheet(name, [h for h, _ in columns], rows, formats=formats)


def _title_block(school_name: str, heading: str, width: int) -> list[list[tuple[int, int, str]]]:
    half = max(3, width // 2)
    right = max(half + 4, width)
    return [
        [
            (1, half, f"SỞ GIÁO DỤC VÀ ĐÀO TẠO {PROVINCE_NAME.upper()}"),
            (half + 1, right, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"),
        ],
        [(1, half, school_name.upper()), (half + 1, right, "Độc lập - Tự do - Hạnh phúc")],
        [],
        [(1, right, heading)],
        [(1, right, f"Năm học {SCHOOL_YEAR}")],
        [],
    ]


def _serial(day: dt.date) -> int:
    """Excel's serial day number (1900 date system), as typed without a date format."""
    return (day - dt.date(1899, 12, 30)).days


def _serial_time(when: dt.datetime) -> float:
    """Excel's serial date-time: days since 1899-12-30 plus the fraction of the day."""
    return (when - dt.datetime(1899, 12, 30)) / dt.timedelta(days=1)


def _paper_cell(item: Item, value: Cell, variants: bool, rng: random.Random) -> Cell:
    if value is None or value == "":
        return None
    if item.kind == "likert" and variants:
        return rng.choice(LIKERT_VARIANTS[_as_int(value)])
    return _forms_label(item, value, linear=False)


def _paper_sheet(
    q: Questionnaire,
    school_name: str,
    responses: list[Response],
    traps: Sequence[str],
    rng: random.Random,
) -> Sheet:
    """Paper forms typed into Excel by a teacher, one row per form."""
    variants = "label_variants" in traps
    background = [i for i in q.items if i.kind == "text" and i.code != "Y_KIEN"]
    numbered = [i for i in q.items if i not in background]
    header = ["STT", "Ngày khảo sát"] + [i.text for i in background]
    style = "paren" if "totals_row" in traps and "formula_totals" not in traps else "cau"
    for n, item in enumerate(numbered, start=1):
        header.append(f"{n}) {item.text}" if style == "paren" else f"Câu {n}. {item.text}")
    items = background + numbered
    rows: list[list[Cell]] = []
    for k, r in enumerate(responses):
        row: list[Cell] = [k + 1, _serial(r.submitted_at.date())]
        for item in items:
            # Paper respondents skip a question now and then; an empty cell is no answer.
            skipped = item.kind == "likert" and rng.random() < 0.01
            cell = _paper_cell(item, r.values.get(item.code), variants, rng)
            row.append(None if skipped else cell)
        rows.append(row)
    first = len(header) - len(numbered)  # 0-based column of the first numbered item
    if variants:
        likert_cols = [first + j for j, i in enumerate(numbered) if i.kind == "likert"]
        for (label, value), col in zip(FORCED_VARIANTS, likert_cols, strict=False):
            rows[0][col] = label
            responses[0].values[items[col - 2].code] = value
    if "invalid_answers" in traps:
        likert_cols = [first + j for j, i in enumerate(numbered) if i.kind == "likert"]
        rows[2][likert_cols[1]] = "6"
        chung = next((first + j for j, i in enumerate(numbered) if i.code == "CHUNG"), None)
        rows[4][chung if chung is not None else likert_cols[2]] = "Không biết"
    heading = f"TỔNG HỢP {q.name.upper()}"
    title = _title_block(school_name, heading, 12)
    data_first = len(title) + 2  # 1-based sheet row of the first form (after the header)
    out_rows: list[list[Cell]] = []
    for k, row in enumerate(rows):
        if "blank_rows" in traps and k and k % 10 == 0:
            out_rows.append([])  # the typist's gap between piles of forms
        out_rows.append(row)
    if "totals_row" in traps:
        last = data_first + len(out_rows) - 1
        formulas = "formula_totals" in traps
        out_rows.append(
            _totals_row(background, numbered, rows, first, (data_first, last), formulas)
        )
    return Sheet("Tổng hợp phiếu", header, out_rows, title)


def _totals_row(
    background: list[Item],
    numbered: list[Item],
    rows: list[list[Cell]],
    first: int,
    data_rows: tuple[int, int],
    formulas: bool,
) -> list[Cell]:
    """The typist's 'Tổng cộng' row: counts and an average, or formulas without cached values."""
    data_first, last = data_rows
    totals: list[Cell] = ["Tổng cộng", None, *([None] * len(background))]
    for j, item in enumerate(numbered):
        col = first + j
        letter = get_column_letter(col + 1)
        if formulas:
            fn = "AVERAGE" if item.kind == "percent" else "COUNTA"
            formula = _Formula(f"={fn}({letter}{data_first}:{letter}{last})")
            totals.append(None if item.kind == "text" else formula)
        elif item.kind == "percent":
            vals = [v for r in rows if isinstance(v := r[col], int)]
            totals.append(round(sum(vals) / len(vals), 1) if vals else None)
        elif item.kind == "text":
            totals.append(None)
        else:
            totals.append(sum(1 for r in rows if r[col] not in (None, "")))
    return totals


def _review_sheet(
    q: Questionnaire, school_name: str, level: str, low: bool, rng: random.Random
) -> Sheet:
    """DVGD_8TC: the review board's M2 form, one row per service and a level per criterion."""
    pool = [s for s in LEVEL_SERVICES[level] if s not in COMMON_SERVICES]
    services = list(COMMON_SERVICES) + rng.sample(pool, k=min(len(pool), rng.randint(2, 4)))
    criteria = [i for i in q.items if i.kind == "level"]
    header = ["STT"] + [i.text for i in q.items]
    rows: list[list[Cell]] = []
    for k, service in enumerate(services):
        failing = low and k == len(services) - 1
        weights = (0, 10, 40, 35, 15) if failing else (50, 35, 12, 3, 0)
        points = rng.choices((10, 7, 5, 3, 0), weights=weights, k=len(criteria))
        if failing:
            points[0] = 0  # at least one criterion "Kém"
        levels = dict(zip((i.code for i in criteria), points, strict=True))
        row: list[Cell] = [k + 1]
        for item in q.items:
            if item.code == q.service_item:
                row.append(service)
            elif item.kind == "level":
                row.append(LEVEL_LABELS[levels[item.code]])
            elif "NHOM" in item.code:
                row.append(SERVICE_GROUPS.get(service, ""))
            else:
                row.append("Cần rà soát lại hợp đồng với đơn vị cung cấp." if failing else None)
        rows.append(row)
    heading = "BẢNG ĐÁNH GIÁ CHẤT LƯỢNG DỊCH VỤ GIÁO DỤC (Mẫu M2)"
    return Sheet("M2", header, rows, _title_block(school_name, heading, len(header)))


# ---------------------------------------------------------------------------------------------
# Writing


def _nfd(value: Cell) -> Cell:
    return unicodedata.normalize("NFD", value) if isinstance(value, str) else value


def _to_nfd(sheet: Sheet) -> Sheet:
    return Sheet(
        unicodedata.normalize("NFD", sheet.name),
        [unicodedata.normalize("NFD", h) for h in sheet.header],
        [[_nfd(v) for v in row] for row in sheet.rows],
        [[(a, b, unicodedata.normalize("NFD", t)) for a, b, t in r] for r in sheet.title],
        sheet.formats,
    )


def _write_xlsx(path: Path, sheet: Sheet) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None  # noqa: S101 - a new Workbook always has one sheet
    ws.title = sheet.name
    r = 0
    for r, segments in enumerate(sheet.title, start=1):
        for first, last, text in segments:
            write_cell(ws, r, first, text, font=Font(bold=True))
            ws.cell(r, first).alignment = Alignment(horizontal="center")
            if last > first:
                ws.merge_cells(start_row=r, start_column=first, end_row=r, end_column=last)
    header_row = r + 1
    for c, text in enumerate(sheet.header, start=1):
        write_cell(ws, header_row, c, text, font=Font(bold=True) if sheet.title else None)
    for k, row in enumerate(sheet.rows, start=header_row + 1):
        for c, value in enumerate(row, start=1):
            if value is None:
                continue
            if isinstance(value, _Formula):
                ws.cell(k, c, str(value))  # openpyxl stores it with no cached value
                continue
            write_cell(ws, k, c, value, number_format=sheet.formats.get(c - 1))
    save_workbook(wb, path)


def _write_csv(path: Path, sheet: Sheet, bom: bool) -> None:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(sheet.header)
        for row in sheet.rows:
            writer.writerow(["" if v is None else v for v in row])


def _set_mtime(path: Path, when: dt.datetime) -> None:
    """Set the file's modified time, given in the campaign's local time."""
    ts = when.replace(tzinfo=ZoneInfo(DEFAULT_TIMEZONE)).timestamp()
    os.utime(path, (ts, ts))


def write_forms_file(
    path: Path, q: Questionnaire, responses: list[Response], modified: dt.datetime
) -> None:
    """A clean Google Forms download (xlsx) of ``responses``, modified at ``modified``."""
    _write_xlsx(path, forms_sheet(q, responses, (), csv_file=False))
    _set_mtime(path, modified)


def write_source(
    folder: Path,
    src: PlannedSource,
    q: Questionnaire,
    school_name: str,
    respondents: tuple[int, int],
    rng: random.Random,
) -> None:
    """Write ``src``'s file (or leave it absent) with its traps and modified time."""
    path = folder / src.location
    spec = src.spec
    traps = spec.traps
    on_time = dt.datetime.combine(CLOSES, dt.time(16, 30)) + dt.timedelta(
        minutes=rng.randrange(600)
    )
    if spec.layout == "absent":
        path.unlink(missing_ok=True)  # a previous generation must not leave it behind
        return
    if spec.layout == "corrupt":
        path.write_bytes(rng.randbytes(rng.randint(2048, 4096)))
    elif spec.layout == "empty":
        path.write_bytes(b"")
    elif spec.layout == "review":
        low = "service_low" in traps
        _write_xlsx(path, _review_sheet(q, school_name, src.school.level, low, rng))
    else:
        # Traps are placed in the first rows; a handful of respondents always holds them.
        n = max(8, rng.randint(*respondents))
        if q.kind == "papi":
            codes = [i.code for i in q.items if i.kind == "yesno"]
            low_indicator = None
            if "papi_low" in traps:
                low_indicator = "HOC_THEM" if "HOC_THEM" in codes else codes[len(codes) // 2]
            responses = papi_responses(q, n, low_indicator, rng)
        else:
            responses = satisfaction_responses(q, src.school.level, n, src.low, rng)
        add_traps(responses, traps)
        if spec.layout == "paper":
            sheet = _paper_sheet(q, school_name, responses, traps, rng)
        else:
            sheet = forms_sheet(q, responses, traps, csv_file=spec.ext == "csv")
        if "duplicate" in traps:
            k = len(sheet.rows) // 2
            sheet.rows.insert(k + 1, list(sheet.rows[k]))
        if "nfd" in traps:
            sheet = _to_nfd(sheet)
        if spec.ext == "csv":
            _write_csv(path, sheet, bom="csv_bom" in traps)
        else:
            _write_xlsx(path, sheet)
        last = max(r.submitted_at for r in responses)
        on_time = min(last + dt.timedelta(hours=2), dt.datetime.combine(DEADLINE, dt.time(17)))
    if "late" in traps:
        on_time = dt.datetime.combine(DEADLINE + dt.timedelta(days=2), dt.time(9, 30))
    _set_mtime(path, on_time)
