"""flows/parse/__init__.py: what the speed-ups remember between sheets (cell texts known to name no
scored item, the empty rejections frame) changes no result."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest

from flows.parse.header import find_header_row, highest_score, match_headers, pick_table
from flows.parse.sheet import parse_table
from flows.pipeline import read_ahead
from flows.pipeline.read_ahead import ParseJob, parse_fetched, read_tables_ahead
from flows.read import read_tables
from flows.read.cells import FormulaWithoutValue
from flows.settings import Limits
from schemas.questionnaire import SCHEMAS_DIR, load_questionnaire
from schemas.records import Cell, Parsed, SourceError, Table

CMHS_TH = load_questionnaire(SCHEMAS_DIR / "CMHS_TH.yaml")
TC1 = CMHS_TH.item("TC1").text
TC2 = CMHS_TH.item("TC2").text


def messy_rows() -> list[list[Cell]]:
    return [
        ["SỞ GIÁO DỤC VÀ ĐÀO TẠO", None, None, None, None],
        [1, 2.0, True, dt.datetime(2024, 10, 29), float("nan")],  # no text: never the header
        ["Dấu thời gian", "Địa chỉ email", TC1, TC2, "Lớp"],
        ["29/10/2024 9:05:31", "a@x.vn", "Hài lòng", 4, "3A"],
        ["29/10/2024 9:05:31", "a@x.vn", "Hài lòng", 4, "3A"],  # duplicate
        ["30/10/2024 9:05:31", "b@x.vn", FormulaWithoutValue("=B2"), True, "3B"],
        ["31/10/2024", "c@x.vn", "Rất hài lòng", 5.0, None],
        ["hôm qua", "d@x.vn", "x", "Không biết", "3C"],
        ["Dấu thời gian", "Địa chỉ email", TC1, TC2, "Lớp"],  # repeated header
        ["Tổng cộng", None, 3, 4, None],
    ]


def frames_equal(a: Parsed, b: Parsed) -> None:
    for name in ("responses", "answers", "rejections"):
        pdt.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert (a.header_row, a.columns, a.unknown_columns) == (
        b.header_row,
        b.columns,
        b.unknown_columns,
    )
    assert (a.missing_questions, a.n_rows_read) == (b.missing_questions, b.n_rows_read)


def test_results_do_not_depend_on_what_was_parsed_before() -> None:
    table = Table("S", messy_rows())
    first = parse_table(table, CMHS_TH, "salt")
    # The header searched again (its cells now remembered), the same sheet again, and a copy
    # without the title rows.
    again = Table("P", messy_rows())
    assert find_header_row(again, CMHS_TH) == 2
    assert pick_table([again], CMHS_TH) is again
    frames_equal(first, parse_table(table, CMHS_TH, "salt"))
    rows = messy_rows()
    moved = parse_table(Table("S", rows[2:]), CMHS_TH, "salt")
    assert moved.header_row == 1
    assert moved.answers["row"].tolist() == [r - 2 for r in first.answers["row"].tolist()]
    assert len(moved.rejections) == len(first.rejections) == 3  # duplicate, formula, timestamp


def test_a_row_naming_scored_items_by_number_cells_is_still_seen() -> None:
    # A number cell reads as its text ("1"): remembered by text, never confused with True.
    rows: list[list[Cell]] = [[True, 1, 1.0], ["Dấu thời gian", TC1, TC2], ["29/10/2024", "4"]]
    assert find_header_row(Table("S", rows), CMHS_TH) == 1


@pytest.mark.parametrize("code", ["CMHS_TH", "CMHS_MN", "DVGD_8TC"])
def test_the_header_search_stops_only_at_a_row_nothing_can_beat(code: str) -> None:
    """A row naming every item and the timestamp scores ``highest_score``, and the search stops
    there: what a full scan of the rows would pick, with a later, equal row losing the tie."""
    q = load_questionnaire(SCHEMAS_DIR / f"{code}.yaml")
    full: list[Cell] = ["Dấu thời gian", "Địa chỉ email", *(i.text for i in q.items)]
    partial: list[Cell] = ["Dấu thời gian", *(i.text for i in q.scored_items[:2])]
    assert match_headers(full, q).score(q) == highest_score(q)
    assert match_headers(full + ["Lớp", "Ghi chú"], q).score(q) == highest_score(q)
    answers: list[Cell] = ["29/10/2024 9:05:31", "a@x.vn", *(["Hài lòng"] * len(q.items))]
    rows = [["TRƯỜNG TH A"], partial, full, answers, list(full), answers]
    assert find_header_row(Table("S", rows), q) == 2
    below = Table("B", [partial, answers, full])
    first = Table("A", [full, answers])
    assert pick_table([Table("P", [partial, answers]), below, first], q) is below


def test_rejections_frame_of_one_sheet_is_its_own() -> None:
    clean: list[list[Cell]] = [["Dấu thời gian", TC1], ["29/10/2024 9:00:00", "Hài lòng"]]
    a = parse_table(Table("A", clean), CMHS_TH, "salt")
    b = parse_table(Table("B", clean), CMHS_TH, "salt")
    assert len(a.rejections) == 0
    a.rejections.loc[0, "rule"] = "x"  # a row added in place
    a.rejections["extra"] = 1
    assert len(a.rejections) == 1
    assert len(b.rejections) == 0 and "extra" not in b.rejections.columns
    assert len(parse_table(Table("C", clean), CMHS_TH, "salt").rejections) == 0
    assert isinstance(b.rejections, pd.DataFrame)


def test_a_file_read_ahead_is_parsed_from_what_was_read_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ``read_tables_ahead`` read serves the one parse job of the same bytes, name and
    limits, and gives what reading then would have; anything else reads the file."""
    submissions = Path(__file__).parents[1] / "fixtures" / "e2e" / "submissions"
    content = (submissions / "S1_cmhs.xlsx").read_bytes()
    other = (submissions / "S2_cmhs.xls").read_bytes()
    job = ParseJob(content, "S1_cmhs.xlsx", "excel", None, CMHS_TH, "salt", Limits(), "UTC")
    expected = parse_fetched(job)
    assert isinstance(expected, Parsed)

    reads: list[str] = []

    def counted(content: bytes, filename: str, limits: Limits) -> list[Table]:
        reads.append(filename)
        return read_tables(content, filename, limits)

    read_tables_ahead(content, "S1_cmhs.xlsx", Limits())
    read_tables_ahead(b"not a spreadsheet", "S5_cmhs.xlsx", Limits())  # not kept
    monkeypatch.setattr(read_ahead, "read_tables", counted)
    frames_equal(parse_fetched(job), expected)  # type: ignore[arg-type]
    assert reads == []
    frames_equal(parse_fetched(job), expected)  # type: ignore[arg-type]
    assert reads == ["S1_cmhs.xlsx"]  # used once
    broken = parse_fetched(dataclasses.replace(job, content=b"not a spreadsheet"))
    assert isinstance(broken, SourceError)  # the parse job says why

    # other limits, or other bytes: read again; a miss forgets what else was read ahead
    monkeypatch.undo()
    read_tables_ahead(content, "S1_cmhs.xlsx", Limits())
    read_tables_ahead(other, "S2_cmhs.xls", Limits())
    monkeypatch.setattr(read_ahead, "read_tables", counted)
    reads.clear()
    smaller = parse_fetched(dataclasses.replace(job, limits=Limits(max_rows=3)))
    assert isinstance(smaller, SourceError) and "limit of 3 rows" in str(smaller)
    assert reads == ["S1_cmhs.xlsx"]
    renamed = parse_fetched(dataclasses.replace(job, filename="S1_copy.xlsx"))
    assert isinstance(renamed, Parsed)
    assert reads == ["S1_cmhs.xlsx", "S1_copy.xlsx"]
    parse_fetched(dataclasses.replace(job, content=other, filename="S2_cmhs.xls"))
    assert reads == ["S1_cmhs.xlsx", "S1_copy.xlsx", "S2_cmhs.xls"]  # forgotten at the miss
