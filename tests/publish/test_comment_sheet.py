"""The workbooks' "Ý kiến" sheet: themes by count with a bar chart, "khác" last, quotes masked;
no sheet where nobody commented. Rendered with LibreOffice to check it prints."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy.engine import Engine

from flows.comments import build_comment_mart, load_codebook
from flows.publish.labels import COMMENT_SHEET
from flows.publish.workbooks import plan_workbooks, write_scope
from schemas import load_questionnaires
from tests.factories import (
    CAMPAIGN,
    RUN_1_START,
    SCHOOLS,
    load_campaign,
    src,
    submissions,
    to_pdf,
)
from warehouse.db import connect, migrate

#: TH1's 40 parents (unit U1) write these in turn; TH3's (unit U2) write nothing.
TH1_COMMENTS = [
    "Nhà vệ sinh bẩn, con không dám đi, mong nhà trường sửa chữa sớm.",
    "nha ve sinh hoi qua, thieu nuoc rua tay",
    "Các khoản thu đầu năm nhiều quá, gọi 0912 345 678 để trao đổi",
    "Cô Lan dạy thêm ở nhà, ép các cháu học thêm, liên hệ me.be@gmail.com",
    "Cảm ơn thầy cô đã tận tâm với các con",
    "Không có ý kiến",
    "",
    "Trường nên trồng thêm hoa",
]


def _answers() -> dict[Any, list[dict[str, Any]]]:
    answers = submissions(2025, previous=False)
    for row, comment in zip(
        answers[src("TH1", "CMHS_TH")], itertools.cycle(TH1_COMMENTS), strict=False
    ):
        row["Y_KIEN"] = comment
    for row in answers[src("TH3", "CMHS_TH")]:
        row["Y_KIEN"] = "không"
    return answers


def _workbooks(engine: Engine, out: Path) -> dict[str, Path]:
    load_campaign(engine, CAMPAIGN, SCHOOLS, _answers(), "run-1", RUN_1_START)
    build_comment_mart(engine, CAMPAIGN.id, load_codebook())
    data, jobs = plan_workbooks(engine, CAMPAIGN.id, out, load_questionnaires())
    return {scope.code: write_scope(data, scope, path) for scope, path in jobs}


def _values(path: Path) -> list[list[Any]]:
    ws = load_workbook(path)[COMMENT_SHEET]
    return [[c.value for c in row] for row in ws.iter_rows()]


@pytest.mark.slow
def test_the_comment_sheet_lists_themes_by_count_with_a_chart_and_masked_quotes(
    engine: Engine, tmp_path: Path
) -> None:
    paths = _workbooks(engine, tmp_path)
    rows = _values(paths["U1"])
    table = {r[0]: r[2] for r in rows if isinstance(r[2], int)}
    # TH1: 40 answers cycling through 8 comments, 5 each; MN1 and TH2 are too small to show
    # their own figures but count in the unit: their comments match no theme ("khác").
    assert table["Nhà vệ sinh và nước uống"] == 10
    assert table["Khoản thu và đóng góp"] == 5
    assert table["Dạy thêm, học thêm"] == 5
    labels = [r[0] for r in rows if isinstance(r[2], int)]
    th = labels[: labels.index("Ý kiến khác") + 1]
    assert th[0] == "Nhà vệ sinh và nước uống" and th[-1] == "Ý kiến khác"
    text = "\n".join(str(v) for r in rows for v in r if v is not None)
    assert "Trích dẫn ý kiến tiêu biểu" in text
    assert "[số điện thoại]" in text and "[email]" in text and "Cô [tên] dạy thêm" in text
    for personal in ("0912 345 678", "@gmail.com", "Lan", "Nguyễn Văn Bình", "ph.huynh"):
        assert personal not in text
    ws = load_workbook(paths["U1"])[COMMENT_SHEET]
    assert len(ws._charts) >= 1  # noqa: SLF001 - openpyxl keeps a sheet's charts here
    assert COMMENT_SHEET in load_workbook(paths[CAMPAIGN.province_code]).sheetnames
    # U2's parents wrote "không" only; U3 has no answers at all: no sheet.
    assert COMMENT_SHEET not in load_workbook(paths["U2"]).sheetnames
    assert COMMENT_SHEET not in load_workbook(paths["U3"]).sheetnames


@pytest.mark.soffice
@pytest.mark.slow
def test_the_comment_sheet_prints(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    migrate(engine)
    unit = _workbooks(engine, tmp_path / "out")["U1"]
    engine.dispose()
    wb = load_workbook(unit)
    for name in wb.sheetnames:
        if name != COMMENT_SHEET:
            del wb[name]
    only = tmp_path / "y_kien.xlsx"
    wb.save(only)
    [pdf] = to_pdf([only], tmp_path)
    assert pdf.read_bytes().startswith(b"%PDF")
