"""ods content, looked at before calamine reads it: the area calamine will allocate, trailing
blanks, formulas without values.
"""

from __future__ import annotations

import html
import re

from flows.read.cells import (
    Formulas,
    FormulaWithoutValue,
    area_over_limit,
    cut_spans,
    rows_over_limit,
)
from flows.read.guards import Package
from flows.settings import Limits
from schemas.records import SourceError

# ods compresses runs: a row or a cell may stand for many (number-rows-repeated,
# number-columns-repeated), and calamine expands every run that holds something. LibreOffice
# writes each sheet down to row 1,048,576 as repeated empty rows, which cost nothing, but a
# repeated cell with a value, or one blank-but-not-empty cell (a space) after such a run, makes
# calamine allocate the whole rectangle: a few hundred bytes of XML can ask for gigabytes. So
# every row's extent is computed here from the XML (a few byte counts per row, the cells
# themselves only at the row's end), trailing blank rows and cells are cut, and the rectangle is
# checked against the limits before calamine reads it.

_ODS_TABLE = re.compile(rb"<table:table\s[^>]*>")
_ODS_ROW = re.compile(rb"<table:table-row(?:\s[^>]*?)?(/?)>")
_ODS_ROW_CLOSE = b"</table:table-row>"
_ODS_REPEAT = re.compile(rb'table:number-rows-repeated="(\d+)"')
#: Without its "table:number-" start: a rarer literal prefix makes the search faster.
_ODS_COL_REPEAT = re.compile(rb'columns-repeated="(\d+)"')
_ODS_CELL = re.compile(rb"<table:(covered-)?table-cell\b([^>]*)>")
_ODS_VALUE = re.compile(rb"office:(?:value|date-value|time-value|boolean-value)=|table:formula=")
_ODS_FORMULA = re.compile(rb'table:formula="([^"]*)"')
_TAG = re.compile(rb"<[^>]*>")


#: The first character of text that is not an ASCII space; an entity or a non-ASCII byte may
#: still be a space (&#160;, U+3000) and gets the exact look.
_SOME_TEXT = re.compile(rb">[ \t\r\n]*([^<\s])")


def _ods_blank(element: bytes) -> bool:
    """Whether a row or cell element holds no value and no visible text."""
    if _ODS_VALUE.search(element):
        return False
    text = _SOME_TEXT.search(element)
    if text is None:
        return True
    if text.group(1) not in b"&" and text.group(1)[0] < 0x80:
        return False  # plain visible text: settled without decoding the element
    # Text lives in <text:p>; <text:s/> is a space, so stripping every tag leaves the text.
    return not html.unescape(_TAG.sub(b"", element).decode("utf-8", "replace")).strip()


def _ods_rows(xml: bytes, start: int, stop: int) -> list[tuple[int, int, int]]:
    """(start, stop, repeat) of each row element of one table, where stop is the next row's
    start (or the table's end): the cells between belong to the row."""
    found = [(m.start(), m.group(0)) for m in _ODS_ROW.finditer(xml, start, stop)]
    rows: list[tuple[int, int, int]] = []
    for i, (at, tag) in enumerate(found):
        repeat = _ODS_REPEAT.search(tag) if b"rows-repeated" in tag else None
        until = found[i + 1][0] if i + 1 < len(found) else stop
        rows.append((at, until, int(repeat.group(1)) if repeat else 1))
    return rows


def _ods_row_end(xml: bytes, start: int, stop: int) -> int:
    """Where the row element starting at ``start`` really ends (its closing tag)."""
    m = _ODS_ROW.match(xml, start)
    if m is None or m.group(1):
        return m.end() if m is not None else start
    at = xml.find(_ODS_ROW_CLOSE, m.end(), stop)
    return stop if at < 0 else at + len(_ODS_ROW_CLOSE)


def _ods_cell_end(xml: bytes, tag: re.Match[bytes], stop: int) -> int:
    if tag.group(2).endswith(b"/"):
        return tag.end()
    close = b"</table:covered-table-cell>" if tag.group(1) else b"</table:table-cell>"
    at = xml.find(close, tag.end(), stop)
    return stop if at < 0 else at + len(close)


def _ods_repeat(tag: bytes) -> int:
    m = _ODS_COL_REPEAT.search(tag)
    return int(m.group(1)) if m else 1


