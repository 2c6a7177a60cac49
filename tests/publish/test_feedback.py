"""Feedback workbooks from a hand-made quarantine, on SQLite and PostgreSQL.

School S1 has rejected values (one written like a formula, one holding an e-mail and a phone
number), a duplicate row, an unknown column and a missing question; S2's file could not be
used at all; S3 loaded cleanly. Each rejected cell must be named in S1's workbook with its
reason and how to fix it; S3 gets no workbook.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy.engine import Engine

from flows.privacy import mask_personal
from flows.publish.feedback import (
    FIX_HINTS,
    ISSUES_HEADERS,
    ISSUES_SHEET,
    STATUS_HEADERS,
    STATUS_SHEET,
    feedback_path,
    write_feedback,
)
from flows.publish.labels import REASON_OTHER, RULE_LABELS, reason_label
from flows.validate import fix_hint
from schemas.questionnaire import Item, Questionnaire
from schemas.records import Fetched, School, Source
from tests.factories import make_campaign, make_parsed
from warehouse.ledger import record_failure, start_run
from warehouse.load import replace_source
from warehouse.marts import rebuild_marts
from warehouse.registry import sync_registry

CAMPAIGN = make_campaign()
C = CAMPAIGN.id
AFTER_DEADLINE = dt.datetime(2024, 12, 5, 1, 30)

SAT = Questionnaire(
    code="SAT",
    version="1",
    name="Phiếu khảo sát cha mẹ học sinh",
    respondent="Cha mẹ học sinh",
    kind="satisfaction",
    levels=("TH",),
    dimensions={"TIEP_CAN": "Tiếp cận", "CSVC": "Cơ sở vật chất", "CHUNG": "Hài lòng chung"},
    items=(
        Item(code="A1", text="Thông tin tuyển sinh", kind="likert", dimension="TIEP_CAN"),
        Item(code="B1", text="Phòng học đủ ánh sáng", kind="likert", dimension="CSVC"),
        Item(code="CHUNG", text="Hài lòng chung", kind="likert", dimension="CHUNG"),
    ),
)
SCHOOLS = [
    School("S1", "Trường Tiểu học Một", "TH", "U1", "Phường 1", 300),
    School("S2", "Trường Tiểu học Hai", "TH", "U1", "Phường 1", 200),
    School("S3", "Trường Tiểu học Ba", "TH", "U1", "Phường 1", 100),
]
S1 = Source("S1", "SAT", "excel", "nop/S1.xlsx")
S2 = Source("S2", "SAT", "excel", "nop/S2.xlsx")
S3 = Source("S3", "SAT", "excel", "nop/S3.xlsx")
SHEET = "Câu trả lời 1"


def rejection(
    scope: str, row: int, col: int | None, code: str | None, raw: str | None, rule: str, reason: str
) -> dict[str, Any]:
    return {
        "scope": scope,
        "sheet": SHEET,
        "row": row,
        "col": col,
        "question_code": code,
        "raw_value": raw,
        "rule": rule,
        "reason": reason,
        "response_no": None if scope == "response" else row - 1,
    }


#: S1's rejections, deliberately out of sheet order. Columns: A1 is D, B1 is E, CHUNG is F.
S1_REJECTIONS = [
    rejection("value", 7, 6, "CHUNG", "Không biết", "likert_unreadable", "Không phải mức 1-5"),
    rejection("value", 3, 4, "A1", "=1+1", "likert_unreadable", "Không phải mức 1-5"),
    rejection(
        "value",
        3,
        5,
        "B1",
        "gọi 0912 345 678 hoặc a.b@truong.edu.vn",
        "likert_unreadable",
        "Không phải mức 1-5",
    ),
    rejection("response", 6, None, None, None, "duplicate_response", "Trùng lặp với dòng 5"),
    rejection("value", 5, 27, "CHUNG", "6", "likert_out_of_range", "Ngoài thang 1-5"),
]


def fetched(source: Source) -> Fetched:
    return Fetched(
        source=source,
        content=b"",
        fingerprint=source.location,
        archive_path=Path("archive") / source.location,
        filename=Path(source.location).name,
        modified_at=dt.datetime(2024, 11, 20, 8, 0),
    )


@pytest.fixture
def warehouse(engine: Engine) -> Engine:
    sync_registry(engine, CAMPAIGN, SCHOOLS, {"SAT": SAT}, sources=[S1, S2, S3])
    start_run(engine, "r1", C)
    s1 = make_parsed(
        SAT, [{"A1": 4, "B1": 5, "CHUNG": 4}] * 3, sheet=SHEET, rejections=S1_REJECTIONS
    )
    s1 = dataclasses.replace(
        s1, unknown_columns=["Ông/Bà biết khảo sát qua đâu?"], missing_questions=["B1"]
    )
    replace_source(engine, C, "r1", fetched(S1), s1)
    record_failure(engine, C, "r1", S2, "S2 nop/S2.xlsx: not a spreadsheet", fetched(S2))
    clean = make_parsed(SAT, [{"A1": 5, "B1": 5, "CHUNG": 5}], sheet=SHEET)
    replace_source(engine, C, "r1", fetched(S3), dataclasses.replace(clean, unknown_columns=[]))
    rebuild_marts(engine, C, AFTER_DEADLINE, CAMPAIGN.deadline_at)
    return engine


def sheet_rows(path: Path, title: str) -> list[tuple[Any, ...]]:
    ws = load_workbook(path)[title]
    return [tuple(r) for r in ws.iter_rows(values_only=True)]


def issue_rows(path: Path) -> list[dict[str, Any]]:
    rows = sheet_rows(path, ISSUES_SHEET)
    header = rows.index(ISSUES_HEADERS)
    return [dict(zip(ISSUES_HEADERS, r, strict=True)) for r in rows[header + 1 :]]


def rule(row: dict[str, Any]) -> str:
    """The rule's code, from "name\n(code)"."""
    return str(row["Loại lỗi (mã)"]).rsplit("(", 1)[-1].rstrip(")")


