"""Read a submission's bytes into Tables: xlsx/xlsm/xlsb, xls and ods with python-calamine, CSV.

The format is taken from the content (zip → which spreadsheet by its parts; OLE2 → xls; text →
CSV), not from the file name: schools rename files, and "xls" downloads from some portals are
HTML pages. Every limit of ``Limits`` is enforced here, before anything large is built, so
one hostile or broken upload fails alone with a one-line ``SourceError``.

Rows come back as the sheet shows them: ``rows[i][j]`` is sheet row i+1, column j+1 (nothing
above or left of the data is skipped, so a cell address computed downstream is the real one),
empty cells are None, trailing empty rows and columns are trimmed.

Two xlsx traps need a look at the XML because calamine cannot see them:
- a formula saved without a cached value (openpyxl and some report generators write those)
  reads as an empty cell; such cells come back as ``FormulaWithoutValue`` so parse can reject
  them instead of silently treating them as "no answer";
- a stray blank-but-not-empty cell at row 1,048,576 makes calamine allocate the whole range
  (about 1 GB for 30 columns); trailing rows that hold only blanks are cut from the XML first
  (from an ods's content.xml too, where the same cell after LibreOffice's repeated empty rows
  costs seconds and hundreds of MB).
xls always stores a formula's result, and ods files written by LibreOffice do too.
"""

from __future__ import annotations

import csv
import html
import io
import re
import zipfile
import zlib
from pathlib import PurePath
from typing import cast

from python_calamine import CalamineError, CalamineWorkbook, PasswordError, SheetTypeEnum

from flows.records import Cell, SourceError, Table
from flows.settings import Limits