def _ods_row_extent(
    xml: bytes, start: int, end: int, covered: bool
) -> tuple[int, list[tuple[int, int]]]:
    """The columns a row spans up to its last cell holding something, and the spans of the
    trailing cells holding blank text (to cut: calamine would stretch the sheet to reach them).
    Counted with C-speed byte searches; only the cells at the row's end are looked at."""
    extent = xml.count(b"<table:table-cell", start, end)
    if covered:
        extent += xml.count(b"<table:covered-table-cell", start, end)
    if xml.find(b"columns-repeated", start, end) >= 0:
        repeats = _ODS_COL_REPEAT.findall(xml, start, end)
        extent += sum(map(int, repeats)) - len(repeats)
    cuts: list[tuple[int, int]] = []
    pos = end
    while extent > 0:
        at = xml.rfind(b"<table:table-cell", start, pos)
        if covered:
            at = max(at, xml.rfind(b"<table:covered-table-cell", start, pos))
        if at < 0:
            break
        close = xml.find(b">", at, pos)
        if close > 0 and xml[close - 1] == 0x2F:  # "/>": no text, so its attributes decide
            head = xml[at : close + 1]
            if _ODS_VALUE.search(head):
                break
            extent -= _ods_repeat(head)  # LibreOffice's padding to column 1024 lands here
            pos = at
            continue
        tag = _ODS_CELL.match(xml, at)
        if tag is None:
            break
        cell_end = _ods_cell_end(xml, tag, pos)
        if not _ods_blank(xml[at:cell_end]):
            break
        extent -= _ods_repeat(tag.group(0))
        if xml.find(b"<text:", at, cell_end) >= 0:
            cuts.append((at, cell_end))
        pos = at
    return max(extent, 0), cuts


def _ods_formulas(
    xml: bytes, rows: list[tuple[int, int, int]]
) -> dict[tuple[int, int], FormulaWithoutValue]:
    """Cells with a formula and no value type: calamine reads them as empty."""
    marks: dict[tuple[int, int], FormulaWithoutValue] = {}
    top = 0
    for start, end, repeat in rows:
        if xml.find(b"table:formula=", start, end) >= 0:
            col = 0
            for tag in _ODS_CELL.finditer(xml, start, end):
                attrs = tag.group(0)
                span = _ods_repeat(attrs)
                f = _ODS_FORMULA.search(attrs)
                if f is not None and b"office:value-type=" not in attrs:
                    text = html.unescape(f.group(1).decode("utf-8", "replace"))
                    text = text.split(":", 1)[1] if re.match(r"[a-z]+:", text) else text
                    formula = FormulaWithoutValue(text if text.startswith("=") else f"={text}")
                    for r in range(top, top + repeat):
                        for c in range(col, col + span):
                            marks[(r, c)] = formula
                col += span
        top += repeat
    return marks


def prepare_ods(pkg: Package, filename: str, limits: Limits) -> tuple[bytes, Formulas]:
    """Refuse encrypted or oversized sheets, cut trailing blanks, find formulas without values;
    content.xml is rewritten only if something was cut."""
    try:
        manifest = pkg.read("META-INF/manifest.xml")
    except KeyError:
        manifest = b""
    if b"encryption-data" in manifest:
        raise SourceError(f"{filename}: the file is password-protected")
    xml = pkg.read("content.xml")
    pkg.verify_rest()
    formulas: Formulas = {}
    cuts: list[tuple[int, int]] = []
    starts = [m.start() for m in _ODS_TABLE.finditer(xml)] + [len(xml)]
    has_formulas = b"table:formula=" in xml
    for n, table_start in enumerate(starts[:-1]):
        name_m = re.search(rb'table:name="([^"]*)"', xml[table_start : table_start + 2000])
        sheet = html.unescape(name_m.group(1).decode("utf-8", "replace")) if name_m else "?"
        rows = _ods_rows(xml, table_start, starts[n + 1])
        covered = xml.find(b"<table:covered-table-cell", table_start, starts[n + 1]) >= 0
        extents = [_ods_row_extent(xml, start, end, covered) for start, end, _ in rows]
        keep = len(rows)
        while keep and extents[keep - 1][0] == 0:
            keep -= 1
        height = sum(r[2] for r in rows[:keep])
        if height > limits.max_rows:
            raise rows_over_limit(filename, sheet, height, limits)
        width = max((e for e, _ in extents[:keep]), default=0)
        if height * width > limits.max_cells:
            raise area_over_limit(filename, sheet, height, width, limits)
        tail = rows[keep:]
        # Rows of empty cells (LibreOffice's padding) cost calamine nothing: cut only when
        # some trailing row holds blank text, which is what makes calamine expand the run.
        if any(xml.find(b"<text:", start, end) >= 0 for start, end, _ in tail):
            cuts.extend((start, _ods_row_end(xml, start, end)) for start, end, _ in tail)
        for _, row_cuts in extents[:keep]:
            cuts.extend(row_cuts)
        marks = _ods_formulas(xml, rows[:keep]) if has_formulas else {}
        if marks:
            formulas[sheet] = marks
    content = pkg.rebuild({"content.xml": cut_spans(xml, cuts)}) if cuts else pkg.content
    return content, formulas
