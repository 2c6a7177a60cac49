"""Read a submission's bytes into Tables: xlsx/xlsm/xlsb, xls and ods with python-calamine, CSV.

The format is taken from the content (zip → which spreadsheet by its parts; OLE2 → xls; text →
CSV), not from the file name: schools rename files, and "xls" downloads from some portals are
HTML pages. Every limit of ``Limits`` is enforced here, before anything large is built, so
one hostile or broken upload fails alone with a one-line ``SourceError`` that names the file
and, for a limit, the setting (``limits.max_cells``) an administrator would raise.

Rows come back as the sheet shows them: ``rows[i][j]`` is sheet row i+1, column j+1 (nothing
above or left of the data is skipped, so a cell address computed downstream is the real one),
empty cells are None, trailing empty rows and columns are trimmed.

Hostile or broken containers are refused before calamine sees them (``_Package``): encrypted
members, more than ``max_uncompressed_bytes`` declared, a part compressed beyond
``max_compression_ratio``, a part whose data unpacks to more (or less) than its header declares
(every member is inflated here, in bounded chunks, and checked against its size and CRC, so
calamine only ever inflates data proven to match), and any XML part carrying a DTD (entity
declarations: "billion laughs", external entities; spreadsheet programs never write one).

calamine allocates a sheet as one dense rectangle from A1 to its furthest cell, so a few cells
far apart cost gigabytes. Before calamine reads a sheet, the rectangle its cells span is bounded
by ``max_rows`` and ``max_cells`` (``_bound_area``, and the row walk of ods), and blank cells far
below or to the right of the data (a space at XFD1, a blank shared string at row 1,048,576) are
cut from the XML instead of being allowed to stretch it.

Two xlsx traps need a look at the XML because calamine cannot see them:
- a formula saved without a cached value (openpyxl and some report generators write those)
  reads as an empty cell; such cells come back as ``FormulaWithoutValue`` so parse can reject
  them instead of silently treating them as "no answer" (ods cells with a formula and no value
  too; xls always stores a formula's result);
- the blank tails above (about 1 GB for 30 columns if left to calamine).

Text files are CSV in UTF-8 (with or without BOM), UTF-16 (Excel's "Unicode text", tab
separated, with or without BOM) or Windows-1258 (Excel's "CSV" on a Vietnamese Windows, whose
tone marks are combining characters: decoded text is composed to NFC, as UTF-8 would have
stored it). Anything else fails with the reason: a web page, a PDF, an image, damaged UTF-8.
"""

from __future__ import annotations

import csv
import functools
import html
import io
import re
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import PurePath
from typing import cast

from python_calamine import CalamineError, CalamineWorkbook, PasswordError, SheetTypeEnum

from flows.settings import Limits
from schemas.records import Cell, SourceError, Table, column_letter