def question_code(row: dict[str, Any]) -> str | None:
    """The question's code, from "code: wording"."""
    return str(row["Câu hỏi"]).split(":")[0] if row["Câu hỏi"] else None


def test_feedback_names_every_rejected_cell(warehouse: Engine, tmp_path: Path) -> None:
    written = write_feedback(warehouse, C, tmp_path)
    assert written == [feedback_path(tmp_path, "S1"), feedback_path(tmp_path, "S2")]
    assert written[0] == tmp_path / "feedback" / "S1.xlsx"

    rows = issue_rows(written[0])
    where = [(r["Ô"], question_code(r), rule(r)) for r in rows]
    # sheet order: row 3 (D3, E3), 5 (AA5), 6 (the duplicate row), 7 (F7), then the file's columns
    assert where == [
        ("D3", "A1", "likert_unreadable"),
        ("E3", "B1", "likert_unreadable"),
        ("AA5", "CHUNG", "likert_out_of_range"),
        ("Dòng 6", None, "duplicate_response"),
        ("F7", "CHUNG", "likert_unreadable"),
        (None, "B1", "missing_question"),
        (None, None, "unknown_column"),
    ]
    assert [r["STT"] for r in rows] == list(range(1, 8))
    assert {(r["Mẫu phiếu"], r["Tệp"], r["Trang tính"]) for r in rows} == {
        ("SAT", "S1.xlsx", SHEET)
    }
    # the rule's Vietnamese name, its code below it for the data officer
    assert rows[0]["Loại lỗi (mã)"] == f"{RULE_LABELS['likert_unreadable']}\n(likert_unreadable)"

    by_cell = {r["Ô"]: r for r in rows if r["Ô"]}
    assert by_cell["F7"]["Giá trị trong tệp"] == "Không biết"
    assert by_cell["F7"]["Lý do"] == "Không phải mức 1-5"
    assert by_cell["F7"]["Cách sửa"] == fix_hint("likert_unreadable") != ""
    assert by_cell["AA5"]["Cách sửa"] == fix_hint("likert_out_of_range") != ""
    duplicate = next(r for r in rows if rule(r) == "duplicate_response")
    assert duplicate["Cách sửa"] == FIX_HINTS["duplicate_response"]
    missing = next(r for r in rows if rule(r) == "missing_question")
    assert missing["Câu hỏi"] == "B1: Phòng học đủ ánh sáng"  # the question's wording
    assert missing["Giá trị trong tệp"] is None
    unknown = next(r for r in rows if rule(r) == "unknown_column")
    assert unknown["Giá trị trong tệp"] == "Ông/Bà biết khảo sát qua đâu?"

    # respondent text is text, never a formula; e-mails and phone numbers are not repeated
    ws = load_workbook(written[0])[ISSUES_SHEET]
    formula_like = next(c for c in ws["G"] if c.value == "=1+1")
    assert formula_like.data_type == "s" and formula_like.quotePrefix
    assert by_cell["E3"]["Giá trị trong tệp"] == "gọi [số điện thoại] hoặc [email]"