class FormulaWithoutValue(str):
    """A cell holding a formula whose result was never computed (no cached value).

    A ``str`` (the formula text, "=A2+B2") so it fits ``Cell`` and any code unaware of it sees
    an unreadable text rather than an empty cell; parse checks for this class first.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"FormulaWithoutValue({str.__repr__(self)})"


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
#: Members smaller than this are not checked for their compression ratio: tiny XML parts
#: (styles, a one-cell sheet) legitimately compress a hundredfold.
_RATIO_CHECK_BYTES = 1_000_000


def read_tables(content: bytes, filename: str, limits: Limits) -> list[Table]:
    """Every worksheet of a spreadsheet file (or the one table of a CSV), in workbook order.

    ``filename`` only names the file in messages and gives a CSV its table name; the format is
    detected from ``content``. Raises ``SourceError`` (one line, starting with the file name)
    for an empty, oversized, corrupt, password-protected or non-spreadsheet file, and for a
    sheet with more rows or cells than ``limits`` allow.
    """
    if not content:
        raise SourceError(f"{filename}: the file is empty")
    if len(content) > limits.max_file_bytes:
        raise SourceError(
            f"{filename}: file of {len(content):,} bytes is larger than the limit of "
            f"{limits.max_file_bytes:,}"
        )
    head = content[:8]
    if head.startswith(_ZIP_MAGIC):
        tables = _read_zip(content, filename, limits)
    elif head == _OLE2_MAGIC:
        tables = _read_ole2(content, filename, limits)
    else:
        tables = [_read_text(content, filename, limits)]
    if not any(t.rows for t in tables):
        raise SourceError(f"{filename}: the file holds no data (every sheet is empty)")
    return tables


# --------------------------------------------------------------------------------------------
# Containers


def _read_zip(content: bytes, filename: str, limits: Limits) -> list[Table]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(content))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise SourceError(f"{filename}: damaged file (not a readable zip: {exc})") from None
    with zf:
        total = sum(i.file_size for i in infos)
        if total > limits.max_uncompressed_bytes:
            raise SourceError(
                f"{filename}: unpacks to {total:,} bytes, more than the limit of "
                f"{limits.max_uncompressed_bytes:,}"
            )
        for info in infos:
            if info.flag_bits & 0x1:
                raise SourceError(f"{filename}: the file is password-protected")
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_CHECK_BYTES and ratio > limits.max_compression_ratio:
                raise SourceError(
                    f"{filename}: part {info.filename} is compressed {ratio:.0f}:1, more than "
                    f"the limit of {limits.max_compression_ratio:.0f}:1 (a zip bomb?)"
                )
        names = {i.filename for i in infos}
        formulas: dict[str, dict[tuple[int, int], FormulaWithoutValue]] = {}
        try:
            if "xl/workbook.xml" in names:
                content, formulas = _prepare_xlsx(zf, content, filename, limits)
            elif "xl/workbook.bin" in names:
                pass  # xlsb: binary parts, calamine reads them; formulas keep their results
            elif "mimetype" in names and zf.read("mimetype").strip() == _ODS_MIMETYPE:
                content = _prepare_ods(zf, content, filename, limits)
            elif "mimetype" in names or any(n.startswith(("word/", "ppt/")) for n in names):
                raise SourceError(
                    f"{filename}: not a spreadsheet (an office document of another kind)"
                )
            else:
                raise SourceError(f"{filename}: not a spreadsheet (a zip archive)")
        except (zipfile.BadZipFile, zlib.error, OSError, KeyError, EOFError) as exc:
            raise SourceError(f"{filename}: damaged file ({_one_line(exc)})") from None
    return _read_calamine(content, filename, limits, formulas)


def _read_ole2(content: bytes, filename: str, limits: Limits) -> list[Table]:
    # An encrypted xlsx is an OLE2 container holding an "EncryptedPackage" stream; calamine
    # would call it a broken xls, which sends the officer looking for the wrong problem.
    if "EncryptedPackage".encode("utf-16-le") in content:
        raise SourceError(f"{filename}: the file is password-protected")
    # The workbook stream is "Workbook" (BIFF8) or "Book" (BIFF5); Word and PowerPoint
    # files are OLE2 too, and deserve a clearer message than calamine's.
    if not any(n.encode("utf-16-le") in content for n in ("Workbook", "Book")):
        raise SourceError(f"{filename}: not a spreadsheet (an old Office document of another kind)")
    return _read_calamine(content, filename, limits, {})


def _read_calamine(
    content: bytes,
    filename: str,
    limits: Limits,
    formulas: dict[str, dict[tuple[int, int], FormulaWithoutValue]],
) -> list[Table]:
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(content))
    except PasswordError:
        raise SourceError(f"{filename}: the file is password-protected") from None
    except CalamineError as exc:
        raise SourceError(
            f"{filename}: damaged or unsupported spreadsheet ({_one_line(exc)})"
        ) from None
    except Exception as exc:  # calamine raises plain errors for some damage
        raise SourceError(f"{filename}: cannot read the spreadsheet ({_one_line(exc)})") from None
    tables: list[Table] = []
    cells = 0
    with workbook:
        for meta in workbook.sheets_metadata:
            if meta.typ != SheetTypeEnum.WorkSheet:
                continue  # chart and dialog sheets hold no answers
            try:
                sheet = workbook.get_sheet_by_name(meta.name)
            except PasswordError:
                raise SourceError(f"{filename}: the file is password-protected") from None
            except Exception as exc:  # as above: not every failure is a CalamineError
                raise SourceError(
                    f"{filename}: sheet {meta.name!r} cannot be read ({_one_line(exc)})"
                ) from None
            marks = formulas.get(meta.name, {})
            end = sheet.end
            raw: list[list[Cell]] = []
            if end is not None:
                # Rows are padded from A1 (skip_empty_area=False), so count from there; the
                # limit is per file, as is every limit.
                cells += (end[0] + 1) * (end[1] + 1)
                if cells > limits.max_cells:
                    raise SourceError(
                        f"{filename}: more than the limit of {limits.max_cells:,} cells (reached "
                        f"in sheet {meta.name!r}, which ends at {_ref(end[0], end[1])})"
                    )
                # calamine's row lists are fresh and ours to edit in place; only the element
                # type differs (Cell also allows None, which _tidy writes).
                raw = cast("list[list[Cell]]", sheet.to_python(skip_empty_area=False))
            _mark_formulas(raw, marks)
            rows = _tidy(raw)
            _check_rows(rows, filename, meta.name, limits)
            tables.append(Table(meta.name, rows))
    return tables


def _mark_formulas(
    rows: list[list[Cell]], marks: dict[tuple[int, int], FormulaWithoutValue]
) -> None:
    for (r, c), formula in marks.items():
        # calamine may not extend its range to a cell it read as empty; grow to reach it.
        while len(rows) <= r:
            rows.append([])
        row = rows[r]
        if len(row) <= c:
            row.extend([None] * (c + 1 - len(row)))
        if row[c] is None or row[c] == "":
            row[c] = formula


def _tidy(rows: list[list[Cell]]) -> list[list[Cell]]:
    """Blank cells to None; trailing blank rows and columns dropped; rows of equal width."""
    width = 0
    last = -1
    for i, row in enumerate(rows):
        # One comprehension per row is about twice as fast as assigning cell by cell; the
        # class test leaves FormulaWithoutValue (a str subclass) alone.
        row = rows[i] = [None if (v.__class__ is str and not v.strip()) else v for v in row]
        j = len(row)
        while j and row[j - 1] is None:
            j -= 1
        if j:
            last = i
            width = max(width, j)
    out = rows[: last + 1]
    for i, row in enumerate(out):
        if len(row) > width:
            out[i] = row[:width]
        elif len(row) < width:
            row.extend([None] * (width - len(row)))
    return out


def _check_rows(rows: list[list[Cell]], filename: str, sheet: str, limits: Limits) -> None:
    if len(rows) > limits.max_rows:
        raise SourceError(
            f"{filename}: sheet {sheet!r} has data down to row {len(rows):,}, more than the "
            f"limit of {limits.max_rows:,} rows"
        )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _ref(row: int, col: int) -> str:
    """0-based (row, col) as an A1 address."""
    letters = ""
    n = col + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{row + 1}"


# --------------------------------------------------------------------------------------------
# xlsx: formulas without cached values, trailing blank rows

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
_REF = re.compile(rb"([A-Z]{1,3})(\d+)")
#: Trailing rows are looked at only past this gap between the last two row numbers, so
#: ordinary sheets (rows written densely) never pay for the row-by-row look.
_SPARSE_GAP = 1000


def _attrs(tag: bytes) -> dict[str, bytes]:
    # Keyed by local name: the r: prefix of r:id is not fixed by the standard.
    return {k.decode().rsplit(":", 1)[-1]: d or s for k, d, s in _ATTR.findall(tag)}


def _xlsx_sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name → worksheet part path, from workbook.xml and its relationships."""
    targets: dict[bytes, str] = {}
    try:
        rels = zf.read("xl/_rels/workbook.xml.rels")
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
    for tag in _SHEET_TAG.findall(zf.read("xl/workbook.xml")):
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
    for ch in m.group(1):
        col = col * 26 + ch - 64
    return int(m.group(2)) - 1, col - 1


