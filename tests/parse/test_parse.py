"""flows/parse: header matching, sheet choice, and parse_table on hand-made tables and on
the edge-case workbook in xlsx, xls and ods."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import unicodedata
from pathlib import Path

import pandas as pd
import pytest

from flows.parse.header import (
    find_header_row,
    header_key,
    match_headers,
    pick_table,
    renamed_questions,
)
from flows.parse.sheet import TIMESTAMP, parse_table
from flows.read import read_tables
from flows.read.cells import FormulaWithoutValue
from flows.settings import Limits
from schemas.questionnaire import SCHEMAS_DIR, Item, Questionnaire, load_questionnaire
from schemas.records import REJECTION_COLUMNS, Cell, Parsed, SourceError, Table, cell_address

FIXTURES = Path(__file__).parents[1] / "fixtures"
FORMATS = ("xlsx", "xls", "ods")
SALT = "muối-thử"

CMHS_TH = load_questionnaire(SCHEMAS_DIR / "CMHS_TH.yaml")
TC1 = CMHS_TH.item("TC1").text
TC2 = CMHS_TH.item("TC2").text
CHUNG = CMHS_TH.item("CHUNG").text
MONG_DOI = CMHS_TH.item("MONG_DOI").text

ANSWER_COLUMNS = ["response_no", "question_code", "kind", "value", "raw", "row", "col"]
RESPONSE_COLUMNS = [
    "response_no",
    "row",
    "submitted_at",
    "respondent_hash",
    "service",
    "LOP",
    "GIOI_TINH",
    "KHU_VUC",
    "Y_KIEN",
]


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def sha(email: str) -> str:
    return hashlib.sha256((SALT + email).encode()).hexdigest()


def cells(parsed: Parsed) -> dict[str, float]:
    """answers as {"B7": value}, NaN for unreadable values."""
    a = parsed.answers
    return {cell_address(r, c): v for r, c, v in zip(a["row"], a["col"], a["value"], strict=True)}


def rejected(parsed: Parsed) -> list[tuple[str, str | None, str, str]]:
    """rejections as (cell or row, question_code, rule, reason), in sheet order."""
    out = []
    for r in parsed.rejections.itertuples():
        where = cell_address(int(r.row), int(r.col)) if not pd.isna(r.col) else f"row {r.row}"
        code = None if pd.isna(r.question_code) else r.question_code
        out.append((where, code, r.rule, r.reason))
    return out


def papi() -> Questionnaire:
    return Questionnaire(
        code="PAPI_TH",
        version="t",
        name="PAPI test",
        respondent="Cha mẹ học sinh",
        kind="papi",
        levels=("TH",),
        items=(
            Item(code="KIEN_CO", kind="yesno", text="Lớp học là nhà kiên cố"),
            Item(code="VE_SINH", kind="yesno", text="Nhà vệ sinh sạch sẽ"),
        ),
    )


def dvgd() -> Questionnaire:
    return Questionnaire(
        code="DVGD_8TC",
        version="t",
        name="Rà soát dịch vụ",
        respondent="Hội đồng",
        kind="service_review",
        levels=("TH",),
        service_item="DICH_VU",
        items=(
            Item(code="NHOM_DICH_VU", kind="text", text="Nhóm dịch vụ"),
            Item(code="DICH_VU", kind="text", text="Tên dịch vụ", aliases=("Dịch vụ",)),
            Item(code="C1", kind="level", text="Chất lượng sản phẩm của dịch vụ"),
            Item(code="C2", kind="level", text="Giá cả"),
            Item(code="C3", kind="level", text="Tính kịp thời, đúng hạn"),
        ),
    )


def twin_grids() -> Questionnaire:
    """Two grids sharing a row text: only the grid title tells them apart."""
    return Questionnaire(
        code="GRID_TEST",
        version="t",
        name="Grid test",
        respondent="x",
        kind="satisfaction",
        levels=("TH",),
        dimensions={"CSVC": "Cơ sở vật chất"},
        items=(
            Item(code="LH", kind="likert", dimension="CSVC", grid="Phòng học", text="Sạch sẽ"),
            Item(code="VS", kind="likert", dimension="CSVC", grid="Nhà vệ sinh", text="Sạch sẽ"),
        ),
    )


# --------------------------------------------------------------------------------------------
# Headers


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("TC1", "TC1"),
        ("tc1", "TC1"),
        ("TC1. Thông tin tuyển sinh", "TC1"),
        ("TC1 - ghi chú bất kỳ", "TC1"),
        (TC1, "TC1"),
        (TC1.upper(), "TC1"),
        (nfd(TC1), "TC1"),
        (f"  {TC1}  ", "TC1"),
        (TC1.replace(" ", "  "), "TC1"),
        (f"{TC1}?", "TC1"),
        (f"{TC1} (*)", "TC1"),
        (f"Câu 1. {TC1}", "TC1"),
        (f"1) {TC1}", "TC1"),
        (f"(1) {TC1}", "TC1"),
        (f"a/ {TC1}", "TC1"),
        (f"I. {TC1}", "TC1"),
        (f"Câu 12: {CHUNG}", "CHUNG"),
        (f"Tiếp cận dịch vụ giáo dục [{TC2}]", "TC2"),
        (f"Tiếp cận dịch vụ giáo dục [2. {TC2}]", "TC2"),
        (f"Mức độ hài lòng của Ông/Bà [{TC2}]", "TC2"),  # another grid title, same row text
        (nfd(f"Tiếp cận dịch vụ giáo dục [{TC2}]"), "TC2"),
        ("Thong tin tuyen sinh duoc cung cap day du, kip thoi", "TC1"),  # typed without accents
        ("Hoạt động trải nghiệm, ngoại khoá, giáo dục kỹ năng sống", "HD2"),  # old tone mark
        ("Mức độ hài lòng chung", "CHUNG"),  # alias
        ("Con học lớp", "LOP"),  # alias
        ("Góp ý", "Y_KIEN"),
        (MONG_DOI, "MONG_DOI"),
    ],
)
def test_item_headers(header: str, code: str) -> None:
    match = match_headers(["x", header], CMHS_TH)
    assert match.items == {1: code}
    assert match.headers == {code: header.strip()}
    assert match.unknown == ["x"]


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("Dấu thời gian", "timestamp"),
        ("Timestamp", "timestamp"),
        ("Thời gian", "timestamp"),
        ("Thời gian gửi", "timestamp"),
        (nfd("Dấu thời gian"), "timestamp"),
        ("Địa chỉ email", "email"),
        ("Email Address", "email"),
        ("Email", "email"),
        ("Họ và tên", "personal"),
        ("Họ và tên phụ huynh", "personal"),
        ("Họ tên học sinh", "personal"),
        ("Số điện thoại", "personal"),
        ("SĐT", "personal"),
        ("STT", "ignored"),
        ("Số thứ tự", "ignored"),
        ("Con có thích đi học không?", "unknown"),
        ("Câu 13. Câu hỏi riêng của trường", "unknown"),
        ("Sạch sẽ", "unknown"),  # no such item in CMHS_TH
    ],
)
def test_other_headers(header: str, kind: str) -> None:
    match = match_headers([TC1, header], CMHS_TH)
    assert match.items == {0: "TC1"}
    assert (match.timestamp == 1) is (kind == "timestamp")
    assert (match.email == 1) is (kind == "email")
    assert (header in match.personal) is (kind in ("email", "personal"))
    assert match.unknown == ([header] if kind == "unknown" else [])


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Tiêu chí 1: Chất lượng sản phẩm của dịch vụ", "C1"),
        ("TC2. Giá cả", "C2"),  # the school's own label, not an item code
        ("C3 - Tính kịp thời, đúng hạn", "C3"),
        ("C3", "C3"),
        ("Dịch vụ", "DICH_VU"),
    ],
)
def test_service_review_headers(header: str, code: str) -> None:
    assert match_headers([header], dvgd()).items == {0: code}


def test_grid_title_decides_between_items_sharing_a_row_text() -> None:
    q = twin_grids()
    match = match_headers(["Nhà vệ sinh [Sạch sẽ]", "Phòng học [Sạch sẽ]", "Sạch sẽ"], q)
    assert match.items == {0: "VS", 1: "LH"}
    assert match.unknown == ["Sạch sẽ"]  # ambiguous without a title: never guessed


def test_second_column_for_the_same_item_is_unknown() -> None:
    match = match_headers([TC1, f"Câu 1. {TC1}"], CMHS_TH)
    assert match.items == {0: "TC1"}
    assert match.unknown == [f"Câu 1. {TC1}"]


def test_non_text_headers() -> None:
    match = match_headers([None, "", 2024, dt.datetime(2024, 1, 1), TC1], CMHS_TH)
    assert match.items == {4: "TC1"}
    assert match.unknown == ["2024", "2024-01-01 00:00:00"]


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Câu 5.  Thông tin  TUYỂN sinh:", "thông tin tuyển sinh"),
        ("Lớp (*)", "lớp"),
        (nfd("Lớp"), "lớp"),
    ],
)
def test_header_key(header: str, key: str) -> None:
    assert header_key(header) == key


@pytest.mark.parametrize(
    ("row", "col", "ref"),
    [(1, 1, "A1"), (7, 4, "D7"), (1, 26, "Z1"), (1, 27, "AA1"), (10, 703, "AAA10")],
)
def test_cell_address(row: int, col: int, ref: str) -> None:
    assert cell_address(row, col) == ref


# --------------------------------------------------------------------------------------------
# Header row and sheet


TITLED = Table(
    "Phiếu",
    [
        ["SỞ GDĐT TỈNH BẮC NINH", None, None],
        ["TRƯỜNG TIỂU HỌC HOA SEN", None, None],
        [None, None, None],
        ["Tiếp cận dịch vụ giáo dục", None, None],
        ["Lớp", TC1, TC2],
        ["3A", "Hài lòng", "4"],
    ],
)


def test_find_header_row_below_the_title_block() -> None:
    assert find_header_row(TITLED, CMHS_TH) == 4


def test_find_header_row_prefers_the_row_matching_most_items() -> None:
    table = Table("S", [[TC1, None], ["Lớp", None], [TC1, TC2], ["Hài lòng", "4"]])
    assert find_header_row(table, CMHS_TH) == 2


def test_find_header_row_needs_a_scored_item() -> None:
    # "Lớp" and "Dấu thời gian" alone are no questionnaire header.
    table = Table("S", [["Dấu thời gian", "Lớp"], ["29/10/2024", "3A"]])
    with pytest.raises(SourceError) as err:
        find_header_row(table, CMHS_TH)
    message = str(err.value)
    assert message.startswith("sheet 'S': no header row of CMHS_TH (")
    assert f"expected headers such as '{TC1[:39]}…'" in message
    assert "found 'Dấu thời gian', 'Lớp', '29/10/2024', '3A'" in message


def test_find_header_row_of_an_empty_sheet() -> None:
    with pytest.raises(SourceError, match="found no text at all"):
        find_header_row(Table("S", []), CMHS_TH)


def test_pick_table_configured_sheet() -> None:
    other = Table("Khác", [["x"]])
    assert pick_table([other, TITLED], CMHS_TH, "Phiếu") is TITLED
    assert pick_table([other, TITLED], CMHS_TH, "PHIẾU") is TITLED
    assert pick_table([other, TITLED], CMHS_TH, nfd("phiếu")) is TITLED
    with pytest.raises(
        SourceError, match=r"sheet 'Trang1' not found; the file has sheets 'Khác', 'Phiếu'"
    ):
        pick_table([other, TITLED], CMHS_TH, "Trang1")


def test_pick_table_best_matching_sheet() -> None:
    lists = Table("DanhMuc", [["Hài lòng"], ["Rất hài lòng"]])
    partial = Table("Nhap", [[TC1], ["4"]])
    assert pick_table([lists, partial, TITLED], CMHS_TH) is TITLED
    assert pick_table([lists, partial], CMHS_TH) is partial


def test_pick_table_without_any_match() -> None:
    tables = [Table("Sheet1", [["Họ và tên", "Điểm"]]), Table("Sheet2", [])]
    with pytest.raises(SourceError) as err:
        pick_table(tables, CMHS_TH)
    message = str(err.value)
    assert message.startswith("no sheet holds the headers of CMHS_TH (")
    assert "sheets 'Sheet1', 'Sheet2'" in message
    assert "'Sheet1': 'Họ và tên', 'Điểm'" in message


# --------------------------------------------------------------------------------------------
# parse_table on hand-made tables


def parse(rows: list[list[Cell]], q: Questionnaire = CMHS_TH) -> Parsed:
    return parse_table(Table("S", rows), q, SALT)


def test_frames_have_the_documented_columns() -> None:
    p = parse([["Dấu thời gian", TC1], ["29/10/2024 9:00:00", "Hài lòng"]])
    assert list(p.responses.columns) == RESPONSE_COLUMNS
    assert list(p.answers.columns) == ANSWER_COLUMNS
    assert list(p.rejections.columns) == REJECTION_COLUMNS
    assert str(p.responses["submitted_at"].dtype) == "datetime64[us]"
    assert p.answers["value"].dtype == "float64"
    assert {str(p.answers[c].dtype) for c in ("response_no", "row", "col")} == {"int64"}


def test_header_only_sheet_gives_empty_frames() -> None:
    p = parse([["Dấu thời gian", TC1, "Lớp"]])
    assert (len(p.responses), len(p.answers), len(p.rejections)) == (0, 0, 0)
    assert list(p.responses.columns) == RESPONSE_COLUMNS
    assert list(p.answers.columns) == ANSWER_COLUMNS
    assert p.n_rows_read == 0


def test_empty_and_unreadable_cells() -> None:
    p = parse(
        [
            ["Lớp", TC1, TC2, MONG_DOI],
            ["3A", "Hài lòng", None, "80%"],
            ["3B", "  ", "Không biết", 0.9],
            ["3C", "6", "", "nhiều"],
        ]
    )
    got = cells(p)
    assert set(got) == {"B2", "D2", "C3", "D3", "B4", "D4"}  # empty and blank cells: no row
    assert got["B2"] == 4.0 and got["D2"] == 80.0 and got["D3"] == 90.0
    assert all(math.isnan(got[c]) for c in ("C3", "B4", "D4"))
    raw = dict(
        zip(
            p.answers["row"].astype(str) + p.answers["question_code"], p.answers["raw"], strict=True
        )
    )
    assert raw == {
        "2TC1": "Hài lòng",
        "2MONG_DOI": "80%",
        "3TC2": "Không biết",
        "3MONG_DOI": "0.9",
        "4TC1": "6",
        "4MONG_DOI": "nhiều",
    }
    assert len(p.rejections) == 0  # unreadable values are validation's to reject
    assert p.responses["LOP"].tolist() == ["3A", "3B", "3C"]


def test_unreadable_timestamp_is_rejected_and_the_response_kept() -> None:
    p = parse(
        [
            [TC1, "Dấu thời gian"],
            ["Hài lòng", "29/10/2024 9:05:31"],
            ["Hài lòng", "hôm qua"],
            ["Hài lòng", None],
        ]
    )
    assert p.responses["submitted_at"].tolist()[0] == pd.Timestamp("2024-10-29 09:05:31")
    assert p.responses["submitted_at"].isna().tolist() == [False, True, True]
    assert rejected(p) == [
        ("B3", TIMESTAMP, "unreadable_timestamp", "Không đọc được dấu thời gian")
    ]
    assert p.rejections["raw_value"].tolist() == ["hôm qua"]
    assert p.rejections["response_no"].tolist() == [2]
    assert p.rejections["scope"].tolist() == ["value"]
    assert len(p.answers) == 3


def test_month_first_timestamp_column() -> None:
    p = parse([["Timestamp", TC1], ["10/29/2024 9:05:31", "4"], ["11/02/2024 10:00:00", "5"]])
    assert p.responses["submitted_at"].tolist() == [
        pd.Timestamp("2024-10-29 09:05:31"),
        pd.Timestamp("2024-11-02 10:00:00"),
    ]


def test_exact_duplicates_with_a_timestamp() -> None:
    ts = "29/10/2024 9:05:31"
    p = parse(
        [
            ["Dấu thời gian", "Địa chỉ email", TC1, TC2],
            [ts, "a@x.vn", "Hài lòng", "4"],
            [ts, "a@x.vn", "Hài lòng", "4"],  # duplicate of row 2
            [ts, "b@x.vn", "Hài lòng", "4"],  # another respondent in the same second
            [ts, "a@x.vn", "Hài lòng", "5"],  # another answer
            [ts, "a@x.vn", "Hài lòng", " 4"],  # another raw text: not an exact copy
            [ts, "a@x.vn", "Hài lòng", "4"],  # duplicate of row 2 again
        ]
    )
    assert rejected(p) == [
        ("row 3", None, "duplicate_response", "Trùng lặp với dòng 2"),
        ("row 7", None, "duplicate_response", "Trùng lặp với dòng 2"),
    ]
    assert p.rejections["scope"].tolist() == ["response", "response"]
    assert p.responses["row"].tolist() == [2, 4, 5, 6]
    assert p.responses["response_no"].tolist() == [1, 2, 3, 4]
    assert sorted(set(p.answers["row"])) == [2, 4, 5, 6]
    assert p.n_rows_read == 6


def test_identical_rows_without_timestamp_are_kept() -> None:
    p = parse([[TC1, TC2], ["Hài lòng", "4"], ["Hài lòng", "4"]])
    assert len(p.responses) == 2 and len(p.rejections) == 0


def test_blank_totals_and_signature_rows_are_skipped() -> None:
    p = parse(
        [
            ["STT", "Lớp", TC1],
            [1, "3A", 4],
            [None, None, None],
            [2, None, "  "],  # a number in STT only: nothing answered
            [3, "3B", 5],
            ["Tổng cộng", None, 9],
            ["Cộng:", None, 9],
            ["Người lập biểu", None, "Hiệu trưởng"],
            ["Bắc Ninh, ngày 5 tháng 11 năm 2024", None, "x"],
        ]
    )
    assert p.responses["row"].tolist() == [2, 5]
    assert cells(p) == {"C2": 4.0, "C5": 5.0}
    assert p.n_rows_read == 6  # rows holding an item value: two responses, four skipped


def test_repeated_header_rows_are_skipped() -> None:
    # A sheet typed from printed pages repeats the header on each page.
    p = parse(
        [
            ["STT", "Lớp", TC1, TC2],
            [1, "3A", 4, 5],
            ["STT", "Lớp", TC1, TC2],
            [2, "3A", 3, 3],
            [3, "3B", TC1, "4"],  # one item of two holding a header text: still a response
        ]
    )
    assert p.responses["row"].tolist() == [2, 4, 5]
    assert math.isnan(cells(p)["C5"])


def test_email_is_hashed_and_personal_columns_dropped() -> None:
    p = parse(
        [
            ["Dấu thời gian", "Địa chỉ email", "Họ và tên", "Số điện thoại", TC1],
            ["29/10/2024 9:00:00", " Me.An@Example.VN ", "Nguyễn Thị An", "0912345678", 4],
            ["29/10/2024 9:01:00", None, "Trần Văn Ba", "0987654321", 5],
        ]
    )
    assert p.responses["respondent_hash"].tolist() == [sha("me.an@example.vn"), None]
    assert p.personal_columns == ["Địa chỉ email", "Họ và tên", "Số điện thoại"]
    assert p.unknown_columns == []
    everything = " ".join(
        frame.astype(str).to_csv() for frame in (p.responses, p.answers, p.rejections)
    ) + str(p.columns)
    for secret in ("Example", "example", "Nguyễn", "Trần", "0912345678", "0987654321"):
        assert secret not in everything


def test_formulas_without_values_are_rejected_and_not_answers() -> None:
    p = parse(
        [
            ["Dấu thời gian", "Lớp", TC1, TC2],
            [
                FormulaWithoutValue("=NOW()"),
                FormulaWithoutValue("=A1"),
                FormulaWithoutValue("=4"),
                5,
            ],
        ]
    )
    assert rejected(p) == [
        ("A2", TIMESTAMP, "formula_without_value", "công thức không có giá trị"),
        ("B2", "LOP", "formula_without_value", "công thức không có giá trị"),
        ("C2", "TC1", "formula_without_value", "công thức không có giá trị"),
    ]
    assert p.rejections["raw_value"].tolist() == ["=NOW()", "=A1", "=4"]
    assert cells(p) == {"D2": 5.0}
    assert p.responses["LOP"].tolist() == [None]
    assert p.responses["submitted_at"].isna().all()


def test_ragged_rows_as_the_sheets_api_sends_them() -> None:
    p = parse(
        [
            ["Dấu thời gian", TC1, TC2, "Lớp"],
            ["29/10/2024", "4"],
            ["29/10/2024", "5", "3", "3A", "extra"],
        ]
    )
    assert cells(p) == {"B2": 4.0, "B3": 5.0, "C3": 3.0}
    assert p.responses["LOP"].tolist() == [None, "3A"]


def test_text_answers_are_nfc() -> None:
    p = parse([[TC1, "Lớp", "Ý kiến khác"], [4, nfd("5Ạ"), nfd(" Cần thêm sân chơi ")]])
    assert p.responses[["LOP", "Y_KIEN"]].values.tolist() == [["5Ạ", "Cần thêm sân chơi"]]
    assert unicodedata.is_normalized("NFC", p.responses["LOP"][0])


def test_missing_and_unknown_columns() -> None:
    p = parse([[TC1, "Câu hỏi riêng"], [4, "x"]])
    assert p.columns == {"TC1": TC1}
    assert p.unknown_columns == ["Câu hỏi riêng"]
    scored = [i.code for i in CMHS_TH.scored_items]
    assert p.missing_questions == [c for c in scored if c != "TC1"]
    assert "LOP" not in p.missing_questions  # background items are optional


def test_papi_yes_no() -> None:
    p = parse(
        [
            ["Dấu thời gian", "Lớp học là nhà kiên cố", "Nhà vệ sinh sạch sẽ"],
            ["29/10/2024", "Có", "Không"],
            ["29/10/2024", "x", None],
            ["29/10/2024", "Không rõ", "có"],
        ],
        papi(),
    )
    assert cells(p) == pytest.approx(
        {"B2": 1.0, "C2": 0.0, "B3": 1.0, "B4": math.nan, "C4": 1.0}, nan_ok=True
    )
    assert set(p.answers["kind"]) == {"yesno"}


def test_service_review_levels_and_service_column() -> None:
    p = parse(
        [
            ["Nhóm dịch vụ", "Dịch vụ", "Chất lượng sản phẩm của dịch vụ", "Giá cả"],
            ["Theo thỏa thuận", "Bán trú", "Tốt", "Khá"],
            ["Theo thỏa thuận", "Câu lạc bộ", "Trung bình", 10],
            ["Tự nguyện", "Quỹ Đội", "Kém", "Rất tốt"],
        ],
        dvgd(),
    )
    assert p.responses["service"].tolist() == ["Bán trú", "Câu lạc bộ", "Quỹ Đội"]
    assert p.responses["DICH_VU"].tolist() == ["Bán trú", "Câu lạc bộ", "Quỹ Đội"]
    assert p.responses["NHOM_DICH_VU"].tolist()[2] == "Tự nguyện"
    assert cells(p) == pytest.approx(
        {"C2": 10.0, "D2": 7.0, "C3": 5.0, "D3": 10.0, "C4": 0.0, "D4": math.nan}, nan_ok=True
    )
    assert set(p.answers["kind"]) == {"level"}
    assert p.missing_questions == ["C3"]


def test_service_review_without_its_service_column() -> None:
    p = parse([["Giá cả"], ["Tốt"]], dvgd())
    assert p.missing_questions == ["C1", "C3", "DICH_VU"]
    assert p.responses["service"].tolist() == [None]


# --------------------------------------------------------------------------------------------
# The edge-case workbook, in the three formats


@pytest.fixture(scope="module", params=FORMATS)
def parsed(request: pytest.FixtureRequest) -> tuple[str, dict[str, Parsed]]:
    fmt = request.param
    content = (FIXTURES / f"edge_cases.{fmt}").read_bytes()
    tables = read_tables(content, f"edge_cases.{fmt}", Limits())
    return fmt, {t.name: parse_table(t, CMHS_TH, SALT) for t in tables}


# sheet: (header row, sheet rows of the responses kept, number of answers)
KEPT = {
    "tieu_de": (6, [7, 8, 9], 15),
    "dong_trong": (1, [2, 5, 7], 9),
    "tong_cong": (1, [2, 3, 4], 9),
    "mot_trieu_dong": (1, [2, 3], 6),
    "ngay_so": (1, [2, 3, 4], 6),
    "nfd": (1, [2, 3], 4),
    "luoi": (1, [2, 3], 8),
    "danh_so": (1, [2, 3], 14),
    "nhan": (1, list(range(2, 15)), 13),
    "ngay_chu": (1, [2, 3, 4, 5], 8),
}


@pytest.mark.parametrize("sheet", sorted(KEPT))
def test_edge_case_rows_kept(parsed: tuple[str, dict[str, Parsed]], sheet: str) -> None:
    _, sheets = parsed
    p = sheets[sheet]
    header_row, rows, n_answers = KEPT[sheet]
    assert p.header_row == header_row
    assert p.responses["row"].tolist() == rows
    assert p.responses["response_no"].tolist() == list(range(1, len(rows) + 1))
    assert len(p.answers) == n_answers
    assert p.sheet == sheet and p.questionnaire == "CMHS_TH"


def test_edge_title_block(parsed: tuple[str, dict[str, Parsed]]) -> None:
    p = parsed[1]["tieu_de"]
    assert list(p.columns) == ["LOP", "TC1", "TC2", "CS1", "CHUNG", "MONG_DOI", "Y_KIEN"]
    assert p.unknown_columns == []  # STT is expected noise
    assert cells(p)["D7"] == 5.0 and cells(p)["G8"] == 90.0
    assert p.responses["Y_KIEN"].tolist() == ["Trường tốt", None, "Trường tốt"]
    assert len(p.rejections) == 0  # identical rows 7 and 9 have no timestamp: both kept


def test_edge_totals_and_signature(parsed: tuple[str, dict[str, Parsed]]) -> None:
    p = parsed[1]["tong_cong"]
    assert max(p.answers["row"]) == 4  # nothing from "Tổng cộng" (row 5) or "Hiệu trưởng" (7)
    assert p.n_rows_read == 5


def test_edge_formulas(parsed: tuple[str, dict[str, Parsed]]) -> None:
    fmt, sheets = parsed
    p = sheets["cong_thuc"]
    if fmt == "xlsx":
        reason = "công thức không có giá trị"
        assert rejected(p) == [
            ("D2", "CHUNG", "formula_without_value", reason),
            ("C3", "TC2", "formula_without_value", reason),
            ("E3", "MONG_DOI", "formula_without_value", reason),
        ]
        assert p.rejections["raw_value"].tolist() == ["=ROUND((B2+C2)/2,0)", "=B3", "=50+30"]
        assert p.rejections["response_no"].tolist() == [1, 2, 2]
        assert len(p.answers) == 9
        assert not {"D2", "C3", "E3"} & set(cells(p))
    else:  # LibreOffice computed the formulas while converting
        assert len(p.rejections) == 0
        assert len(p.answers) == 12
        assert {k: cells(p)[k] for k in ("D2", "C3", "E3")} == {"D2": 5.0, "C3": 3.0, "E3": 80.0}
    assert p.responses["row"].tolist() == [2, 3, 4]


def test_edge_serial_dates(parsed: tuple[str, dict[str, Parsed]]) -> None:
    p = parsed[1]["ngay_so"]
    assert p.responses["submitted_at"].tolist() == [
        pd.Timestamp("2024-10-29 09:05:31"),
        pd.Timestamp("2024-10-30 14:00:00"),
        pd.Timestamp("2024-11-01 00:00:00"),
    ]


def test_edge_nfd(parsed: tuple[str, dict[str, Parsed]]) -> None:
    p = parsed[1]["nfd"]
    assert list(p.columns) == ["TC1", "CS1", "LOP"]
    assert p.responses["submitted_at"].notna().all()  # NFD "Dấu thời gian" found
    assert cells(p) == {"B2": 5.0, "C2": 4.0, "B3": 2.0, "C3": 3.0}
    assert p.responses["LOP"].tolist() == ["5Ạ", "5B"]


def test_edge_grid_headers_duplicate_and_privacy(parsed: tuple[str, dict[str, Parsed]]) -> None:
    p = parsed[1]["luoi"]
    assert list(p.columns) == ["TC1", "TC2", "CS1", "CHUNG"]
    assert rejected(p) == [("row 4", None, "duplicate_response", "Trùng lặp với dòng 2")]
    assert p.personal_columns == ["Địa chỉ email", "Họ và tên", "Số điện thoại"]
    assert p.responses["respondent_hash"].tolist() == [
        sha("me.an@example.vn"),
        sha("ba@example.vn"),
    ]
    text = p.responses.astype(str).to_csv() + p.answers.astype(str).to_csv()
    assert "example.vn" not in text and "Nguyễn" not in text and "0912345678" not in text


def test_edge_numbered_headers(parsed: tuple[str, dict[str, Parsed]]) -> None:
    p = parsed[1]["danh_so"]
    assert list(p.columns) == ["TC1", "TC2", "TC3", "TC4", "TC5", "CS1", "CHUNG"]
    assert p.unknown_columns == ["Câu 13. Con có thích đi học không?"]
    assert cells(p)["G3"] == 4.0


#: LABEL_VALUES of tests/fixtures/make_fixtures.py, B2..B14 of sheet "nhan".
LABEL_VALUES = [1, 1, 2, 3, 3, 3, 4, 5, 4, None, None, None, None]


def test_edge_label_variants(parsed: tuple[str, dict[str, Parsed]]) -> None:
    p = parsed[1]["nhan"]
    values = [None if math.isnan(v) else v for v in p.answers["value"]]
    assert values == LABEL_VALUES
    unreadable = p.answers[p.answers["value"].isna()]
    assert [
        cell_address(r, c) for r, c in zip(unreadable["row"], unreadable["col"], strict=True)
    ] == [
        "B11",
        "B12",
        "B13",
        "B14",
    ]
    assert unreadable["raw"].tolist() == ["6", "0", "Không biết", "x"]
    assert len(p.rejections) == 0


def test_edge_dayfirst_text(parsed: tuple[str, dict[str, Parsed]]) -> None:
    p = parsed[1]["ngay_chu"]
    assert p.responses["submitted_at"].tolist()[:3] == [
        pd.Timestamp("2024-10-29 09:05:31"),
        pd.Timestamp("2024-10-30 14:00:00"),
        pd.Timestamp("2024-11-01 00:00:00"),
    ]
    assert pd.isna(p.responses["submitted_at"].iloc[3])
    assert rejected(p) == [
        ("A5", TIMESTAMP, "unreadable_timestamp", "Không đọc được dấu thời gian")
    ]
    assert p.rejections["raw_value"].tolist() == ["hôm qua"]


def test_edge_workbook_pick_table(parsed: tuple[str, dict[str, Parsed]]) -> None:
    fmt = parsed[0]
    tables = read_tables((FIXTURES / f"edge_cases.{fmt}").read_bytes(), "e", Limits())
    by_name = {t.name: t for t in tables}
    # tieu_de and danh_so both match seven items, the most of any sheet: the first one wins.
    assert pick_table(tables, CMHS_TH).name == "tieu_de"
    assert pick_table([by_name["nhan"], by_name["danh_so"]], CMHS_TH).name == "danh_so"
    assert pick_table(tables, CMHS_TH, "NHAN").name == "nhan"


TC1_TEXT = "Thông tin tuyển sinh được cung cấp đầy đủ, kịp thời"


@pytest.mark.parametrize(
    ("code", "header", "renamed"),
    [
        ("TC1", "Câu 1. Thông tin tuyển sinh được cung cấp đầy đủ, kịp thời", False),
        ("TC1", f"Tiếp cận dịch vụ giáo dục [{TC1_TEXT}]", False),
        ("TC1", "TC1", False),
        ("TC1", "THÔNG TIN TUYỂN SINH được cung cấp đầy đủ,   kịp thời", False),
        ("TC1", f"Mức độ tiếp cận [{TC1_TEXT}]", True),
        ("CHUNG", "Câu 25. Mức độ hài lòng chung", True),
    ],
)
def test_renamed_questions_reports_drift_from_the_form_wording(
    code: str, header: str, renamed: bool
) -> None:
    cmhs = load_questionnaire(SCHEMAS_DIR / "CMHS_TH.yaml")
    table = Table("Sheet1", [["Dấu thời gian", header], ["15/10/2024 8:00:00", "Hài lòng"]])
    parsed = parse_table(table, cmhs, "salt")
    assert parsed.columns.get(code) == header
    assert renamed_questions(parsed, cmhs) == ({code: header} if renamed else {})
