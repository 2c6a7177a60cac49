"""flows/read: formats by content, the edge-case workbook in xlsx/xls/ods, CSV, and every
way a file can be unusable."""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
import zipfile
from pathlib import Path

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from flows.read import read_tables, xlsx
from flows.read.cells import FormulaWithoutValue, tidy
from flows.read.guards import Package
from flows.read.xlsx import prepare_xlsx
from flows.settings import Limits
from schemas.records import SourceError, Table

FIXTURES = Path(__file__).parents[1] / "fixtures"
FORMATS = ("xlsx", "xls", "ods")
LIMITS = Limits()

SHEETS = [
    "tieu_de",
    "dong_trong",
    "tong_cong",
    "mot_trieu_dong",
    "cong_thuc",
    "ngay_so",
    "nfd",
    "luoi",
    "danh_so",
    "nhan",
    "ngay_chu",
]
#: (rows, columns) of each sheet once trailing blank rows and columns are trimmed.
SHAPES = {
    "tieu_de": (9, 8),
    "dong_trong": (7, 4),
    "tong_cong": (7, 5),
    "mot_trieu_dong": (3, 4),
    "cong_thuc": (4, 5),
    "ngay_so": (4, 3),
    "nfd": (3, 4),
    "luoi": (4, 8),
    "danh_so": (3, 8),
    "nhan": (14, 2),
    "ngay_chu": (5, 3),
}


def fixture_bytes(fmt: str) -> bytes:
    return (FIXTURES / f"edge_cases.{fmt}").read_bytes()


@pytest.fixture(scope="module", params=FORMATS)
def workbook(request: pytest.FixtureRequest) -> tuple[str, dict[str, Table]]:
    fmt = request.param
    tables = read_tables(fixture_bytes(fmt), f"edge_cases.{fmt}", LIMITS)
    return fmt, {t.name: t for t in tables}


def xlsx_bytes(rows: list[list[object]], title: str = "S") -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def handmade_xlsx(sheet_data: str, shared: list[str] | None = None) -> bytes:
    """A minimal xlsx with one sheet "S" whose <sheetData> is given, and shared strings: the
    way Excel and LibreOffice (unlike openpyxl) store text."""
    sst = "".join(f"<si><t xml:space='preserve'>{s}</t></si>" for s in shared or [])
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sheet.main+xml"/></Types>'
        ),
        "_rels/.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
            '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>"
        ),
        "xl/worksheets/sheet1.xml": (
            f'<worksheet xmlns="{_MAIN}"><sheetData>{sheet_data}</sheetData></worksheet>'
        ),
        "xl/sharedStrings.xml": f'<sst xmlns="{_MAIN}">{sst}</sst>',
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in parts.items():
            zf.writestr(name, text)
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# The edge-case workbook, in the three formats


def test_sheets_in_workbook_order(workbook: tuple[str, dict[str, Table]]) -> None:
    _, tables = workbook
    assert list(tables) == SHEETS


@pytest.mark.parametrize("sheet", SHEETS)
def test_sheet_shapes_are_trimmed_to_real_data(
    workbook: tuple[str, dict[str, Table]], sheet: str
) -> None:
    _, tables = workbook
    rows = tables[sheet].rows
    assert (len(rows), len(rows[0])) == SHAPES[sheet]
    assert all(len(r) == len(rows[0]) for r in rows)  # rectangular


def test_rows_start_at_a1_so_addresses_are_real(workbook: tuple[str, dict[str, Table]]) -> None:
    _, tables = workbook
    rows = tables["tieu_de"].rows
    assert rows[0][0] == "SỞ GDĐT TỈNH BẮC NINH"  # A1, a merged title
    assert rows[0][1] is None  # B1 is covered by the merge: no value of its own
    assert rows[3] == [None] * 8  # the blank row 4 is kept: it has a sheet row number
    assert rows[4][2] == "Tiếp cận dịch vụ giáo dục"  # C5, merged over C5:D5
    assert rows[5][0] == "STT"  # the header, row 6
    assert rows[6][1] == "3A"  # B7