#: Every formula element, prefixed or not, contains "f" followed by ">", "/" or a space. A
#: pattern starting with a literal runs at memchr speed (~15 ms for a 20,000-row sheet, ten
#: times faster than _HAS_FORMULA); its false positives ("of " in a text) only cost the
#: exact scan.
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
    """Which shared-string indexes are blank; parsed only when trailing rows need a look."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self._zf = zf
        self._blank: list[bool] | None = None

    def blank(self, index: int) -> bool:
        if self._blank is None:
            try:
                xml = self._zf.read("xl/sharedStrings.xml")
            except KeyError:
                xml = b""
            self._blank = [
                not html.unescape(
                    b"".join(_TEXT.findall(m.group(1) or b"")).decode("utf-8", "replace")
                ).strip()
                for m in _SI.finditer(xml)
            ]
        return index >= len(self._blank) or self._blank[index]


def _row_is_blank(segment: bytes, sst: _SharedStrings) -> bool:
    if _HAS_FORMULA.search(segment):
        return False
    for m in _CELL.finditer(segment):
        inner = m.group(2)
        if not inner:
            continue
        cell_type = _attrs(m.group(1) or b"").get("t", b"n")
        if cell_type == b"inlineStr":
            text = html.unescape(b"".join(_TEXT.findall(inner)).decode("utf-8", "replace"))
            if text.strip():
                return False
            continue
        v = _VALUE.search(inner)
        value = (v.group(1) or b"").strip() if v else b""
        if not value:
            continue
        if cell_type == b"s":
            if not value.isdigit() or not sst.blank(int(value)):
                return False
            continue
        if html.unescape(value.decode("utf-8", "replace")).strip():
            return False
    return True


def _row_number(xml: bytes, at: int) -> int | None:
    """The r attribute of the <row> element found at ``at`` (an rfind result, -1 for none)."""
    if at < 0:
        return None
    m = _ROW_OPEN.match(xml, xml.rfind(b"<", 0, at + 1))
    r = _attrs(m.group(1)).get("r") if m else None
    return int(r) if r is not None and r.isdigit() else None


def _cut_blank_tail(
    xml: bytes, sst: _SharedStrings, filename: str, sheet: str, limits: Limits
) -> bytes | None:
    """The sheet XML without its trailing blank rows, or None when there is nothing to cut.

    Only looked at row by row when the last row lies far below the one before it (a sparse
    tail: the 1,048,576-row trap) or beyond the row limit; otherwise this costs two rfind
    calls from the end of the part. (" " after "row" keeps <rowBreaks> out.)
    """
    last_open = max(xml.rfind(b"<row "), xml.rfind(b":row "))
    last = _row_number(xml, last_open)
    if last is None:
        return None  # rows without numbers: calamine numbers them densely, nothing sparse
    prev_open = max(xml.rfind(b"<row ", 0, last_open), xml.rfind(b":row ", 0, last_open))
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
        raise SourceError(
            f"{filename}: sheet {sheet!r} has data down to row {rows[keep - 1][1]:,}, more than "
            f"the limit of {limits.max_rows:,} rows"
        )
    if keep == len(rows):
        return None
    cut = rows[keep][0]
    return xml[:cut] + xml[close.start() :]


def _prepare_xlsx(
    zf: zipfile.ZipFile, content: bytes, filename: str, limits: Limits
) -> tuple[bytes, dict[str, dict[tuple[int, int], FormulaWithoutValue]]]:
    """Find formulas without values; cut blank tails (rewriting the zip only if one was cut)."""
    formulas: dict[str, dict[tuple[int, int], FormulaWithoutValue]] = {}
    replaced: dict[str, bytes] = {}
    sst = _SharedStrings(zf)
    names = set(zf.namelist())
    for sheet, part in _xlsx_sheet_parts(zf).items():
        if part not in names:
            continue
        xml = zf.read(part)
        if _may_hold_formulas(xml):
            marks = _formulas_without_value(xml)
            if marks:
                formulas[sheet] = marks
        cut = _cut_blank_tail(xml, sst, filename, sheet, limits)
        if cut is not None:
            replaced[part] = cut
    return (_rebuild_zip(zf, replaced) if replaced else content), formulas


def _rebuild_zip(zf: zipfile.ZipFile, replaced: dict[str, bytes]) -> bytes:
    """The same zip with some parts replaced (each part keeps its ZipInfo, so an ods
    mimetype stays first and stored)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as rebuilt:
        for info in zf.infolist():
            data = replaced.get(info.filename)
            rebuilt.writestr(info, data if data is not None else zf.read(info.filename))
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# ods: trailing blank rows
#
# LibreOffice writes every sheet down to row 1,048,576 as repeated empty rows, which calamine
# skips cheaply. But one blank-but-not-empty cell at the bottom (a space) after such a run makes
# calamine expand the run: seconds and hundreds of MB for a few rows. Trailing rows without a
# value are removed from content.xml first, when a long repeated run is present at all.