class FormulaWithoutValue(str):
    """A cell holding a formula whose result was never computed (no cached value).

    A ``str`` (the formula text, "=A2+B2") so it fits ``Cell`` and any code unaware of it sees
    an unreadable text rather than an empty cell; parse checks for this class first.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"FormulaWithoutValue({str.__repr__(self)})"


#: Formula cells without a value, per sheet name: (row, col) 0-based → the formula.
Formulas = dict[str, dict[tuple[int, int], FormulaWithoutValue]]

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: The smallest zip there is (an empty archive's end record alone); any workbook is larger.
_MIN_ZIP_BYTES = 22
_ZIP_SUFFIXES = (".xlsx", ".xlsm", ".ods")
_ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
#: Members smaller than this are not checked for their compression ratio: tiny XML parts
#: (styles, a one-cell sheet) legitimately compress a hundredfold.
_RATIO_CHECK_BYTES = 1_000_000
#: Columns beyond this are looked at cell by cell before calamine reads an xlsx sheet (far
#: wider than any questionnaire; Excel itself stops at 16,384).
_WIDE_SHEET = 1024


def read_tables(content: bytes, filename: str, limits: Limits) -> list[Table]:
    """Every worksheet of a spreadsheet file (or the one table of a CSV), in workbook order.

    ``filename`` only names the file in messages and gives a CSV its table name; the format is
    detected from ``content``. Raises ``SourceError`` (one line, starting with the file name)
    for an empty, oversized, corrupt, password-protected or non-spreadsheet file, for a zip
    bomb or an XML part with a DTD, and for a sheet with more rows or cells than ``limits``
    allow (the message names the setting).
    """
    if not content:
        raise SourceError(f"{filename}: the file is empty")
    if len(content) > limits.max_file_bytes:
        raise SourceError(
            f"{filename}: file of {len(content):,} bytes is larger than the limit of "
            f"{limits.max_file_bytes:,}{_setting('max_file_bytes')}"
        )
    head = content[:8]
    if head.startswith(_ZIP_MAGIC):
        tables = _read_zip(content, filename, limits)
    elif head == _OLE2_MAGIC:
        tables = _read_ole2(content, filename, limits)
    elif any(magic.startswith(content) for magic in (*_ZIP_MAGIC, _OLE2_MAGIC)):
        raise _cut_off(content, filename)  # the first bytes of a workbook's signature, no more
    else:
        tables = [_read_text(content, filename, limits)]
    if not any(t.rows for t in tables):
        raise SourceError(f"{filename}: the file holds no data (every sheet is empty)")
    return tables


def _cut_off(content: bytes, filename: str) -> SourceError:
    size = f"{len(content):,} byte" + ("s" if len(content) > 1 else "")
    return SourceError(f"{filename}: damaged file (only {size}: cut off?)")


def _setting(name: str) -> str:
    """The setting a limit message names, so an administrator knows what to raise."""
    return f" (limits.{name})"


# --------------------------------------------------------------------------------------------
# Containers

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_CHUNK = 1 << 20
#: Bytes that may come before the first "<" of an XML part: whitespace (UTF-8 or UTF-16) and
#: the byte-order marks.
_XML_LEADING = b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"
#: What may follow "<!" in a part written by a spreadsheet program: a comment or CDATA.
#: Anything else (DOCTYPE, ENTITY, ELEMENT…) is a DTD; also looked for in UTF-16.
_DTD_UTF16 = tuple(s.encode(enc) for s in ("<!D", "<!E") for enc in ("utf-16-le", "utf-16-be"))


class _Package:
    """A zip container whose every member is inflated here at most once, in bounded chunks.

    The central directory is checked when opening (encryption, declared total size, each large
    part's compression ratio, duplicate names, compression methods). Reading a member inflates
    its raw data with zlib, never producing more than the size its header declares, and checks
    the length and CRC of what came out; XML members are refused if they carry a DTD. Members
    no one asked for are run through the same checks by ``verify_rest`` before calamine opens
    the file, so calamine only ever inflates data proven to match its header.
    """

    def __init__(self, content: bytes, filename: str, limits: Limits) -> None:
        self.content = content
        self.filename = filename
        try:
            self._zf = zipfile.ZipFile(io.BytesIO(content))
            infos = self._zf.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
            raise SourceError(f"{filename}: damaged file (not a readable zip: {exc})") from None
        self._infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename in self._infos:
                # Two readers could pick different copies: the checked one and another.
                raise SourceError(f"{filename}: damaged file (two parts named {info.filename})")
            self._infos[info.filename] = info
        self._check_directory(limits)
        self._unread = set(self._infos)

    def _check_directory(self, limits: Limits) -> None:
        filename = self.filename
        infos = list(self._infos.values())
        if any(info.flag_bits & 0x1 for info in infos):
            raise SourceError(f"{filename}: the file is password-protected")
        total = sum(i.file_size for i in infos)
        if total > limits.max_uncompressed_bytes:
            raise SourceError(
                f"{filename}: unpacks to {total:,} bytes, more than the limit of "
                f"{limits.max_uncompressed_bytes:,}{_setting('max_uncompressed_bytes')}"
            )
        for info in infos:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_CHECK_BYTES and ratio > limits.max_compression_ratio:
                raise SourceError(
                    f"{filename}: part {info.filename} is compressed {ratio:.0f}:1, more than "
                    f"the limit of {limits.max_compression_ratio:.0f}:1 (a zip bomb?)"
                    f"{_setting('max_compression_ratio')}"
                )
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise SourceError(
                    f"{filename}: damaged or unsupported file (part {info.filename} uses "
                    f"compression method {info.compress_type}, which spreadsheet programs "
                    f"do not write)"
                )

    @property
    def names(self) -> set[str]:
        return set(self._infos)

    def close(self) -> None:
        self._zf.close()

    def read(self, name: str) -> bytes:
        """A member's bytes, checked (KeyError when there is no such member)."""
        info = self._infos[name]
        data = b"".join(self._chunks(info))
        self._unread.discard(name)
        return data

    def verify_rest(self) -> None:
        """Run every member not read yet through the checks, keeping nothing in memory."""
        for name in sorted(self._unread):
            for _ in self._chunks(self._infos[name]):
                pass
        self._unread.clear()

    def rebuild(self, replaced: dict[str, bytes]) -> bytes:
        """The same zip with some parts replaced (each part keeps its ZipInfo, so an ods
        mimetype stays first and stored)."""
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as rebuilt:
            for info in self._infos.values():
                data = replaced.get(info.filename)
                rebuilt.writestr(info, data if data is not None else self.read(info.filename))
        return out.getvalue()

    def _damaged(self, info: zipfile.ZipInfo, what: str) -> SourceError:
        return SourceError(f"{self.filename}: damaged file (part {info.filename} {what})")

    def _raw(self, info: zipfile.ZipInfo) -> memoryview:
        """The member's compressed bytes, located through its local header."""
        at = info.header_offset
        try:
            sig, *_, name_len, extra_len = _LOCAL_HEADER.unpack_from(self.content, at)
        except struct.error:
            raise self._damaged(info, "is cut off") from None
        if sig != b"PK\x03\x04":
            raise self._damaged(info, "has no local header")
        start = at + _LOCAL_HEADER.size + name_len + extra_len
        raw = memoryview(self.content)[start : start + info.compress_size]
        if len(raw) < info.compress_size:
            raise self._damaged(info, "is cut off")
        return raw

    def _chunks(self, info: zipfile.ZipInfo) -> Iterator[bytes]:
        raw = self._raw(info)
        declared = info.file_size
        crc = 0
        produced = 0
        scan: _DtdScan | None = None
        undecided = True  # markup or not: told by the first byte that is not whitespace
        if info.compress_type == zipfile.ZIP_STORED:
            if len(raw) != declared:
                raise self._damaged(info, "does not match its declared size")
            pieces: Iterator[bytes] = (
                bytes(raw[i : i + _CHUNK]) for i in range(0, len(raw), _CHUNK)
            )
        else:
            pieces = self._inflate(info, raw)
        for piece in pieces:
            produced += len(piece)
            if produced > declared:
                # A damaged file far more often than a zip bomb (one changed byte will do);
                # either way nothing past the declared size is ever made.
                raise self._damaged(
                    info, f"unpacks to more than the {declared:,} bytes its header declares"
                )
            crc = zlib.crc32(piece, crc)
            if undecided and (head := piece.lstrip(_XML_LEADING)):
                # Decided by content, not by name (a sheet part may be named anything), and
                # not by the first bytes alone (megabytes of spaces may come first).
                undecided = False
                if head.startswith(b"<"):
                    scan = _DtdScan(self.filename, info.filename, piece)
            if scan is not None:
                scan.feed(piece)
            yield piece
        if produced != declared:
            raise self._damaged(info, "is shorter than its declared size")
        if crc != info.CRC:
            raise self._damaged(info, "fails its checksum")

    def _inflate(self, info: zipfile.ZipInfo, raw: memoryview) -> Iterator[bytes]:
        """Inflate in chunks of at most _CHUNK bytes out, one past the declared size at most,
        so data that lies about its size is caught after one chunk, not after gigabytes."""
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        pos = 0
        limit = info.file_size + 1
        produced = 0
        try:
            while not inflater.eof and produced < limit:
                data: bytes | memoryview
                if inflater.unconsumed_tail:
                    data = inflater.unconsumed_tail
                elif pos < len(raw):
                    data = raw[pos : pos + _CHUNK]
                    pos += _CHUNK
                else:
                    break
                out = inflater.decompress(data, min(_CHUNK, limit - produced))
                produced += len(out)
                if out:
                    yield out
        except zlib.error:
            raise self._damaged(info, "cannot be unpacked") from None
        if not inflater.eof and produced <= info.file_size:
            raise self._damaged(info, "is cut off")


class _DtdScan:
    """Refuses an XML part as soon as a DTD appears in it, across chunk boundaries.

    Looks for "!" (memchr speed: rare in XML, unlike "<") and then at its neighbours, so a
    60 MB sheet costs milliseconds. In a UTF-16 part (no spreadsheet program writes one, but
    XML allows it) the UTF-16 forms of "<!D" and "<!E" are looked for instead.
    """

    def __init__(self, filename: str, part: str, first: bytes) -> None:
        self.filename = filename
        self.part = part
        self._utf16 = b"\x00" in first[:64]
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        # The seam (end of the last chunk + start of this one), then the chunk itself.
        for data in (self._tail + chunk[:16], chunk):
            if self._utf16:
                if any(s in data for s in _DTD_UTF16):
                    raise self._refuse()
            else:
                self._scan(data)
        self._tail = chunk[-16:]

    def _scan(self, data: bytes) -> None:
        at = data.find(b"!")
        while at >= 0:
            if at and data[at - 1] == 0x3C:  # "<!"
                follow = data[at + 1 : at + 8]
                if not follow.startswith((b"--", b"[CDATA[")):
                    cut = len(follow) < 7 and (
                        b"--".startswith(follow) or b"[CDATA[".startswith(follow)
                    )
                    if not cut:  # (if cut by the chunk's end, the seam decides)
                        raise self._refuse()
            at = data.find(b"!", at + 1)

    def _refuse(self) -> SourceError:
        return SourceError(
            f"{self.filename}: part {self.part} declares a DTD (entity declarations, which "
            f"spreadsheet programs never write: refused as a possible XML bomb)"
        )


def _read_zip(content: bytes, filename: str, limits: Limits) -> list[Table]:
    pkg = _Package(content, filename, limits)
    names = pkg.names
    formulas: Formulas = {}
    try:
        if "xl/workbook.xml" in names:
            content, formulas = _prepare_xlsx(pkg, filename, limits)
        elif "xl/workbook.bin" in names:
            pkg.verify_rest()  # xlsb: binary parts, calamine reads them; formulas keep results
        elif "mimetype" in names and pkg.read("mimetype").strip() == _ODS_MIMETYPE:
            content, formulas = _prepare_ods(pkg, filename, limits)
        elif "mimetype" in names or any(n.startswith(("word/", "ppt/")) for n in names):
            raise SourceError(f"{filename}: not a spreadsheet (an office document of another kind)")
        else:
            raise SourceError(f"{filename}: not a spreadsheet (a zip archive)")
    except (zipfile.BadZipFile, zlib.error, OSError, KeyError, EOFError) as exc:
        raise SourceError(f"{filename}: damaged file ({_one_line(exc)})") from None
    finally:
        pkg.close()
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
    if _xls_encrypted(content):
        raise SourceError(f"{filename}: the file is password-protected")
    return _read_calamine(content, filename, limits, {})


#: BIFF8 and BIFF5 BOF records of the workbook globals (record type, length, version, type).
_XLS_BOF = (b"\x09\x08\x10\x00\x00\x06\x05\x00", b"\x09\x08\x08\x00\x00\x05\x05\x00")


def _xls_encrypted(content: bytes) -> bool:
    """Whether the workbook stream starts with a FILEPASS record (0x002F), which [MS-XLS]
    requires right after the globals' BOF of an encrypted xls; calamine only says "Cannot
    detect file format" for those."""
    for bof in _XLS_BOF:
        at = content.find(bof)
        if at >= 0:
            length = int.from_bytes(content[at + 2 : at + 4], "little")
            return content[at + 4 + length : at + 6 + length] == b"\x2f\x00"
    return False


def _read_calamine(
    content: bytes, filename: str, limits: Limits, formulas: Formulas
) -> list[Table]:
    try:
        return _read_sheets(content, filename, limits, formulas)
    except BaseException as exc:
        # pyo3 turns a panic inside calamine (seen on damaged xls) into PanicException, a
        # BaseException that "except Exception" in the flow would let through: one file must
        # still fail alone, as a SourceError.
        if type(exc).__name__ != "PanicException":
            raise
        raise SourceError(
            f"{filename}: damaged or unsupported spreadsheet (the reader failed: {_one_line(exc)})"
        ) from None


def _read_sheets(content: bytes, filename: str, limits: Limits, formulas: Formulas) -> list[Table]:
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
                        f"{_setting('max_cells')}"
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


def _rows_over_limit(filename: str, sheet: str, rows: int, limits: Limits) -> SourceError:
    return SourceError(
        f"{filename}: sheet {sheet!r} has data down to row {rows:,}, more than the limit of "
        f"{limits.max_rows:,} rows{_setting('max_rows')}"
    )


def _area_over_limit(
    filename: str, sheet: str, height: int, width: int, limits: Limits
) -> SourceError:
    return SourceError(
        f"{filename}: sheet {sheet!r} spans {height:,} rows × {width:,} columns (to "
        f"{_ref(height - 1, width - 1)}), more than the limit of {limits.max_cells:,} cells"
        f"{_setting('max_cells')}"
    )


def _check_rows(rows: list[list[Cell]], filename: str, sheet: str, limits: Limits) -> None:
    if len(rows) > limits.max_rows:
        raise _rows_over_limit(filename, sheet, len(rows), limits)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _ref(row: int, col: int) -> str:
    """0-based (row, col) as an A1 address."""
    return f"{column_letter(col + 1)}{row + 1}"


# --------------------------------------------------------------------------------------------
# xlsx: formulas without cached values, blank tails, the area calamine will allocate

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


def _xlsx_sheet_parts(pkg: _Package) -> dict[str, str]:
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
    """Which shared-string indexes are blank; parsed only when trailing cells need a look."""

    def __init__(self, pkg: _Package) -> None:
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
        raise _rows_over_limit(filename, sheet, rows[keep - 1][1], limits)
    if keep == len(rows):
        return None
    cut = rows[keep][0]
    return xml[:cut] + xml[close.start() :]


# The area check. calamine places a cell by its r attribute (or, without one, next to the
# previous cell of its row), whatever the order of the elements, reading "xfd3", "A0003" and
# "AAAA3" as well as "XFD3", and then allocates every cell of the rectangle from A1 to the
# furthest one: a single <c r="B3000000000"> makes it ask for 192 GB and abort the whole
# process. Before calamine reads a sheet, one regex search settles the common case (about
# 0.3 s for a 60 MB sheet part of 1.2 million cells, a tenth of reading it): with the last
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
    return _cut_spans(xml, spans) if spans else None


_ROW_OR_CELL = re.compile(
    rb"<(?:[\w.-]+:)?row(?=[\s/>])(?P<row>[^>]*)>"
    rb"|<(?:[\w.-]+:)?c(?=[\s/>])(?P<attrs>[^>]*?)(?:/>|>(?P<inner>.*?)</(?:[\w.-]+:)?c>)",
    re.DOTALL,
)


def _exact_area(
    xml: bytes, sst: _SharedStrings, filename: str, sheet: str, limits: Limits
) -> bytes | None:
    """Every row and cell placed as calamine places them: the rectangle of the cells holding
    data is checked against the limits, and blank cells outside it are cut. Python per cell
    (seconds for a large sheet), so only for sheets the fast check could not settle."""
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
        raise _rows_over_limit(filename, sheet, bottom + 1, limits)
    if (bottom + 1) * (right + 1) > limits.max_cells:
        raise _area_over_limit(filename, sheet, bottom + 1, right + 1, limits)
    spans = [(s, e) for s, e, r, c in blanks if r > bottom or c > right]
    return _cut_spans(xml, spans) if spans else None


def _cut_spans(xml: bytes, spans: list[tuple[int, int]]) -> bytes:
    parts, pos = [], 0
    for start, end in sorted(spans):
        parts.append(xml[pos:start])
        pos = end
    parts.append(xml[pos:])
    return b"".join(parts)


def _prepare_xlsx(pkg: _Package, filename: str, limits: Limits) -> tuple[bytes, Formulas]:
    """Find formulas without values; cut blank tails and far blank cells; bound each sheet's
    area; check every other part. The zip is rewritten only if something was cut."""
    formulas: Formulas = {}
    replaced: dict[str, bytes] = {}
    sst = _SharedStrings(pkg)
    names = pkg.names
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
        if xml is not original:
            replaced[part] = xml
    pkg.verify_rest()
    return (pkg.rebuild(replaced) if replaced else pkg.content), formulas


# --------------------------------------------------------------------------------------------
# ods: the area calamine will allocate, trailing blanks, formulas without values
#
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
#: Without its "table:number-" start: a rarer literal prefix makes this three times faster.
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


def _prepare_ods(pkg: _Package, filename: str, limits: Limits) -> tuple[bytes, Formulas]:
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
    for t, t_start in enumerate(starts[:-1]):
        name_m = re.search(rb'table:name="([^"]*)"', xml[t_start : t_start + 2000])
        sheet = html.unescape(name_m.group(1).decode("utf-8", "replace")) if name_m else "?"
        rows = _ods_rows(xml, t_start, starts[t + 1])
        covered = xml.find(b"<table:covered-table-cell", t_start, starts[t + 1]) >= 0
        extents = [_ods_row_extent(xml, start, end, covered) for start, end, _ in rows]
        keep = len(rows)
        while keep and extents[keep - 1][0] == 0:
            keep -= 1
        height = sum(r[2] for r in rows[:keep])
        if height > limits.max_rows:
            raise _rows_over_limit(filename, sheet, height, limits)
        width = max((e for e, _ in extents[:keep]), default=0)
        if height * width > limits.max_cells:
            raise _area_over_limit(filename, sheet, height, width, limits)
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
    content = pkg.rebuild({"content.xml": _cut_spans(xml, cuts)}) if cuts else pkg.content
    return content, formulas


# --------------------------------------------------------------------------------------------
# Text: CSV

#: Leading bytes of files that are not spreadsheets, so the message says what the file is.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x1f\x8b\x08", "a gzip archive"),
    (b"{\\rtf", "an RTF document"),
)
#: ISO media (HEIC photos from phones, MP4): "ftyp" at offset 4.
_FTYP = b"ftyp"
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
#: C0 controls that never occur in text (tab, newlines and the DOS end-of-file mark do).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x19\x1b-\x1f\x7f]")
_HTML_START = ("<!doctype html", "<html", "<head", "<body", "<table", "<meta", "<script", "<div")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _not_a_spreadsheet(filename: str, what: str) -> SourceError:
    return SourceError(f"{filename}: not a spreadsheet ({what})")


