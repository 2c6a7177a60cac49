"""Text files: CSV or TSV, decoded, their delimiter sniffed, bounded by the limits as they are read.

CSV in UTF-8 (with or without BOM), UTF-16 (Excel's "Unicode text", tab separated, with or
without BOM) or Windows-1258 (Excel's "CSV" on a Vietnamese Windows, whose tone marks are
combining characters: decoded text is composed to NFC, as UTF-8 would have stored it).
Anything else fails with the reason: a web page, a PDF, an image, damaged UTF-8 (naming the
first cell that is not UTF-8). Control characters (a stray ESC or NUL pasted from another
program) are dropped from their cell and noted on the table (``Table.notes``), unless there are
so many that the file is binary; a cell longer than ``limits.max_cell_chars`` fails the file,
naming the cell.
"""

from __future__ import annotations

import csv
import html
import io
import re
import unicodedata
from collections.abc import Iterator
from pathlib import PurePath
from typing import cast

from flows.read.cells import cut_off, one_line, rows_over_limit, setting, tidy
from flows.settings import Limits
from schemas.records import Cell, SourceError, Table, cell_address

# csv's own bound on a field (131,072 characters) fails a file without saying where;
# ``limits.max_cell_chars`` is checked instead, cell by cell, and the whole text is in memory
# already (bounded by limits.max_file_bytes).
csv.field_size_limit(2**31 - 1)

#: The smallest zip there is (an empty archive's end record alone); any workbook is larger.
_MIN_ZIP_BYTES = 22
_ZIP_SUFFIXES = (".xlsx", ".xlsm", ".ods")


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
#: Control characters in the first 64 KiB above which the file is binary, not text with a few
#: stray ones: more than this share of its characters, and more than this many.
_BINARY_SHARE = 0.01
_BINARY_COUNT = 16
#: Bytes of UTF-8 text that could not be decoded, as ``surrogateescape`` leaves them.
_UNDECODED = re.compile("[\udc80-\udcff]")
#: What a note and a rejection say about a cell whose control characters were dropped.
NOTE_CONTROL = "control_characters"
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
    head = text[:65536]
    if len(_CONTROL.findall(head)) > max(_BINARY_COUNT, _BINARY_SHARE * len(head)):
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
    elif b"\x00" in content[:8192] and (found := _utf16_without_bom(content)) is not None:
        encoding = found
    else:
        # A few NULs in UTF-8 text are stray control characters, dropped cell by cell; many
        # make it binary (``_decode``).
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError as exc:
            return _decode_legacy(content, filename, exc)
    try:
        return content.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding == "utf-8-sig":
            raise _damaged_utf8(content, filename) from None
        label = encoding.upper().replace("-LE", "").replace("-BE", "")
        raise SourceError(
            f"{filename}: damaged {label} text (byte {exc.start:,}); save it again as 'CSV UTF-8'"
        ) from None


def _damaged_utf8(content: bytes, filename: str) -> SourceError:
    """The error for UTF-8 text holding bytes of another encoding (a cell pasted from a
    Windows-1258 or 1252 file), naming the first cell they are in."""
    text = content.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    delimiter = _sniff_delimiter(text)
    where = ""
    try:
        for i, record in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)):
            j = next((j for j, f in enumerate(record) if _UNDECODED.search(f)), None)
            if j is not None:
                where = f" in cell {cell_address(i + 1, j + 1)} (row {i + 1:,})"
                break
    except csv.Error:
        pass
    return SourceError(
        f"{filename}: damaged UTF-8 text{where}: characters in another encoding (Windows-1258 "
        f"or 1252?); retype them, or save the file again as 'CSV UTF-8'"
    )


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
        # a damaged UTF-8 file, or cells of another encoding pasted in, not another encoding.
        raise _damaged_utf8(content, filename)
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


def read_text(content: bytes, filename: str, limits: Limits) -> Table:
    """The one table of a CSV or TSV file, decoded and bounded by ``limits`` as it is read."""
    text = _decode(content, filename)
    if not text.strip():
        raise SourceError(f"{filename}: the file is empty")
    if len(content) < _MIN_ZIP_BYTES and PurePath(filename).suffix.lower() in _ZIP_SUFFIXES:
        # Named like a zip workbook and smaller than any zip: as a CSV it would be a cell or
        # two, and its parse would blame the headers.
        raise cut_off(content, filename)
    delimiter = _sniff_delimiter(text)
    name = PurePath(filename).stem or filename
    rows: list[list[Cell]] = []
    notes: dict[tuple[int, int], str] = {}
    cells = 0
    width = 0
    last = -1
    try:
        for i, record in enumerate(_records(text, delimiter, filename, limits, notes)):
            # Trailing empty fields are dropped as they come, and the limits are checked on
            # the way: a 50 MB file of commas must not become 25 million cells first.
            j = len(record)
            while j and not record[j - 1].strip():
                j -= 1
            if j:
                if i >= limits.max_rows:
                    raise rows_over_limit(filename, name, i + 1, limits)
                cells += j
                last, width = i, max(width, j)
                if cells > limits.max_cells or (last + 1) * width > limits.max_cells:
                    raise SourceError(
                        f"{filename}: more than the limit of {limits.max_cells:,} cells "
                        f"(reached at row {i + 1:,}){setting('max_cells')}"
                    )
            rows.append(cast("list[Cell]", record[:j] if j < len(record) else record))
    except csv.Error as exc:
        raise SourceError(f"{filename}: not readable as CSV ({one_line(exc)})") from None
    return Table(name, tidy(rows), notes)


def _records(
    text: str, delimiter: str, filename: str, limits: Limits, notes: dict[tuple[int, int], str]
) -> Iterator[list[str]]:
    """The CSV's records, each cell within ``limits.max_cell_chars`` (else a SourceError naming
    it) and without control characters (each cell that had some noted in ``notes``). Both are
    looked for cell by cell only in a file that can hold one: most hold neither."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    long_possible = len(text) > limits.max_cell_chars
    if not long_possible and _CONTROL.search(text) is None:
        yield from reader
        return
    for i, record in enumerate(reader):
        for j, field in enumerate(record):
            if long_possible and len(field) > limits.max_cell_chars:
                raise SourceError(
                    f"{filename}: cell {cell_address(i + 1, j + 1)} holds {len(field):,} "
                    f"characters, more than the limit of {limits.max_cell_chars:,}"
                    f"{setting('max_cell_chars')}"
                )
            if _CONTROL.search(field):
                record[j] = _CONTROL.sub("", field)
                notes[i, j] = NOTE_CONTROL
        yield record