def test_blank_cells_are_none(workbook: tuple[str, dict[str, Table]]) -> None:
    _, tables = workbook
    rows = tables["dong_trong"].rows
    assert rows[2] == [None] * 4
    assert rows[5] == [None] * 4  # a row of spaces is a blank row


def test_million_row_used_range_reads_its_three_rows(
    workbook: tuple[str, dict[str, Table]],
) -> None:
    _, tables = workbook
    rows = tables["mot_trieu_dong"].rows
    assert [r[0] for r in rows] == ["Dấu thời gian", "29/10/2024 09:00:00", "29/10/2024 09:05:00"]


def test_formulas_without_values(workbook: tuple[str, dict[str, Table]]) -> None:
    fmt, tables = workbook
    rows = tables["cong_thuc"].rows
    cells = {(1, 3): rows[1][3], (2, 2): rows[2][2], (2, 4): rows[2][4]}
    if fmt == "xlsx":
        # openpyxl saved the formulas with no result; calamine alone would say "empty".
        assert cells == {
            (1, 3): "=ROUND((B2+C2)/2,0)",
            (2, 2): "=B3",
            (2, 4): "=50+30",
        }
        assert all(isinstance(v, FormulaWithoutValue) for v in cells.values())
    else:
        # LibreOffice computed them while converting: plain values.
        assert cells == {(1, 3): 5, (2, 2): 3, (2, 4): 80}
        assert not any(isinstance(v, FormulaWithoutValue) for v in cells.values())
    assert rows[3][3] == 5  # an ordinary number is untouched


def test_serial_dates_stay_numbers_and_date_cells_are_datetimes(
    workbook: tuple[str, dict[str, Table]],
) -> None:
    _, tables = workbook
    rows = tables["ngay_so"].rows
    assert rows[1][0] == pytest.approx(45594.378831018519)
    assert rows[2][0] == dt.datetime(2024, 10, 30, 14, 0)
    assert rows[3][0] == 45597


def test_nfd_text_is_read_as_written(workbook: tuple[str, dict[str, Table]]) -> None:
    # read keeps text as it is; folding to NFC is parse's job (tested there).
    _, tables = workbook
    header = tables["nfd"].rows[0]
    assert header[0] == unicodedata.normalize("NFD", "Dấu thời gian")
    assert not unicodedata.is_normalized("NFC", str(header[1]))


def test_calamine_reads_a_formula_without_value_as_empty() -> None:
    """Why read.py looks at the XML: calamine cannot tell such a cell from an empty one.
    If this starts failing, calamine has learnt to, and the XML scan may go."""
    content = xlsx_bytes([["a", "b", "c"], [1, 2, "=A2+B2"]])
    with CalamineWorkbook.from_filelike(io.BytesIO(content)) as wb:
        assert wb.get_sheet_by_index(0).to_python() == [["a", "b", "c"], [1.0, 2.0, ""]]
    rows = read_tables(content, "f.xlsx", LIMITS)[0].rows
    assert rows[1][2] == FormulaWithoutValue("=A2+B2")


def test_formula_with_cached_empty_text_is_an_empty_cell() -> None:
    # Excel stores a formula returning "" as t="str" with an empty <v>: a result, not a gap.
    content = handmade_xlsx(
        '<row r="1"><c r="A1" t="inlineStr"><is><t>h</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t>k</t></is></c></row>'
        '<row r="2"><c r="A2"><v>1</v></c><c r="B2" t="str"><f>IF(A2&gt;1,"x","")</f><v></v></c>'
        '<c r="C2"><f>A2&amp;"!"</f></c></row>'
    )
    rows = read_tables(content, "f.xlsx", LIMITS)[0].rows
    assert rows[1][1] is None
    assert rows[1][2] == FormulaWithoutValue('=A2&"!"')  # entities unescaped