def _decode(content: bytes, filename: str) -> str:
    """The text of a CSV upload: UTF-8, UTF-16 or Windows-1258, else a SourceError saying what
    the file is (an image, a PDF, a web page, damaged UTF-8, an unknown encoding)."""
    for signature, what in _SIGNATURES:
        if content.startswith(signature):
            raise _not_a_spreadsheet(filename, what)
    if content[4:8] == _FTYP:
        raise _not_a_spreadsheet(filename, "a photo or video (HEIC/MP4)")
    if content.startswith(b"RIFF") and content[8:12] == b"WEBP":
        raise _not_a_spreadsheet(filename, "a WebP image")
    text = _decode_text(content, filename)
    if _CONTROL.search(text, 0, 65536):
        raise _not_a_spreadsheet(filename, "unrecognised binary content")
    _refuse_markup(text, filename)
    return text


def _decode_text(content: bytes, filename: str) -> str:
    if content.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    elif content.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        encoding = "utf-32"
    elif content.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"  # Excel's "Unicode text": UTF-16 with a BOM, tab-separated
    elif b"\x00" in content[:8192]:
        found = _utf16_without_bom(content)
        if found is None:
            raise _not_a_spreadsheet(filename, "unrecognised binary content")
        encoding = found
    else:
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError as exc:
            return _decode_legacy(content, filename, exc)
    try:
        return content.decode(encoding)
    except UnicodeDecodeError as exc:
        label = encoding.upper().removesuffix("-SIG").replace("-LE", "").replace("-BE", "")
        raise SourceError(
            f"{filename}: damaged {label} text (byte {exc.start:,}); save it again as 'CSV UTF-8'"
        ) from None


