"""The blank form: filled with openpyxl, read back by read/parse as the answers written."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from flows.parse.header import pick_table
from flows.parse.sheet import parse_table
from flows.publish.labels import LIKERT_LABELS
from flows.publish.template import (
    CHOICES,
    DEFAULT_ROWS,
    FORM_SHEET,
    GUIDE_SHEET,
    HEADER_ROW,
    REVIEW_LEVELS,
    form_headers,
    form_items,
    write_template,
)
from flows.read import read_tables
from flows.settings import Limits
from schemas import load_questionnaires
from schemas.questionnaire import Item, Questionnaire

QS = load_questionnaires()
N_FILLED = 7
#: The value each answer kind reads back as, per label written.
LIKERT_VALUES = {label: float(k) for k, label in LIKERT_LABELS.items()}
YESNO_VALUES = {"Có": 1.0, "Không": 0.0}


def _answer(item: Item, i: int, j: int) -> tuple[Any, Any]:
    """(what a school types into row i, column j; what parse should read), deterministic; some
    cells left empty, as respondents skip questions."""
    if item.kind != "text" and (i + j) % 9 == 0:
        return None, None
    if item.kind == "likert":
        label = CHOICES["likert"][(i + j) % 5]
        return label, LIKERT_VALUES[label]
    if item.kind == "yesno":
        label = CHOICES["yesno"][(i + j) % 2]
        return label, YESNO_VALUES[label]
    if item.kind == "level":
        label = CHOICES["level"][(i + j) % 5]
        return label, float(REVIEW_LEVELS[label])
    if item.kind == "percent":
        return 50 + 5 * i, float(50 + 5 * i)
    text = f"Dịch vụ {i}" if item.code == "DICH_VU" else f"{item.code} {i}"
    return text, text


def _validations(ws: Worksheet) -> dict[str, Any]:
    """Cell address -> the data validation covering it (first data row only)."""
    found = {}
    for dv in ws.data_validations.dataValidation:
        for rng in dv.sqref.ranges:
            if rng.min_row == HEADER_ROW + 1:
                for col in range(rng.min_col, rng.max_col + 1):
                    found[col] = dv
    return found


@pytest.mark.parametrize("code", sorted(QS))
def test_filled_template_parses_back_to_the_answers_written(code: str, tmp_path: Path) -> None:
    q: Questionnaire = QS[code]
    path = write_template(q, tmp_path / f"{code}.xlsx", rows=40)
    wb = load_workbook(path)
    ws = wb[FORM_SHEET]
    items = form_items(q)
    expected: dict[tuple[int, str], Any] = {}
    for i in range(N_FILLED):
        for j, item in enumerate(items):
            typed, value = _answer(item, i, j)
            ws.cell(HEADER_ROW + 1 + i, 2 + j).value = typed
            if value is not None:
                expected[(i + 1, item.code)] = value
    wb.save(tmp_path / "filled.xlsx")

    tables = read_tables((tmp_path / "filled.xlsx").read_bytes(), "filled.xlsx", Limits())
    table = pick_table(tables, q)  # no sheet named: the form must be the best match
    assert table.name == FORM_SHEET
    parsed = parse_table(table, q, salt="s")
    assert parsed.header_row == HEADER_ROW
    assert parsed.unknown_columns == [] and parsed.missing_questions == []
    assert parsed.rejections.empty
    # Numbered but empty rows are no responses.
    assert list(parsed.responses["response_no"]) == list(range(1, N_FILLED + 1))
    got: dict[tuple[int, str], Any] = {}
    for a in parsed.answers.itertuples():
        assert not math.isnan(a.value), (a.question_code, a.raw)
        got[(a.response_no, a.question_code)] = a.value
    for r in parsed.responses.itertuples():
        for item in items:
            if item.kind == "text":
                got[(r.response_no, item.code)] = getattr(r, item.code)
    assert got == expected
    if q.service_item:
        assert list(parsed.responses["service"]) == [f"Dịch vụ {i}" for i in range(N_FILLED)]


@pytest.mark.slow
@pytest.mark.parametrize("code", sorted(QS))
def test_every_answer_column_has_its_dropdown(code: str, tmp_path: Path) -> None:
    q = QS[code]
    path = write_template(q, tmp_path / "t.xlsx")
    ws = load_workbook(path)[FORM_SHEET]
    n_rows = DEFAULT_ROWS[q.kind]
    headers = [c.value for c in ws[HEADER_ROW]]
    assert headers == ["STT", *form_headers(q)]
    assert headers[1:] == [i.text for i in form_items(q)]  # the canonical wording
    assert ws.cell(HEADER_ROW + n_rows, 1).value == n_rows
    validations = _validations(ws)
    for col, item in enumerate(form_items(q), start=2):
        dv = validations.get(col)
        if item.kind == "text":
            assert dv is None, item.code
            continue
        assert dv is not None, item.code
        ref = str(dv.sqref)
        letter = get_column_letter(col)
        assert f"{letter}{HEADER_ROW + 1}:{letter}{HEADER_ROW + n_rows}" in ref.split()
        assert dv.allow_blank and dv.showErrorMessage
        if item.kind == "percent":
            assert (dv.type, dv.formula1, dv.formula2) == ("decimal", "0", "100")
        else:
            assert dv.type == "list"
            assert dv.formula1 == '"' + ",".join(CHOICES[item.kind]) + '"'
    if q.kind == "service_review":  # one row per service: the service first
        assert headers[1] == q.item(q.service_item or "").text


def test_choices_are_the_canonical_labels() -> None:
    assert CHOICES["likert"] == (
        "Rất không hài lòng",
        "Không hài lòng",
        "Bình thường",
        "Hài lòng",
        "Rất hài lòng",
    )
    assert CHOICES["yesno"] == ("Có", "Không")
    assert CHOICES["level"] == ("Tốt", "Khá", "Trung bình", "Yếu", "Kém")


@pytest.mark.slow
def test_guide_sheet_and_no_personal_columns(tmp_path: Path) -> None:
    q = QS["CMHS_TH"]
    wb = load_workbook(write_template(q, tmp_path / "t.xlsx"))
    assert wb.sheetnames == [FORM_SHEET, GUIDE_SHEET]
    text = " ".join(str(v) for row in wb[GUIDE_SHEET].iter_rows(values_only=True) for v in row if v)
    assert "Không ghi họ tên" in text
    assert all(i.text in text for i in q.items)
    headers = " ".join(str(c.value).casefold() for c in wb[FORM_SHEET][HEADER_ROW])
    for personal in ("họ và tên", "điện thoại", "email", "thư điện tử"):
        assert personal not in headers
    assert wb[FORM_SHEET].freeze_panes == f"B{HEADER_ROW + 1}"


def test_ambiguous_wording_is_headed_by_its_code() -> None:
    """Two items worded alike: parse could not tell them apart, so the form heads them
    "CODE. wording", which parse reads by the code."""
    q = Questionnaire(
        code="X",
        version="1",
        name="X",
        respondent="Cha mẹ học sinh",
        kind="satisfaction",
        levels=("TH",),
        dimensions={"TIEP_CAN": "Tiếp cận", "CSVC": "Cơ sở vật chất"},
        items=(
            Item(code="A1", text="Mức độ thuận tiện", kind="likert", dimension="TIEP_CAN"),
            Item(code="B1", text="Mức độ thuận tiện", kind="likert", dimension="CSVC"),
        ),
    )
    assert form_headers(q) == ["A1. Mức độ thuận tiện", "B1. Mức độ thuận tiện"]


def test_template_is_reproducible(tmp_path: Path) -> None:
    q = QS["DVGD_8TC"]
    a = write_template(q, tmp_path / "a.xlsx")
    b = write_template(q, tmp_path / "b.xlsx")
    assert a.read_bytes() == b.read_bytes()