def _calamine_rows(content: bytes) -> dict[str, list[list[object]]]:
    with CalamineWorkbook.from_filelike(io.BytesIO(content)) as wb:
        return {
            name: tidy(wb.get_sheet_by_name(name).to_python(skip_empty_area=False))
            for name in wb.sheet_names
        }


def _merged_ranges(content: bytes) -> list[object]:
    with CalamineWorkbook.from_filelike(io.BytesIO(content)) as wb:
        return [wb.get_sheet_by_name(name).merged_cell_ranges for name in wb.sheet_names]


def _copy_for_calamine(content: bytes) -> bytes:
    pkg = Package(content, "m.xlsx", LIMITS)
    try:
        return prepare_xlsx(pkg, "m.xlsx", LIMITS)[0]
    finally:
        pkg.close()


def test_calamine_is_spared_its_merged_cell_pass_and_reads_the_same_cells() -> None:
    """calamine reads each sheet a second time, to its end, for its merged cells; the copy it
    is given stops that pass at once. Merged titles, two sheets, dates and numbers read the
    same as calamine reads the file itself. If the merges are found again in the copy,
    calamine's search has changed and ``without_merge_scan`` no longer gains anything."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Trả lời"
    ws.append(["SỞ GIÁO DỤC VÀ ĐÀO TẠO", None, None])
    ws.merge_cells("A1:C1")
    ws.append(["Dấu thời gian", "Điểm", "Ý kiến"])
    ws.append([dt.datetime(2025, 3, 1, 9, 15), 5, "Tốt & <đủ>"])
    ws.append([dt.datetime(2025, 3, 2, 10, 0), 0.85, None])
    other = wb.create_sheet("Ghi chú")
    other.append(["x", None, "y"])
    other.merge_cells("A1:B1")
    out = io.BytesIO()
    wb.save(out)
    content = out.getvalue()

    copy = _copy_for_calamine(content)
    assert _merged_ranges(content) == [[((0, 0), (0, 2))], [((0, 0), (0, 1))]]
    assert _merged_ranges(copy) == [[], []]
    with zipfile.ZipFile(io.BytesIO(copy)) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    tables = read_tables(content, "m.xlsx", LIMITS)
    assert {t.name: t.rows for t in tables} == _calamine_rows(content)
    assert tables[0].rows[2] == [dt.datetime(2025, 3, 1, 9, 15), 5, "Tốt & <đủ>"]


def test_a_package_above_the_copy_size_reaches_calamine_as_it_came(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above ``STORED_COPY_MAX_BYTES`` calamine streams the sheets from the file itself (a
    stored copy would be held whole, twice): the file's own bytes, the same cells."""
    content = xlsx_bytes([["Dấu thời gian", "Điểm"], [dt.datetime(2025, 3, 1), 4]])
    monkeypatch.setattr(xlsx, "STORED_COPY_MAX_BYTES", 100)
    assert _copy_for_calamine(content) == content
    assert read_tables(content, "g.xlsx", LIMITS)[0].rows == _calamine_rows(content)["S"]


def test_a_prefixed_sheet_reads_the_same_cells_without_the_merged_cell_pass() -> None:
    sheet = (
        f'<x:worksheet xmlns:x="{_MAIN}"><x:sheetData>'
        '<x:row r="1"><x:c r="A1" t="inlineStr"><x:is><x:t>h</x:t></x:is></x:c>'
        '<x:c r="B1"><x:v>2</x:v></x:c></x:row></x:sheetData>'
        '<x:mergeCells count="1"><x:mergeCell ref="A1:B1"/></x:mergeCells></x:worksheet>'
    )
    content = handmade_xlsx("")
    parts = {}
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    content = out.getvalue()
    assert _merged_ranges(content) == [[((0, 0), (0, 1))]]
    assert _merged_ranges(_copy_for_calamine(content)) == [[]]
    assert read_tables(content, "p.xlsx", LIMITS)[0].rows == [["h", 2]]