def _utf16_without_bom(content: bytes) -> str | None:
    """UTF-16 written without a BOM: mostly ASCII (digits, separators), so one byte of each
    pair is zero, always the same one. None when the zeros fall anywhere (a binary file)."""
    sample = content[: 8192 - 8192 % 2]
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd > 0.3 * pairs and even < 0.02 * pairs:
        return "utf-16-le"
    if even > 0.3 * pairs and odd < 0.02 * pairs:
        return "utf-16-be"
    return None


def _decode_legacy(content: bytes, filename: str, error: UnicodeDecodeError) -> str:
    """Text that is not UTF-8: damaged UTF-8, or Excel's "CSV" from a Vietnamese Windows
    (code page 1258); anything else fails with the byte where UTF-8 stopped."""
    sample = content[:1_000_000]
    valid = len(_UTF8_MULTIBYTE.findall(sample))
    invalid = sample.decode("utf-8", "replace").count("\ufffd")
    if valid > invalid:
        # Mostly well-formed UTF-8 (Windows-1258 text hardly ever forms a valid sequence):
        # a damaged or truncated UTF-8 file, not another encoding.
        raise SourceError(
            f"{filename}: damaged UTF-8 text (byte {error.start:,}); save it again as 'CSV UTF-8'"
        )
    try:
        text = content.decode("cp1258")
    except UnicodeDecodeError:
        raise SourceError(
            f"{filename}: text in an unknown encoding (not UTF-8, UTF-16 or Windows-1258; "
            f"byte {error.start:,}); save it as 'CSV UTF-8'"
        ) from None
    # Windows-1258 can only store most tone marks as combining characters ("ư" + U+0301);
    # composed, the text is what the same file saved as UTF-8 would hold.
    return unicodedata.normalize("NFC", text)


