"""Unit summary workbooks: hand-written mart rows in, the same figures out, text never a formula."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import Workbook, load_workbook

from flows.workbooks import (
    PCT_FORMAT,
    SUMMARY_HEADERS,
    SUMMARY_SHEET,
    safe_file_part,
    save_workbook,
    write_cell,
    write_unit_workbooks,
)
from schemas import load_questionnaires
from warehouse import tables
from warehouse.db import connect, migrate

CAMPAIGN = "HN-2024"
HEADER_ROW = 5

# unit_code, level, questionnaire, dimension, n_schools, n_respondents, n_answers, mean,
# pct_satisfied, pct_dissatisfied. Listed out of report order on purpose.
MART_ROWS = [
    ("XP01", "TH", "CMHS_TH", "CHUNG", 2, 80, 79, 4.2531645569620250, 86.07594936708861, 2.5316),
    ("XP01", "TH", "CMHS_TH", "TIEP_CAN", 2, 80, 398, 4.1, 84.17085427135679, 3.0150753768),
    ("XP01", "MN", "CMHS_MN", "CSVC", 1, 3, 15, 2.8, 40.0, 33.333333333333336),
    ("XP01", "TH", "CMHS_TH", "NEW_DIM", 1, 10, 10, 3.0, None, None),
    ("SGD", "THPT", "HS_THPT", "MOI_TRUONG", 4, 200, 1000, 4.5, 93.1, 1.2),
    ("SGD", "THPT", "CMHS_THPT", "MOI_TRUONG", 4, 180, 900, 4.4, 91.25, 1.5),
]
UNITS = [
    ("XP01", "Phường Ba Đình"),
    ("XP02", "Xã Sóc Sơn"),  # no figures yet
    ("SGD", '=HYPERLINK("http://example.com","Sở GDĐT")'),  # hostile name from a registry
]


@pytest.fixture()
def engine(tmp_path: Path) -> sa.Engine:
    """A migrated SQLite warehouse holding the campaign, its units and the mart rows above."""
    eng = connect(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    migrate(eng)
    with eng.begin() as conn:
        for cid, name in ((CAMPAIGN, "@Khảo sát năm học 2024-2025"), ("OTHER", "Đợt khác")):
            conn.execute(
                sa.insert(tables.campaign).values(
                    campaign_id=cid,
                    name=name,
                    school_year="2024-2025",
                    opens=dt.date(2024, 10, 21),
                    closes=dt.date(2024, 11, 15),
                    deadline=dt.date(2024, 11, 20),
                    province_code="01",
                    timezone="Asia/Ho_Chi_Minh",
                )
            )
        conn.execute(
            sa.insert(tables.unit),
            [{"campaign_id": CAMPAIGN, "unit_code": c, "unit_name": n} for c, n in UNITS]
            + [{"campaign_id": "OTHER", "unit_code": "XP09", "unit_name": "Không in"}],
        )
        cols = [c.name for c in tables.mart_unit_dimension.columns]
        conn.execute(
            sa.insert(tables.mart_unit_dimension),
            [dict(zip(cols, (CAMPAIGN, *r), strict=True)) for r in MART_ROWS]
            + [dict(zip(cols, ("OTHER", *MART_ROWS[0]), strict=True))],
        )
    return eng


def _table(path: Path) -> list[tuple[object, ...]]:
    ws = load_workbook(path)[SUMMARY_SHEET]
    return [row for row in ws.iter_rows(min_row=HEADER_ROW + 1, values_only=True)]


def test_one_workbook_per_unit_named_campaign_unit(engine: sa.Engine, tmp_path: Path) -> None:
    out = tmp_path / "output"
    paths = write_unit_workbooks(engine, CAMPAIGN, out, load_questionnaires())
    assert [p.name for p in paths] == ["HN-2024_SGD.xlsx", "HN-2024_XP01.xlsx", "HN-2024_XP02.xlsx"]
    assert sorted(out.iterdir()) == sorted(paths)  # nothing for the other campaign's unit


def test_cells_equal_the_mart_rows(engine: sa.Engine, tmp_path: Path) -> None:
    qs = load_questionnaires()
    write_unit_workbooks(engine, CAMPAIGN, tmp_path, qs)
    wb = load_workbook(tmp_path / "HN-2024_XP01.xlsx")
    assert wb.sheetnames == [SUMMARY_SHEET]
    ws = wb[SUMMARY_SHEET]
    assert ws["A1"].value == "Phường Ba Đình"
    assert ws["A2"].value == "@Khảo sát năm học 2024-2025"
    assert "2024-2025" in ws["A3"].value and "XP01" in ws["A3"].value
    assert [c.value for c in ws[HEADER_ROW]] == list(SUMMARY_HEADERS)
    assert ws.freeze_panes == f"A{HEADER_ROW + 1}"

    mn, tc, chung, new = MART_ROWS[2], MART_ROWS[1], MART_ROWS[0], MART_ROWS[3]
    # Report order: level (MN before TH), then the questionnaire's own dimension order, and a
    # dimension the questionnaire does not know last, under its code.
    expected = [
        ("Mầm non", "Cha mẹ trẻ", "Cơ sở vật chất, trang thiết bị dạy học", *mn[5:]),
        ("Tiểu học", "Cha mẹ học sinh", "Tiếp cận dịch vụ giáo dục", *tc[5:]),
        ("Tiểu học", "Cha mẹ học sinh", "Hài lòng chung", *chung[5:]),
        ("Tiểu học", "Cha mẹ học sinh", "NEW_DIM", *new[5:]),
    ]
    got = _table(tmp_path / "HN-2024_XP01.xlsx")
    assert len(got) == len(expected)
    for row, exp in zip(got, expected, strict=True):
        # xlsx keeps 15-17 significant digits of a double; the last one may differ.
        assert row == pytest.approx(exp, rel=1e-14)
    # Percentages are stored unrounded and shown with one decimal.
    assert ws.cell(HEADER_ROW + 1, 7).number_format == PCT_FORMAT
    assert ws.cell(HEADER_ROW + 1, 8).number_format == PCT_FORMAT
    assert ws.cell(HEADER_ROW + 1, 6).number_format == "0.00"

    sgd = _table(tmp_path / "HN-2024_SGD.xlsx")
    assert [(r[1], r[3]) for r in sgd] == [("Cha mẹ học sinh", 180), ("Học sinh, học viên", 200)]


def test_unit_without_figures_says_so(engine: sa.Engine, tmp_path: Path) -> None:
    write_unit_workbooks(engine, CAMPAIGN, tmp_path, load_questionnaires())
    ws = load_workbook(tmp_path / "HN-2024_XP02.xlsx")[SUMMARY_SHEET]
    assert ws["A1"].value == "Xã Sóc Sơn"
    assert ws.cell(HEADER_ROW + 1, 1).value.startswith("Chưa có số liệu")


def test_text_from_the_warehouse_is_never_a_formula(engine: sa.Engine, tmp_path: Path) -> None:
    path = write_unit_workbooks(engine, CAMPAIGN, tmp_path, load_questionnaires())[0]
    ws = load_workbook(path)[SUMMARY_SHEET]
    assert ws["A1"].value == UNITS[2][1]
    assert ws["A1"].data_type == "s"
    assert ws["A2"].data_type == "s"
    with zipfile.ZipFile(path) as z:
        sheet_xml = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml


@pytest.mark.parametrize(
    "text", ["=1+1", "+84 912 345 678", "-Đề nghị thêm cây xanh", "@SUM(A1:A3)", "=)) vui"]
)
def test_write_cell_keeps_formula_like_text_as_text(tmp_path: Path, text: str) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    write_cell(ws, 1, 1, text)
    write_cell(ws, 2, 1, -5)  # numbers stay numbers
    write_cell(ws, 3, 1, "Bình thường\x07")  # a control character XML cannot hold
    save_workbook(wb, tmp_path / "x.xlsx")
    back = load_workbook(tmp_path / "x.xlsx").active
    assert back is not None
    assert back["A1"].value == text and back["A1"].data_type == "s"
    assert back["A1"].quotePrefix  # Excel keeps it text when the cell is edited
    assert back["A2"].value == -5 and back["A2"].data_type == "n"
    assert back["A3"].value == "Bình thường"


def test_output_is_reproducible(engine: sa.Engine, tmp_path: Path) -> None:
    qs = load_questionnaires()
    first = write_unit_workbooks(engine, CAMPAIGN, tmp_path / "a", qs)
    second = write_unit_workbooks(engine, CAMPAIGN, tmp_path / "b", qs)
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
    props = load_workbook(first[0]).properties
    assert props.created == props.modified == dt.datetime(2020, 1, 1)


@pytest.mark.parametrize(
    ("code", "expected"),
    [("XP01", "XP01"), ("../../etc", "_.._etc"), ("Phường 1", "Ph__ng_1"), ("", "_")],
)
def test_registry_codes_cannot_escape_the_output_folder(code: str, expected: str) -> None:
    assert safe_file_part(code) == expected
    assert "/" not in safe_file_part(code)
