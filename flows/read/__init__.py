"""Read a submission's bytes into Tables: xlsx/xlsm/xlsb, xls and ods with python-calamine, CSV.

The format is taken from the content (zip → which spreadsheet by its parts; OLE2 → xls; text →
CSV), not from the file name: schools rename files, and "xls" downloads from some portals are
HTML pages. Every limit of ``Limits`` is enforced before anything large is built, so one hostile
or broken upload fails alone with a one-line ``SourceError`` that names the file and, for a
limit, the setting an administrator would raise.

Rows come back as the sheet shows them: ``rows[i][j]`` is sheet row i+1, column j+1, empty cells
are None, trailing empty rows and columns are trimmed. Containers are checked in ``guards``,
sheets bounded in ``xlsx`` and ``ods``, text decoded in ``text``; ``gsheet`` decodes the JSON
archived for a Google Sheet.
"""

from __future__ import annotations

import zipfile
import zlib

from flows.read.calamine import read_calamine
from flows.read.cells import Formulas, cut_off, one_line, setting
from flows.read.guards import Package
from flows.read.ods import prepare_ods
from flows.read.text import read_text
from flows.read.xlsx import prepare_xlsx
from flows.settings import Limits
from schemas.records import SourceError, Table

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"


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
            f"{limits.max_file_bytes:,}{setting('max_file_bytes')}"
        )
    head = content[:8]
    if head.startswith(_ZIP_MAGIC):
        tables = _read_zip(content, filename, limits)
    elif head == _OLE2_MAGIC:
        tables = _read_ole2(content, filename, limits)
    elif any(magic.startswith(content) for magic in (*_ZIP_MAGIC, _OLE2_MAGIC)):
        raise cut_off(content, filename)  # the first bytes of a workbook's signature, no more
    else:
        tables = [read_text(content, filename, limits)]
    if not any(t.rows for t in tables):
        raise SourceError(f"{filename}: the file holds no data (every sheet is empty)")
    return tables


def _read_zip(content: bytes, filename: str, limits: Limits) -> list[Table]:
    pkg = Package(content, filename, limits)
    names = pkg.names
    formulas: Formulas = {}
    try:
        if "xl/workbook.xml" in names:
            content, formulas = prepare_xlsx(pkg, filename, limits)
        elif "xl/workbook.bin" in names:
            pkg.verify_rest()  # xlsb: binary parts, calamine reads them; formulas keep results
        elif "mimetype" in names and pkg.read("mimetype").strip() == _ODS_MIMETYPE:
            content, formulas = prepare_ods(pkg, filename, limits)
        elif "mimetype" in names or any(n.startswith(("word/", "ppt/")) for n in names):
            raise SourceError(f"{filename}: not a spreadsheet (an office document of another kind)")
        else:
            raise SourceError(f"{filename}: not a spreadsheet (a zip archive)")
    except (zipfile.BadZipFile, zlib.error, OSError, KeyError, EOFError) as exc:
        raise SourceError(f"{filename}: damaged file ({one_line(exc)})") from None
    finally:
        pkg.close()
    return read_calamine(content, filename, limits, formulas)


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
    return read_calamine(content, filename, limits, {})


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