def _refuse_markup(text: str, filename: str) -> None:
    """Web pages (a Drive warning or sign-in page saved as .xlsx, a portal's HTML "xls") and
    Excel 2003 XML are not CSV; say what they are instead of failing on their headers."""
    head = text[:4096].lstrip("\ufeff \t\r\n").lower()
    if not head.startswith("<"):
        return
    if head.startswith("<?xml") and "<html" not in head:
        if "urn:schemas-microsoft-com:office:spreadsheet" in text[:16384]:
            raise SourceError(
                f"{filename}: an Excel 2003 XML spreadsheet, which cannot be read; open it in "
                f"Excel and save it as .xlsx"
            )
        raise _not_a_spreadsheet(filename, "an XML document")
    if head.startswith(_HTML_START) or "<html" in head[:1024] or "<!--" in head[:4]:
        m = _TITLE.search(text[:65536])
        title = " ".join(html.unescape(m.group(1)).split())[:80] if m else ""
        titled = f" (page title {title!r})" if title else ""
        raise SourceError(
            f"{filename}: a web page (HTML) saved with a spreadsheet name{titled}, not a "
            f"spreadsheet; download the file again, or if a portal exported it as a table, "
            f"open it in Excel and save it as .xlsx"
        )


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
    if len(content) < _MIN_ZIP_BYTES and PurePath(filename).suffix.lower() in _ZIP_SUFFIXES:
        # Named like a zip workbook and smaller than any zip: as a CSV it would be a cell or
        # two, and its parse would blame the headers.
        raise _cut_off(content, filename)
    delimiter = _sniff_delimiter(text)
    name = PurePath(filename).stem or filename
    rows: list[list[Cell]] = []
    cells = 0
    width = 0
    last = -1
    try:
        for i, record in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)):
            # Trailing empty fields are dropped as they come, and the limits are checked on
            # the way: a 50 MB file of commas must not become 25 million cells first.
            j = len(record)
            while j and not record[j - 1].strip():
                j -= 1
            if j:
                if i >= limits.max_rows:
                    raise _rows_over_limit(filename, name, i + 1, limits)
                cells += j
                last, width = i, max(width, j)
                if cells > limits.max_cells or (last + 1) * width > limits.max_cells:
                    raise SourceError(
                        f"{filename}: more than the limit of {limits.max_cells:,} cells "
                        f"(reached at row {i + 1:,}){_setting('max_cells')}"
                    )
            rows.append(cast("list[Cell]", record[:j] if j < len(record) else record))
    except csv.Error as exc:
        raise SourceError(f"{filename}: not readable as CSV ({_one_line(exc)})") from None
    return Table(name, _tidy(rows))