_ODS_LONG_REPEAT = re.compile(rb'table:number-rows-repeated="\d{4,}"')
_ODS_TABLE = re.compile(rb"<table:table\s[^>]*>")
_ODS_ROW = re.compile(rb"<table:table-row(?:\s[^>]*?)?(/?)>")
_ODS_ROW_CLOSE = b"</table:table-row>"
_ODS_REPEAT = re.compile(rb'table:number-rows-repeated="(\d+)"')
_ODS_VALUE = re.compile(rb"office:(?:value|date-value|time-value|boolean-value)=|table:formula=")
_TAG = re.compile(rb"<[^>]*>")


def _ods_row_blank(row: bytes) -> bool:
    if _ODS_VALUE.search(row):
        return False
    # Text lives in <text:p>; <text:s/> is a space, so stripping every tag leaves the text.
    return not html.unescape(_TAG.sub(b"", row).decode("utf-8", "replace")).strip()


def _prepare_ods(zf: zipfile.ZipFile, content: bytes, filename: str, limits: Limits) -> bytes:
    xml = zf.read("content.xml")
    if not _ODS_LONG_REPEAT.search(xml):
        return content
    starts = [m.start() for m in _ODS_TABLE.finditer(xml)] + [len(xml)]
    cuts: list[tuple[int, int]] = []
    for t, t_start in enumerate(starts[:-1]):
        name_m = re.search(rb'table:name="([^"]*)"', xml[t_start : t_start + 2000])
        sheet = html.unescape(name_m.group(1).decode("utf-8", "replace")) if name_m else "?"
        rows: list[tuple[int, int, int]] = []  # (start, end, repeat)
        pos = t_start
        while True:
            m = _ODS_ROW.search(xml, pos, starts[t + 1])
            if m is None:
                break
            end = m.end() if m.group(1) else xml.find(_ODS_ROW_CLOSE, m.end()) + len(_ODS_ROW_CLOSE)
            if end < m.end():
                break  # unclosed row: damaged, let calamine report it
            repeat = _ODS_REPEAT.search(m.group(0))
            rows.append((m.start(), end, int(repeat.group(1)) if repeat else 1))
            pos = end
        keep = len(rows)
        while keep and _ods_row_blank(xml[rows[keep - 1][0] : rows[keep - 1][1]]):
            keep -= 1
        height = sum(r[2] for r in rows[:keep])
        if height > limits.max_rows:
            raise SourceError(
                f"{filename}: sheet {sheet!r} has data down to row {height:,}, more than the "
                f"limit of {limits.max_rows:,} rows"
            )
        tail = rows[keep:]
        # Rows of empty cells (LibreOffice's padding) cost calamine nothing: cut only when
        # some trailing row holds blank text, which is what makes calamine expand the run.
        if any(b"<text:" in xml[start:end] for start, end, _ in tail):
            cuts.extend((start, end) for start, end, _ in tail)
    if not cuts:
        return content
    parts, pos = [], 0
    for start, end in cuts:
        parts.append(xml[pos:start])
        pos = end
    parts.append(xml[pos:])
    return _rebuild_zip(zf, {"content.xml": b"".join(parts)})