# --------------------------------------------------------------------------------------------
# Blank tails far below the data (the 1,048,576-row trap), cut before calamine sees them


def test_blank_shared_string_far_below_is_cut() -> None:
    content = handmade_xlsx(
        '<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
        '<row r="2"><c r="A2"><v>4</v></c></row>'
        '<row r="1048576"><c r="C1048576" t="s"><v>1</v></c></row>',
        shared=["Hài lòng", " "],
    )
    # max_cells=10 proves the cut: calamine would otherwise span 1,048,576 x 3 cells.
    tables = read_tables(content, "f.xlsx", Limits(max_cells=10))
    assert tables[0].rows == [["Hài lòng"], [4.0]]


def test_blank_inline_text_far_below_is_cut() -> None:
    content = xlsx_bytes([["h", "k"], [1, 2]])
    wb = openpyxl.load_workbook(io.BytesIO(content))
    ws = wb.active
    assert ws is not None
    ws.cell(row=1_048_576, column=30, value="   ")
    ws.cell(row=500_000, column=2, value="")
    out = io.BytesIO()
    wb.save(out)
    rows = read_tables(out.getvalue(), "f.xlsx", Limits(max_cells=10))[0].rows
    assert rows == [["h", "k"], [1.0, 2.0]]


def test_data_far_below_the_row_limit_is_refused_before_reading() -> None:
    content = handmade_xlsx(
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="300000"><c r="B300000"><v>7</v></c></row>'
    )
    with pytest.raises(SourceError, match=r"f\.xlsx: sheet 'S' has data down to row 300,000"):
        read_tables(content, "f.xlsx", LIMITS)


def test_text_in_shared_strings_far_below_counts_as_data() -> None:
    content = handmade_xlsx(
        '<row r="1"><c r="A1"><v>1</v></c></row>'
        '<row r="250000"><c r="A250000" t="s"><v>0</v></c></row>',
        shared=["Tổng cộng"],
    )
    with pytest.raises(SourceError, match="row 250,000"):
        read_tables(content, "f.xlsx", LIMITS)


def test_sparse_tail_within_the_limit_keeps_its_data() -> None:
    content = handmade_xlsx(
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="5000"><c r="A5000"><v>2</v></c></row>'
        '<row r="90000"><c r="A90000" t="s"><v>0</v></c></row>',
        shared=[" "],
    )
    rows = read_tables(content, "f.xlsx", Limits(max_cells=5000))[0].rows
    assert len(rows) == 5000
    assert rows[0] == [1.0] and rows[4999] == [2.0]


def test_ods_blank_text_far_below_is_cut_and_real_data_is_kept() -> None:
    # The fixture's ods holds a space at D1048576 after 1,048,572 repeated empty rows.
    content = fixture_bytes("ods")
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        assert b'number-rows-repeated="1048572"' in zf.read("content.xml")
    tables = read_tables(content, "e.ods", Limits(max_cells=1_000))
    assert len(tables) == len(SHEETS)  # no sheet came near 1,000 cells


# --------------------------------------------------------------------------------------------
# Format from content, not from the name


def test_workbook_named_csv_is_read_as_a_workbook() -> None:
    tables = read_tables(fixture_bytes("xlsx"), "export.csv", LIMITS)
    assert [t.name for t in tables] == SHEETS


@pytest.mark.parametrize("fmt", FORMATS)
def test_workbook_named_wrongly_is_read(fmt: str) -> None:
    other = {"xlsx": "x.xls", "xls": "x.xlsx", "ods": "x.xlsx"}[fmt]
    assert len(read_tables(fixture_bytes(fmt), other, LIMITS)) == len(SHEETS)


