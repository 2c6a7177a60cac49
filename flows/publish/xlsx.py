"""The xlsx toolkit every workbook the project writes uses (workbooks, feedback, form, demo).

:func:`write_cell` stores text as text (a value starting with ``=``, ``+``, ``-`` or ``@`` never
becomes a formula) and :func:`save_workbook` gives the same bytes for the same content. The
styles are one set of named constants. Styling goes through :func:`set_style` and
:func:`merge_cells`, which reach into openpyxl's private style arrays and cell map: openpyxl's
own path hashes every Border and Font on each assignment and costs publishing more than it is
worth (benchmarks/README.md); tests/publish/test_workbooks.py checks both give the same file.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
import weakref
import zipfile
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell, MergedCell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.styles.cell_style import StyleArray
from openpyxl.worksheet.cell_range import CellRange
from openpyxl.worksheet.merge import MergedCellRange
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.xml.functions import tostring

from schemas.records import column_letter

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

#: Every font the project writes is named: Calibri has every Vietnamese letter, Excel has it, and
#: LibreOffice prints it with Carlito (Debian: fonts-crosextra-carlito), a font with Calibri's
#: metrics, so a page breaks in the same place in both. An unnamed font is printed by
#: LibreOffice in its own default face, wider, and the page no longer fits.
FONT_NAME = "Calibri"
PLAIN = Font(name=FONT_NAME, size=11)
BOLD = Font(name=FONT_NAME, size=11, bold=True)
ITALIC = Font(name=FONT_NAME, size=11, italic=True, color="595959")
TITLE = Font(name=FONT_NAME, bold=True, size=14)
SECTION = Font(name=FONT_NAME, bold=True, size=12, color="1F4E78")
HEADER_FILL = PatternFill("solid", start_color="DDEBF7")
GROUP_FILL = PatternFill("solid", start_color="F2F2F2")
#: The header of a school's feedback file: orange, apart from the leadership blue.
FEEDBACK_HEADER_FILL = PatternFill("solid", start_color="FCE4D6")
THIN = Side(style="thin", color="A6A6A6")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
WRAP_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
WRAP = Alignment(vertical="top", wrap_text=True)
# Table cells sit mid-row, so a number lines up with the wrapped name beside it.
MIDDLE = Alignment(vertical="center")
WRAP_MIDDLE = Alignment(vertical="center", wrap_text=True)
SUPPRESSED_ALIGN = Alignment(horizontal="right", vertical="center")
LEFT = Alignment(horizontal="left")

#: Tier colours: cell fill and font (Excel's own good/neutral/bad styles) and chart bars.
TIER_STYLE = {
    "red": ("FFC7CE", "9C0006", "C00000"),
    "amber": ("FFEB9C", "9C5700", "FFC000"),
    "green": ("C6EFCE", "006100", "70AD47"),
}
#: The "Mức" cell of a red or amber alert: the tier's fill, its font in bold.
SEVERITY_STYLE = {
    tier: (
        PatternFill("solid", start_color=fill, end_color=fill),
        Font(name=FONT_NAME, size=11, color=font, bold=True),
    )
    for tier, (fill, font, _) in TIER_STYLE.items()
}

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
        set_style(cell, font=font)
    return cell


# Per workbook: (style list, id of a Font/PatternFill/Border/Alignment) -> (the object, its
# index in the workbook's list). Assigning ``cell.border = x`` makes openpyxl hash ``x`` to find
# its index, and hashing a Border walks its Sides and Colors, on every cell. The object is kept
# in the entry so its id cannot be reused.
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


def set_style(
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


# Per workbook: (border index of a cell, edge, border index of the range's top-left cell) ->
# index of the cell's border once merged.
_MERGED_BORDERS: weakref.WeakKeyDictionary[Workbook, dict[tuple[int, str, int], int]] = (
    weakref.WeakKeyDictionary()
)


def merge_cells(
    ws: Worksheet, first_row: int, first_col: int, last_row: int, last_col: int
) -> None:
    """Merge a range of cells: the same as ``ws.merge_cells(...)``, faster.

    openpyxl gives the top-left cell the bottom-right cell's right and bottom border, and every
    cell on the edge of the range the top-left cell's border on that edge, by adding two Border
    objects and hashing the sum, once per cell. This does what ``Worksheet.merge_cells`` does
    (openpyxl 3.1, ``MergedCellRange._get_borders`` and ``format``) with each sum worked out
    once per workbook; tests/publish/test_workbooks.py checks the two give the same file.
    """
    wb = ws.parent
    sums = _MERGED_BORDERS.get(wb)
    if sums is None:
        sums = _MERGED_BORDERS[wb] = {}
    borders = wb._borders
    merged = _merged_range(ws, sums, first_row, first_col, last_row, last_col)
    # Straight into the set: MultiCellRange.add first checks the range against every range
    # merged before it, and the ranges merged here never overlap.
    ws.merged_cells.ranges.add(merged)
    cells = merged.cells
    next(cells)  # the top-left cell keeps its value and style
    for row, col in cells:
        ws._cells[row, col] = MergedCell(ws, row, col)
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


def _merged_range(
    ws: Worksheet,
    sums: dict[tuple[int, str, int], int],
    first_row: int,
    first_col: int,
    last_row: int,
    last_col: int,
) -> MergedCellRange:
    """``MergedCellRange(ws, ...)`` with its first step, the top-left cell taking the
    bottom-right cell's right and bottom border, done through ``sums`` rather than by hashing
    the sum: the bottom-right cell is out of the sheet while the range is made."""
    coord = CellRange(min_row=first_row, min_col=first_col, max_row=last_row, max_col=last_col)
    end_key = (last_row, last_col)
    end = None if end_key == (first_row, first_col) else ws._cells.pop(end_key, None)
    merged = MergedCellRange(ws, coord.coord)
    if end is None:
        return merged
    ws._cells[end_key] = end
    borders = ws.parent._borders
    start, corner = _style_array(merged.start_cell), _style_array(end).borderId
    key = (start.borderId, "corner", corner)
    index = sums.get(key)
    if index is None:
        corner_border = borders[corner]
        added = Border(right=corner_border.right, bottom=corner_border.bottom)
        index = sums[key] = borders.add(borders[start.borderId] + added)
    start.borderId = index
    return merged


def column_range(col: int, first: int, last: int) -> str:
    """``A5:A9``: one column from row ``first`` to ``last``."""
    letter = column_letter(col)
    return f"{letter}{first}:{letter}{last}"


# A cell never styled has no style array: index 0 of every style list, the defaults.
_NO_STYLE = StyleArray()


def _stored_rows(ws: Worksheet) -> list[list[Cell]]:
    """The sheet's cells row by row, in the order ``ws.iter_rows()`` gives them, without the
    empty ones: iter_rows creates a cell at every place of the used rectangle, and a sparse
    sheet (quotes, notes, a digest) then holds and saves several times the cells it uses."""
    cells = ws._cells
    rows: dict[int, list[Cell]] = {}
    for key in sorted(cells):
        rows.setdefault(key[0], []).append(cells[key])
    return list(rows.values())


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
    for row in _stored_rows(ws):
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


# The same names, wordings and headers come back in every sheet and workbook of a province.
@functools.lru_cache(maxsize=1 << 16)
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
    width = ws.column_dimensions[column_letter(col)].width
    return float(width) if width else 8.43


#: Paper: A4 is 8.27 x 11.69 in. Column-width units (one "0" of Calibri 11) per inch of paper.
_A4_SHORT, _A4_LONG = 8.27, 11.69
_UNITS_PER_INCH = 13.7
_SIDE_MARGIN = 0.4
#: The header and footer sit 0.3 in from the paper's edge, in a 0.75 in margin: room for a
#: 9 pt line and a gap, so neither is cut by the printable area nor overlaps the table.
_TOP_BOTTOM_MARGIN = 0.75
_HEADER_FOOTER_MARGIN = 0.3
#: A table column grows to fit its longest text up to this width; longer text wraps.
MAX_COLUMN_WIDTH = 50.0


def portrait_width() -> float:
    """Column-width units that fit across an A4 portrait page between the margins."""
    return (_A4_SHORT - 2 * _SIDE_MARGIN) * _UNITS_PER_INCH


def fit_columns(ws: Worksheet, cap: float = MAX_COLUMN_WIDTH) -> None:
    """Widen each column to its longest table cell (a bordered cell), up to ``cap``; a text
    longer than ``cap`` wraps instead ("Trung học phổ thông" is never cut to "…phổ thôn").

    Titles and notes (unbordered) may run across the page and do not count; wrapped cells keep
    the width they were given and grow in height (:func:`fit_row_heights`).
    """
    wb = ws.parent
    alignments, fonts = wb._alignments, wb._fonts
    merged = {
        (row, col)
        for rng in ws.merged_cells.ranges
        for row in range(rng.min_row, rng.max_row + 1)
        for col in range(rng.min_col, rng.max_col + 1)
    }
    wrap_later: list[Cell] = []
    needs: dict[int, float] = {}
    for row in _stored_rows(ws):
        for cell in row:
            value = cell.value
            style = cell._style
            if value is None or style is None or style.borderId == 0:
                continue
            if (cell.row, cell.column) in merged or alignments[style.alignmentId].wrap_text:
                continue
            text = value if isinstance(value, str) else _shown(value)
            need = _text_width(text, bold=bool(fonts[style.fontId].b)) + 2.0
            if need > cap and isinstance(value, str):
                wrap_later.append(cell)
                need = cap
            needs[cell.column] = max(needs.get(cell.column, 0.0), need)
    for col, need in needs.items():
        if need > _column_width(ws, col):
            ws.column_dimensions[column_letter(col)].width = round(need, 1)
    for cell in wrap_later:
        old = alignments[_style_array(cell).alignmentId]
        set_style(cell, alignment=_wrapped(old.horizontal, old.vertical))


@functools.lru_cache(maxsize=64)
def _wrapped(horizontal: str | None, vertical: str | None) -> Alignment:
    # One object per kind, so set_style finds it by identity.
    return Alignment(horizontal=horizontal, vertical=vertical or "center", wrap_text=True)


def _shown(value: Any) -> str:
    """Roughly what a number or date looks like in its cell."""
    if isinstance(value, dt.datetime):
        return "00/00/0000 00:00"
    if isinstance(value, dt.date):
        return "00/00/0000"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _used_width(ws: Worksheet) -> float:
    return sum(_column_width(ws, col) for col in range(1, ws.max_column + 1))


def print_setup(
    ws: Worksheet,
    header_rows: tuple[int, int] | None,
    freeze: str | None,
    *,
    landscape: bool | None = None,
) -> None:
    """Make ``ws`` print on A4, one page wide, as leadership and schools read it.

    Table columns widened to their content (:func:`fit_columns`), rows with wrapped text made
    tall enough to show it, fitted to the page width (as many pages down as the rows need),
    landscape when the table is wider than a portrait page (or as ``landscape`` says), header
    rows repeated on every page, and a footer with the sheet's name and the page number inside
    margins that keep it whole.
    """
    fit_columns(ws)
    fit_row_heights(ws)
    if landscape is None:
        landscape = _used_width(ws) > portrait_width()
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    margins = ws.page_margins
    margins.left = margins.right = _SIDE_MARGIN
    margins.top = margins.bottom = _TOP_BOTTOM_MARGIN
    margins.header = margins.footer = _HEADER_FOOTER_MARGIN
    ws.print_options.horizontalCentered = True
    for part, text in ((ws.oddFooter.left, "&A"), (ws.oddFooter.right, "Trang &P / &N")):
        part.text = text
        part.font = f"{FONT_NAME},Regular"
        part.size = 9
    if header_rows is not None:
        ws.print_title_rows = f"{header_rows[0]}:{header_rows[1]}"
    if freeze is not None:
        # Rows above the data scroll away; the header stays.
        ws.freeze_panes = freeze