# --------------------------------------------------------------------------------------------
# Text: CSV


def _decode(content: bytes, filename: str) -> str:
    if content.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    elif content.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    else:
        head = content[:4096].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html", b"<table")) or b"<html" in head[:512]:
            raise SourceError(
                f"{filename}: a web page (HTML) saved with a spreadsheet name; open it in Excel "
                f"and save it as .xlsx"
            )
        if head.startswith(b"%pdf"):
            raise SourceError(f"{filename}: not a spreadsheet (a PDF document)")
        if b"\x00" in content[:8192]:
            raise SourceError(f"{filename}: not a spreadsheet (unrecognised binary content)")
        encoding = "utf-8"
    try:
        return content.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{filename}: text that is not {encoding.upper()} (byte {exc.start:,}); save it as "
            f"'CSV UTF-8'"
        ) from None


def _sniff_delimiter(text: str) -> str:
    """Comma, semicolon or tab: the one splitting the first lines into the most consistent
    number (more than one) of fields. Excel in a Vietnamese locale writes semicolons."""
    sample = text[:65536].splitlines()[:50]
    sample = [line for line in sample if line.strip()]
    best, best_key = ",", (False, 0.0, 0)
    for delimiter in (",", ";", "\t"):
        try:
            counts = [len(r) for r in csv.reader(sample, delimiter=delimiter)]
        except csv.Error:
            continue
        if not counts:
            continue
        mode = max(set(counts), key=counts.count)
        key = (mode > 1, counts.count(mode) / len(counts), mode)
        if key > best_key:
            best, best_key = delimiter, key
    return best


def _read_text(content: bytes, filename: str, limits: Limits) -> Table:
    text = _decode(content, filename)
    if not text.strip():
        raise SourceError(f"{filename}: the file is empty")
    if "\x00" in text:
        raise SourceError(f"{filename}: not a spreadsheet (unrecognised binary content)")
    delimiter = _sniff_delimiter(text)
    name = PurePath(filename).stem or filename
    try:
        # Memory is bounded by max_file_bytes already; limits are checked on the real rows.
        rows: list[list[Cell]] = [
            list(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        ]
    except csv.Error as exc:
        raise SourceError(f"{filename}: not readable as CSV ({exc})") from None
    tidy = _tidy(rows)
    _check_rows(tidy, filename, name, limits)
    if len(tidy) * (len(tidy[0]) if tidy else 0) > limits.max_cells:
        raise SourceError(f"{filename}: more than the limit of {limits.max_cells:,} cells")
    return Table(name, tidy)