def test_csv_named_xlsx_is_read_as_csv() -> None:
    tables = read_tables("Lớp,Hài lòng\n5A,4\n".encode(), "phieu.xlsx", LIMITS)
    assert tables == [Table("phieu", [["Lớp", "Hài lòng"], ["5A", "4"]])]


# --------------------------------------------------------------------------------------------
# CSV


@pytest.mark.parametrize(
    ("content", "rows"),
    [
        (b"a,b\n1,2\n", [["a", "b"], ["1", "2"]]),
        (
            "\ufeffDấu thời gian,TC1\r\n29/10/2024,4\r\n".encode(),
            [["Dấu thời gian", "TC1"], ["29/10/2024", "4"]],
        ),
        ("\ufeffa;b\n1;2\n".encode("utf-16-le"), [["a", "b"], ["1", "2"]]),
        ("\ufeffa;b\n1;2\n".encode("utf-16-be"), [["a", "b"], ["1", "2"]]),
        (b"a;b;c\n1;2;3\n", [["a", "b", "c"], ["1", "2", "3"]]),
        (b"a\tb\n1\t2\n", [["a", "b"], ["1", "2"]]),
        # commas inside unquoted text of a semicolon file do not fool the sniffer
        (
            "Câu hỏi;Thông tin đầy đủ, kịp thời\n5A;Hài lòng\n".encode(),
            [["Câu hỏi", "Thông tin đầy đủ, kịp thời"], ["5A", "Hài lòng"]],
        ),
        # quoted commas in a comma file (Google's export)
        (
            '"Thông tin đầy đủ, kịp thời",b\n"Hài lòng, rất",2\n'.encode(),
            [["Thông tin đầy đủ, kịp thời", "b"], ["Hài lòng, rất", "2"]],
        ),
        # empty cells are None; trailing blank lines and columns are trimmed
        (b"a,b,,\n1,,,\n,,,\n\n", [["a", "b"], ["1", None]]),
        (b"a\n1\n", [["a"], ["1"]]),
    ],
)
def test_csv(content: bytes, rows: list[list[object]]) -> None:
    assert read_tables(content, "phieu.csv", LIMITS) == [Table("phieu", rows)]


def test_csv_keeps_nfd_text() -> None:
    text = unicodedata.normalize("NFD", "Hài lòng")
    assert read_tables(f"a\n{text}\n".encode(), "p.csv", LIMITS)[0].rows[1] == [text]


# --------------------------------------------------------------------------------------------
# Unusable files: one line each, naming the file


def _zip(parts: dict[str, bytes], encrypted: bool = False) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    content = out.getvalue()
    if encrypted:
        # zipfile cannot encrypt; set the "encrypted" flag bit in the local and central
        # headers (offsets 6 and 8), which is what a reader sees first.
        buf = bytearray(content)
        for magic, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            at = buf.find(magic)
            buf[at + offset] |= 0x1
        content = bytes(buf)
    return content