def test_feedback_for_an_unusable_file_and_the_status_sheet(
    warehouse: Engine, tmp_path: Path
) -> None:
    s1, s2 = write_feedback(warehouse, C, tmp_path)
    (failure,) = issue_rows(s2)
    assert (failure["Tệp"], rule(failure), failure["Ô"]) == ("S2.xlsx", "source_unusable", None)
    # read's English message ("not a spreadsheet"), as the school reads it
    assert failure["Lý do"] == "Tệp không phải là bảng tính (Excel, ODS hoặc CSV)"
    assert failure["Cách sửa"] == FIX_HINTS["source_unusable"]

    status = sheet_rows(s2, STATUS_SHEET)
    header = status.index(STATUS_HEADERS)
    assert status[header + 1][:5] == (
        "SAT",
        "Phiếu khảo sát cha mẹ học sinh",
        "Tệp lỗi, cần nộp lại",
        0,
        1,
    )
    status = sheet_rows(s1, STATUS_SHEET)
    row = status[status.index(STATUS_HEADERS) + 1]
    assert row[:5] == ("SAT", "Phiếu khảo sát cha mẹ học sinh", "Đã nộp", 3, 5)
    assert isinstance(row[5], dt.datetime)
    assert sheet_rows(s1, ISSUES_SHEET)[0][0] == "Trường Tiểu học Một (S1)"


def test_feedback_is_deterministic_and_stale_files_are_removed(
    warehouse: Engine, tmp_path: Path
) -> None:
    first = {p: p.read_bytes() for p in write_feedback(warehouse, C, tmp_path)}
    stale = tmp_path / "feedback" / "S9.xlsx"
    stale.write_bytes(b"from an earlier night")
    again = {p: p.read_bytes() for p in write_feedback(warehouse, C, tmp_path)}
    assert again == first
    assert not stale.exists()

    # S1 re-submits a clean file: its workbook goes, S2's stays
    good = make_parsed(SAT, [{"A1": 4, "B1": 4, "CHUNG": 4}], sheet=SHEET)
    resubmitted = dataclasses.replace(fetched(S1), fingerprint="clean")
    replace_source(warehouse, C, "r1", resubmitted, dataclasses.replace(good, unknown_columns=[]))
    assert write_feedback(warehouse, C, tmp_path) == [feedback_path(tmp_path, "S2")]
    assert sorted(p.name for p in (tmp_path / "feedback").iterdir()) == ["S2.xlsx"]


def test_nothing_to_fix_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    sync_registry(engine, CAMPAIGN, SCHOOLS, {"SAT": SAT}, sources=[S3])
    assert write_feedback(engine, C, tmp_path) == []
    assert not (tmp_path / "feedback").exists()


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("Hài lòng", "Hài lòng"),
        ("liên hệ nguyen.van.a@gmail.com", "liên hệ [email]"),
        ("0912345678", "[số điện thoại]"),
        ("+84 912 345 678", "[số điện thoại]"),
        ("29/10/2024 9:05:31", "29/10/2024 9:05:31"),
        ("80%", "80%"),
        (None, None),
    ],
)
def test_mask_personal(raw: str | None, masked: str | None) -> None:
    assert mask_personal(raw) == masked


def test_every_rule_a_school_can_meet_has_a_vietnamese_name() -> None:
    suites = Path(__file__).resolve().parents[2] / "expectations"
    rules = set(
        re.findall(r'"rule": "([a-z_]+)"', "".join(p.read_text() for p in suites.glob("*.json")))
    )
    rules |= {"duplicate_response", "unreadable_timestamp", "formula_without_value"}
    rules |= {"control_characters", "source_unusable", "unknown_column", "missing_question"}
    rules.add("renamed_column")
    assert rules - RULE_LABELS.keys() == set()


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("S5.xlsx: not a spreadsheet (unrecognised binary content)", "Tệp không phải là bảng tính"),
        ("a.csv: text in an unknown encoding (byte 1); save it as 'CSV UTF-8'", "Tệp CSV không"),
        ("a.xlsx: the file is password-protected", "Tệp có đặt mật khẩu"),
        ("a.xlsx: damaged file (only 12 bytes: cut off?)", "Tệp bị hỏng"),
        ("Tệp_Đông.xlsx: the file is empty", "Tệp rỗng"),
        ("sheet 'X': no header row of CMHS_TH (…) in the first 30 rows", "Không tìm thấy dòng"),
        (
            "sheet 'X': no header row of CMHS_TH (…) in the first 30 rows; expected headers "
            "such as 'A'; found '[email]', 'Lớp'",
            "Không tìm thấy dòng tiêu đề của mẫu phiếu trong trang tính; các ô đầu tiên: "
            "'[email]', 'Lớp'",
        ),
        ("something new went wrong", REASON_OTHER),
    ],
)
def test_a_file_failure_is_told_in_vietnamese(message: str, expected: str) -> None:
    assert reason_label("source_unusable", message).startswith(expected)
    # reasons of the suites and the parser are Vietnamese already
    assert reason_label("likert_unreadable", "Không phải mức 1-5") == "Không phải mức 1-5"
