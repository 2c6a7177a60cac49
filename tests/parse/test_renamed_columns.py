"""Renamed columns: an unknown column paired with the missing question it most resembles."""

from __future__ import annotations

import pytest

from flows.parse.header import pair_renamed_columns
from flows.parse.sheet import parse_table
from schemas import load_questionnaires
from schemas.records import SourceOutcome, Table
from tests.factories import src

Q = load_questionnaires()["CMHS_TH"]
TC1 = "Thông tin tuyển sinh được cung cấp đầy đủ, kịp thời"
TC2 = "Thủ tục nhập học đơn giản, thuận tiện"
TC3 = "Vị trí, địa điểm trường thuận tiện cho việc đi lại"


@pytest.mark.parametrize(
    ("unknown", "missing", "expected"),
    [
        # a word dropped and numbering added: still TC1
        ([(4, "1. Thông tin tuyển sinh rõ ràng, đầy đủ, kịp thời")], ["TC1"], [(4, "TC1")]),
        # typed without accents
        ([(6, "Thu tuc nhap hoc don gian thuan tien")], ["TC1", "TC2"], [(6, "TC2")]),
        # three renamed at once, out of order: each with its own question
        (
            [(9, "Câu 3: Vị trí trường thuận tiện đi lại"), (4, "Thông tin tuyển sinh kịp thời")]
            + [(5, "Thủ tục nhập học đơn giản")],
            ["TC1", "TC2", "TC3"],
            [(4, "TC1"), (5, "TC2"), (9, "TC3")],
        ),
        # a question of the school's own resembles nothing missing
        ([(7, "Ông/Bà biết đến cuộc khảo sát qua đâu?")], ["TC1"], []),
        # nothing missing: nothing to pair
        ([(4, "Thông tin tuyển sinh kịp thời")], [], []),
        # two columns resemble one question: only the closer one is paired
        (
            [(4, "Thông tin tuyển sinh đầy đủ, kịp thời"), (8, "Thông tin tuyển sinh")],
            ["TC1"],
            [(4, "TC1")],
        ),
    ],
)
def test_each_unknown_column_is_paired_with_the_question_it_resembles(
    unknown: list[tuple[int, str]], missing: list[str], expected: list[tuple[int, str]]
) -> None:
    pairs = pair_renamed_columns(unknown, missing, Q)
    assert [(p.col, p.question_code) for p in pairs] == expected
    for p in pairs:
        assert p.question_text == Q.item(p.question_code).text
        assert 0.6 <= p.similarity <= 1


def test_a_stricter_cutoff_pairs_less() -> None:
    unknown = [(4, "Thông tin tuyển sinh kịp thời")]
    assert pair_renamed_columns(unknown, ["TC1"], Q, cutoff=0.6)
    assert not pair_renamed_columns(unknown, ["TC1"], Q, cutoff=0.95)


def test_a_renamed_column_is_rejected_at_its_header_cell_and_named_in_the_drift_line() -> None:
    headers = ["Dấu thời gian", "Lớp", "1. Thông tin tuyển sinh rõ ràng, đầy đủ, kịp thời", TC2]
    table = Table("Câu trả lời", [headers, ["29/10/2024 9:05", "3A", "4", "5"]])
    parsed = parse_table(table, Q, salt="s")
    assert parsed.likely_renamed == {"C": "TC1"}
    assert "TC1" in parsed.missing_questions and len(parsed.unknown_columns) == 1
    (rejection,) = parsed.rejections.to_dict("records")
    assert (rejection["scope"], rejection["row"], rejection["col"]) == ("column", 1, 3)
    assert (rejection["question_code"], rejection["rule"]) == ("TC1", "renamed_column")
    assert "cột C" in rejection["reason"] and "TC1" in rejection["reason"]
    outcome = SourceOutcome(
        src("S1", "CMHS_TH"),
        "loaded",
        unknown_columns=parsed.unknown_columns,
        missing_questions=parsed.missing_questions,
        likely_renamed=parsed.likely_renamed,
    )
    assert outcome.drift.endswith(": column C is probably TC1")