_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "f.xlsx: the file is empty"),
        (b"  \r\n\t", "f.xlsx: the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a spreadsheet (a PNG image)"),
        (b"%PDF-1.7\n%\xe2\xe3", "not a spreadsheet (a PDF document)"),
        (b"<html><body><table><tr><td>1</td></tr></table>", "a web page (HTML) saved"),
        (b"<!DOCTYPE html><html>", "a web page (HTML) saved"),
        (fixture_bytes("xlsx")[:3000], "damaged file"),
        (b"PK\x03\x04" + b"\x00" * 100, "damaged file"),
        (_zip({"word/document.xml": b"<w/>"}), "not a spreadsheet (an office document"),
        (_zip({"notes.txt": b"hello"}), "not a spreadsheet (a zip archive)"),
        (
            _zip({"xl/workbook.xml": b"<workbook/>"}, encrypted=True),
            "the file is password-protected",
        ),
        (_OLE2 + "EncryptedPackage".encode("utf-16-le"), "the file is password-protected"),
        (_OLE2 + "WordDocument".encode("utf-16-le"), "not a spreadsheet (an old Office"),
        (_OLE2 + "Workbook".encode("utf-16-le"), "damaged or unsupported spreadsheet"),
        # cp1258 is decoded now (tests/read/test_hostile.py); 0x81 is undefined in it.
        (b"L\x81c,\x81ng\n", "unknown encoding (not UTF-8, UTF-16 or Windows-1258; byte 1)"),
        (_zip({"xl/workbook.xml": b"<workbook/>"}), "damaged or unsupported spreadsheet"),
        (handmade_xlsx(""), "the file holds no data (every sheet is empty)"),
    ],
    ids=[
        "empty",
        "whitespace",
        "png",
        "pdf",
        "html",
        "html-doctype",
        "truncated-xlsx",
        "zip-header-only",
        "docx",
        "plain-zip",
        "encrypted-zip",
        "encrypted-ooxml",
        "doc",
        "broken-xls",
        "unknown-encoding",
        "xlsx-without-sheets",
        "no-data",
    ],
)
def test_unusable_files(content: bytes, message: str) -> None:
    with pytest.raises(SourceError) as err:
        read_tables(content, "f.xlsx", LIMITS)
    text = str(err.value)
    assert message in text
    assert text.startswith("f.xlsx: ")
    assert "\n" not in text


def test_file_larger_than_the_limit() -> None:
    with pytest.raises(
        SourceError, match=r"file of 13,\d{3} bytes is larger than the limit of 10,000"
    ):
        read_tables(fixture_bytes("xlsx"), "f.xlsx", Limits(max_file_bytes=10_000))


def test_zip_unpacking_beyond_the_limit() -> None:
    with pytest.raises(SourceError, match="unpacks to .* bytes, more than the limit of 1,000"):
        read_tables(fixture_bytes("xlsx"), "f.xlsx", Limits(max_uncompressed_bytes=1_000))


def test_zip_bomb_ratio() -> None:
    bomb = _zip(
        {"xl/workbook.xml": b"<workbook/>", "xl/worksheets/sheet1.xml": b"\x00" * 5_000_000}
    )
    with pytest.raises(SourceError, match=r"part xl/worksheets/sheet1\.xml is compressed \d+:1"):
        read_tables(bomb, "f.xlsx", LIMITS)


@pytest.mark.parametrize("fmt", FORMATS)
def test_row_limit(fmt: str) -> None:
    # "nhan" has 14 rows, every other sheet fewer.
    with pytest.raises(
        SourceError, match="sheet 'nhan' has data down to row 14, more than the limit of 13 rows"
    ):
        read_tables(fixture_bytes(fmt), f"e.{fmt}", Limits(max_rows=13))
    assert read_tables(fixture_bytes(fmt), f"e.{fmt}", Limits(max_rows=14))


def test_row_limit_csv() -> None:
    content = "a\n" + "1\n" * 10 + "\n" * 50
    assert len(read_tables(content.encode(), "p.csv", Limits(max_rows=11))[0].rows) == 11
    with pytest.raises(
        SourceError,
        match="p.csv: sheet 'p' has data down to row 11, more than the limit of 10 rows",
    ):
        read_tables(content.encode(), "p.csv", Limits(max_rows=10))


@pytest.mark.parametrize("fmt", FORMATS)
def test_cell_limit_counts_the_whole_file(fmt: str) -> None:
    # The sheets before "luoi" hold 72+28+35+12+20+12+12 = 191 cells; luoi (A1:H4) adds 32.
    with pytest.raises(
        SourceError,
        match=r"more than the limit of 200 cells \(reached in sheet 'luoi', which ends at H4\)",
    ):
        read_tables(fixture_bytes(fmt), f"e.{fmt}", Limits(max_cells=200))
    assert read_tables(fixture_bytes(fmt), f"e.{fmt}", Limits(max_cells=300))
