"""xlsx sheet parts, looked at before calamine reads them, for what it cannot see or survive.

calamine allocates a sheet as one dense rectangle from A1 to its furthest cell, so a few cells
far apart cost gigabytes: the rectangle is bounded by ``max_rows`` and ``max_cells``
(``_bound_area``), and blank cells far below or to the right of the data (a space at XFD1, a
blank shared string at row 1,048,576) are cut from the XML instead of stretching it. A formula
saved without a cached value (openpyxl and some report generators write those) reads as an
empty cell: such cells come back as ``FormulaWithoutValue`` so parse can reject them.
"""

from __future__ import annotations

import functools
import html
import re

from flows.read.calamine import without_merge_scan
from flows.read.cells import (
    Formulas,
    FormulaWithoutValue,
    area_over_limit,
    cut_spans,
    rows_over_limit,
)
from flows.read.guards import Package
from flows.settings import Limits
from schemas.records import column_letter

#: Columns beyond this are looked at cell by cell before calamine reads an xlsx sheet (far
#: wider than any questionnaire; Excel itself stops at 16,384).
_WIDE_SHEET = 1024


_ATTR = re.compile(rb"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_SHEET_TAG = re.compile(rb"<(?:[\w.-]+:)?sheet\s[^>]*>")
_REL_TAG = re.compile(rb"<(?:[\w.-]+:)?Relationship\s[^>]*>")
_HAS_FORMULA = re.compile(rb"<(?:[\w.-]+:)?f[\s>/]")
_CELL = re.compile(rb"<(?:[\w.-]+:)?c(\s[^>]*?)?(?:/>|>(.*?)</(?:[\w.-]+:)?c>)", re.DOTALL)
_VALUE = re.compile(rb"<(?:[\w.-]+:)?v(?:\s[^>]*)?(?:/>|>(.*?)</(?:[\w.-]+:)?v>)", re.DOTALL)
_FORMULA = re.compile(rb"<(?:[\w.-]+:)?f(?:\s[^>]*)?(?:/>|>(.*?)</(?:[\w.-]+:)?f>)", re.DOTALL)
_TEXT = re.compile(rb"<(?:[\w.-]+:)?t(?:\s[^>]*)?>([^<]*)<", re.DOTALL)
_SI = re.compile(
    rb"<(?:[\w.-]+:)?si(?:\s[^>]*)?>(.*?)</(?:[\w.-]+:)?si>|<(?:[\w.-]+:)?si\s*/>", re.DOTALL
)
_ROW_OPEN = re.compile(rb"<(?:[\w.-]+:)?row\b([^>]*)>")
_SHEETDATA_CLOSE = re.compile(rb"</(?:[\w.-]+:)?sheetData>")
_REF = re.compile(rb"([A-Za-z]+)(\d+)")
#: Trailing rows are looked at only past this gap between the last two row numbers, so
#: ordinary sheets (rows written densely) never pay for the row-by-row look.
_SPARSE_GAP = 1000


def _attrs(tag: bytes) -> dict[str, bytes]:
    # Keyed by local name: the r: prefix of r:id is not fixed by the standard.
    return {k.decode().rsplit(":", 1)[-1]: d or s for k, d, s in _ATTR.findall(tag)}


def _xlsx_sheet_parts(pkg: Package) -> dict[str, str]:
    """Sheet name → worksheet part path, from workbook.xml and its relationships."""
    targets: dict[bytes, str] = {}
    try:
        rels = pkg.read("xl/_rels/workbook.xml.rels")
    except KeyError:
        return {}
    for tag in _REL_TAG.findall(rels):
        a = _attrs(tag)
        rid, target = a.get("Id"), a.get("Target")
        if rid is None or target is None:
            continue
        path = target.decode("utf-8", "replace")
        path = path.lstrip("/") if path.startswith("/") else f"xl/{path}"
        targets[rid] = path
    parts: dict[str, str] = {}
    for tag in _SHEET_TAG.findall(pkg.read("xl/workbook.xml")):
        a = _attrs(tag)
        name, rid = a.get("name"), a.get("id")
        if name is not None and rid is not None and rid in targets:
            parts[html.unescape(name.decode("utf-8", "replace"))] = targets[rid]
    return parts


def _cell_pos(attrs: bytes | None) -> tuple[int, int] | None:
    if not attrs:
        return None
    ref = _attrs(attrs).get("r")
    m = _REF.fullmatch(ref) if ref else None
    if not m:
        return None
    col = 0
    for ch in m.group(1).upper():  # calamine reads "xfd3" as XFD3, and "AAAA3" too
        col = col * 26 + ch - 64
    return int(m.group(2)) - 1, col - 1


#: Every formula element, prefixed or not, contains "f" followed by ">", "/" or a space. A
#: pattern starting with a literal runs at memchr speed, unlike _HAS_FORMULA; its false
#: positives ("of " in a text) only cost the exact scan.
_MAYBE_FORMULA = re.compile(rb"f[\s>/]")


def _may_hold_formulas(xml: bytes) -> bool:
    """Whether the sheet may hold a formula; most sheets have none."""
    return _MAYBE_FORMULA.search(xml) is not None


def _formulas_without_value(xml: bytes) -> dict[tuple[int, int], FormulaWithoutValue]:
    """(row, col) 0-based → formula, for formula cells with no cached value."""
    found: dict[tuple[int, int], FormulaWithoutValue] = {}
    for m in _CELL.finditer(xml):
        inner = m.group(2)
        if not inner or not _HAS_FORMULA.search(inner):
            continue
        v = _VALUE.search(inner)
        cached = v.group(1) if v else None
        cell_type = _attrs(m.group(1) or b"").get("t", b"n")
        # A formula whose result is "" is stored as t="str" with an empty <v>: that is a
        # computed empty text, not a missing value.
        if cached is not None and (cached.strip() or cell_type in (b"str", b"inlineStr")):
            continue
        pos = _cell_pos(m.group(1))
        if pos is None:
            continue
        f = _FORMULA.search(inner)
        text = html.unescape((f.group(1) or b"").decode("utf-8", "replace")) if f else ""
        found[pos] = FormulaWithoutValue(f"={text}" if text else "=")
    return found


class _SharedStrings:
    """Which shared-string indexes are blank; parsed only when trailing cells need a look."""

    def __init__(self, pkg: Package) -> None:
        self._pkg = pkg
        self._blank: list[bool] | None = None

    def blank(self, index: int) -> bool:
        if self._blank is None:
            try:
                xml = self._pkg.read("xl/sharedStrings.xml")
            except KeyError:
                xml = b""
            self._blank = [
                not html.unescape(
                    b"".join(_TEXT.findall(m.group(1) or b"")).decode("utf-8", "replace")
                ).strip()
                for m in _SI.finditer(xml)
            ]
        return index >= len(self._blank) or self._blank[index]


def _cell_content(attrs: bytes | None, inner: bytes | None, sst: _SharedStrings) -> int:
    """What calamine would make of one <c> element: _EMPTY (no value: skipped, even when
    formatted), _BLANK (a value that is only spaces: it stretches the range but reads as
    nothing) or _DATA (a value, or a formula)."""
    if not inner:
        return _EMPTY
    if _HAS_FORMULA.search(inner):
        return _DATA
    cell_type = _attrs(attrs or b"").get("t", b"n")
    if cell_type == b"inlineStr":
        text = html.unescape(b"".join(_TEXT.findall(inner)).decode("utf-8", "replace"))
        return _DATA if text.strip() else _BLANK
    v = _VALUE.search(inner)
    if v is None:
        return _EMPTY
    value = (v.group(1) or b"").strip()
    if not value:
        return _BLANK
    if cell_type == b"s":
        return _DATA if not value.isdigit() or not sst.blank(int(value)) else _BLANK
    return _DATA if html.unescape(value.decode("utf-8", "replace")).strip() else _BLANK


_EMPTY, _BLANK, _DATA = 0, 1, 2


def _row_is_blank(segment: bytes, sst: _SharedStrings) -> bool:
    if _HAS_FORMULA.search(segment):
        return False
    return all(_cell_content(m.group(1), m.group(2), sst) != _DATA for m in _CELL.finditer(segment))


def _row_number(xml: bytes, at: int) -> int | None:
    """The r attribute of the <row> element found at ``at`` (an rfind result, -1 for none)."""
    if at < 0:
        return None
    m = _ROW_OPEN.match(xml, xml.rfind(b"<", 0, at + 1))
    r = _attrs(m.group(1)).get("r") if m else None
    return int(r) if r is not None and r.isdigit() else None


def _last_row_open(xml: bytes, end: int | None = None) -> int:
    """Where the last <row> element before ``end`` starts, prefixed or not (-1 for none),
    found from the end of the part (" " after "row" keeps <rowBreaks> out). A prefixed row is
    looked for only after the last plain one, so a sheet without prefixes is searched once."""
    plain = xml.rfind(b"<row ", 0, end)
    return max(plain, xml.rfind(b":row ", max(plain, 0), end))


def _last_row_number(xml: bytes) -> int | None:
    """The number of the last <row> element."""
    return _row_number(xml, _last_row_open(xml))


def _cut_blank_tail(
    xml: bytes, sst: _SharedStrings, filename: str, sheet: str, limits: Limits
) -> bytes | None:
    """The sheet XML without its trailing blank rows, or None when there is nothing to cut.

    Only looked at row by row when the last row lies far below the one before it (a sparse
    tail: the 1,048,576-row trap) or beyond the row limit; otherwise this costs two rfind
    calls from the end of the part.
    """
    last_open = _last_row_open(xml)
    last = _row_number(xml, last_open)
    if last is None:
        return None  # rows without numbers: calamine numbers them densely, nothing sparse
    prev_open = _last_row_open(xml, last_open)
    prev = _row_number(xml, prev_open) or 0
    if last <= limits.max_rows and last - prev <= _SPARSE_GAP:
        return None
    close = _SHEETDATA_CLOSE.search(xml)
    if close is None:
        return None
    rows: list[tuple[int, int]] = []
    for rm in _ROW_OPEN.finditer(xml, 0, close.start()):
        number = _attrs(rm.group(1)).get("r")
        if number is None or not number.isdigit():
            return None
        rows.append((rm.start(), int(number)))
    keep = len(rows)
    while keep:
        start = rows[keep - 1][0]
        end = rows[keep][0] if keep < len(rows) else close.start()
        if not _row_is_blank(xml[start:end], sst):
            break
        keep -= 1
    if keep and rows[keep - 1][1] > limits.max_rows:
        raise rows_over_limit(filename, sheet, rows[keep - 1][1], limits)
    if keep == len(rows):
        return None
    cut = rows[keep][0]
    return xml[:cut] + xml[close.start() :]


# The area check. calamine places a cell by its r attribute (or, without one, next to the
# previous cell of its row), whatever the order of the elements, reading "xfd3", "A0003" and
# "AAAA3" as well as "XFD3", and then allocates every cell of the rectangle from A1 to the
# furthest one: a single <c r="B3000000000"> makes it ask for 192 GB and abort the whole
# process. Before calamine reads a sheet, one regex search settles the common case: with the last
# <row>'s number as the height H and W = max_cells // H columns (at most _WIDE_SHEET) as the
# width, every <c> must start with r="…" naming a cell inside H × W in the plain form programs
# write, and every <row> with r="…" not beyond H. A blank cell outside (a space at XFD1) is cut
# from the XML; anything else (a value outside, a cell without r, a prefixed or oddly written
# reference) goes to the exact, slower walk (_exact_area), which places every cell as calamine
# would.


def _at_most(value: str, alphabet: str, then: str) -> str:
    """A regex for the strings over ``alphabet`` (digits or capital letters, most significant
    first, never starting with "0") that name a number no larger than ``value`` and are
    followed by ``then``: shorter ones, or as long and smaller at the first difference, or
    ``value`` itself. Each branch checks ``then`` itself and quantifiers are possessive, so a
    failing branch costs no backtracking (this runs once per cell of every sheet)."""
    n = len(value)
    every = f"[{alphabet[0]}-{alphabet[-1]}]"
    lowest = 1 if alphabet[0] == "0" else 0  # no leading zero
    first = f"[{alphabet[lowest]}-{alphabet[-1]}]"
    alts = [f"{first}{every}{{0,{n - 2}}}+{then}"] if n > 1 else []
    for i, ch in enumerate(value):
        k = alphabet.index(ch)
        floor = lowest if i == 0 else 0
        if k > floor:
            low = f"[{alphabet[floor]}-{alphabet[k - 1]}]"
            alts.append(f"{value[:i]}{low}{every}{{{n - i - 1}}}{then}")
    alts.append(f"{value}{then}")
    return "(?:" + "|".join(alts) + ")"


_DIGITS = "0123456789"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@functools.lru_cache(maxsize=64)
def _not_within(height: int, width: int) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """Patterns finding a <c>, and a <row>, that calamine may place outside ``height`` rows ×
    ``width`` columns: anything not written as a plain reference inside them."""
    rows = _at_most(str(height), _DIGITS, '"')
    cols = _at_most(column_letter(width), _LETTERS, "(?=[1-9])")
    cell = re.compile(rf'<c(?=[\s/>])(?! r="{cols}{rows})'.encode())
    row = re.compile(rf'<row(?=[\s/>])(?! r="{rows})'.encode())
    return cell, row


#: A namespace-prefixed cell or row (<x:c …>, </x:row>): calamine reads them, the patterns
#: above do not look for them.
_PREFIXED = re.compile(rb":(?:c|row)[\s/>]")


def _bound_area(
    xml: bytes, sst: _SharedStrings, filename: str, sheet: str, limits: Limits
) -> bytes | None:
    """Make sure calamine's rectangle for this sheet stays within ``max_rows`` and
    ``max_cells``: None when it already does, else the XML with blank cells outside the data
    cut; SourceError when the data itself spans more."""
    height = _last_row_number(xml)
    if height is None or height < 1 or height > limits.max_rows:
        return _exact_area(xml, sst, filename, sheet, limits)
    # No wider than _WIDE_SHEET either, so a stray blank at XFD1 of a short sheet is cut too
    # rather than costing calamine 16,384 columns per row (within the limits, but for nothing).
    width = min(_WIDE_SHEET, max(1, limits.max_cells // height))
    cell_pattern, row_pattern = _not_within(height, width)
    if row_pattern.search(xml) or _PREFIXED.search(xml):
        return _exact_area(xml, sst, filename, sheet, limits)
    spans: list[tuple[int, int]] = []
    for m in cell_pattern.finditer(xml):
        cell = _CELL.match(xml, m.start())
        pos = _cell_pos(cell.group(1)) if cell is not None else None
        if cell is None or pos is None:
            return _exact_area(xml, sst, filename, sheet, limits)  # placed by counting
        if pos[0] < height and pos[1] < width:
            continue  # inside after all, only written unusually (r not first, "A01")
        if _cell_content(cell.group(1), cell.group(2), sst) == _DATA:
            return _exact_area(xml, sst, filename, sheet, limits)
        spans.append(cell.span())
    return cut_spans(xml, spans) if spans else None


_ROW_OR_CELL = re.compile(
    rb"<(?:[\w.-]+:)?row(?=[\s/>])(?P<row>[^>]*)>"
    rb"|<(?:[\w.-]+:)?c(?=[\s/>])(?P<attrs>[^>]*?)(?:/>|>(?P<inner>.*?)</(?:[\w.-]+:)?c>)",
    re.DOTALL,
)


def _exact_area(
    xml: bytes, sst: _SharedStrings, filename: str, sheet: str, limits: Limits
) -> bytes | None:
    """Every row and cell placed as calamine places them: the rectangle of the cells holding
    data is checked against the limits, and blank cells outside it are cut. Python per cell, so
    only for sheets the fast check could not settle."""
    row_idx = -1
    col_idx = -1
    bottom = right = -1
    blanks: list[tuple[int, int, int, int]] = []  # start, end, row, col
    for m in _ROW_OR_CELL.finditer(xml):
        if m.group("row") is not None:
            r = _attrs(m.group("row")).get("r")
            row_idx = int(r) - 1 if r is not None and r.isdigit() else row_idx + 1
            col_idx = -1
            continue
        pos = _cell_pos(m.group("attrs"))
        if pos is None:
            pos = (max(row_idx, 0), col_idx + 1)
        row_idx, col_idx = pos
        kind = _cell_content(m.group("attrs"), m.group("inner"), sst)
        if kind == _DATA:
            bottom, right = max(bottom, pos[0]), max(right, pos[1])
        elif kind == _BLANK:
            blanks.append((m.start(), m.end(), *pos))
    if bottom + 1 > limits.max_rows:
        raise rows_over_limit(filename, sheet, bottom + 1, limits)
    if (bottom + 1) * (right + 1) > limits.max_cells:
        raise area_over_limit(filename, sheet, bottom + 1, right + 1, limits)
    spans = [(s, e) for s, e, r, c in blanks if r > bottom or c > right]
    return cut_spans(xml, spans) if spans else None


#: A package unpacking to at most this many bytes reaches calamine as a stored copy without its
#: merged-cell pass (``without_merge_scan``). The copy is held whole, here and in calamine, where
#: calamine would otherwise stream each sheet out of the deflated file: a larger package (a
#: rare, honest giant; hostile ones are refused above) is read as it came.
STORED_COPY_MAX_BYTES = 32_000_000


def prepare_xlsx(pkg: Package, filename: str, limits: Limits) -> tuple[bytes, Formulas]:
    """Find formulas without values; cut blank tails and far blank cells; bound each sheet's
    area; check every other part. Returns the zip calamine is to read (up to
    ``STORED_COPY_MAX_BYTES``, a stored copy with each sheet ``without_merge_scan``; above, the
    file itself, rewritten only if something was cut), and the formulas found."""
    formulas: Formulas = {}
    replaced: dict[str, bytes] = {}
    sst = _SharedStrings(pkg)
    names = pkg.names
    copy = pkg.unpacked_size <= STORED_COPY_MAX_BYTES
    for sheet, part in _xlsx_sheet_parts(pkg).items():
        if part not in names:
            continue
        xml = original = pkg.read(part)
        if _may_hold_formulas(xml):
            marks = _formulas_without_value(xml)
            if marks:
                formulas[sheet] = marks
        xml = _cut_blank_tail(xml, sst, filename, sheet, limits) or xml
        xml = _bound_area(xml, sst, filename, sheet, limits) or xml
        if copy:
            replaced[part] = without_merge_scan(xml)
        elif xml is not original:
            replaced[part] = xml
    pkg.verify_rest()
    if copy:
        return pkg.rebuild(replaced, stored=True), formulas
    return (pkg.rebuild(replaced) if replaced else pkg.content), formulas
