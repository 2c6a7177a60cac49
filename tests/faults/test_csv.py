"""Issue #20, item 8: CSV read like the spreadsheets, every problem named by its cell.

Files are written by Python's csv module, then bytes are injected: a stray ESC and NUL in
cells (dropped, each cell told to the school as a "cell" row of the rejections), a comment
longer than csv's own field limit (read; over ``limits.max_cell_chars`` the file fails naming
the cell), and a cell in Windows-1258 among UTF-8 (the message names the cell, not a byte).
"""

from __future__ import annotations

import csv
import io
import random

import pytest

from flows.parse import parse_tables
from flows.parse.sheet import RULE_CONTROL
from flows.read import read_tables
from flows.settings import Limits
from schemas.records import SourceError
from tests.factories import QUESTIONNAIRES

HEADER = ["Dấu thời gian", "TC1", "CHUNG", "Ý kiến khác"]
ROWS = [
    ["22/10/2024 08:00:00", "5", "4", "Tốt"],
    ["22/10/2024 08:05:00", "4", "Hài lòng", "Cần thêm sân chơi"],
    ["22/10/2024 08:10:00", "3", "5", "Không"],
]


def written(rows: list[list[str]]) -> bytes:
    """``rows`` under HEADER, as Python's csv module writes them, in UTF-8."""
    out = io.StringIO(newline="")
    csv.writer(out).writerows([HEADER, *rows])
    return out.getvalue().encode("utf-8")


def test_control_characters_are_dropped_and_told_by_cell() -> None:
    rows = [list(r) for r in ROWS]
    rows[1][2] = "Hài\x1b lòng"  # C3: an escape pasted with the answer
    rows[2][3] = "Không\x00"  # D4: a NUL at the end of a comment
    content = written(rows)
    assert b"\x1b" in content[:65536] and b"\x00" in content[:8192]

    [table] = read_tables(content, "lop5a.csv", Limits())

    assert table.rows[2][2] == "Hài lòng" and table.rows[3][3] == "Không"
    assert sorted(table.notes) == [(2, 2), (3, 3)]
    parsed = parse_tables([table], "csv", None, QUESTIONNAIRES["CMHS_TH"], "salt")
    told = parsed.rejections[parsed.rejections["rule"] == RULE_CONTROL]
    assert [(r.scope, r.row, r.col, r.raw_value) for r in told.itertuples()] == [
        ("cell", 3, 3, "Hài lòng"),
        ("cell", 4, 4, "Không"),
    ]
    # The cleaned answer is used like any other (CHUNG of row 3 is "Hài lòng" = 4).
    chung = parsed.answers[(parsed.answers["question_code"] == "CHUNG")]
    assert sorted(chung["value"].tolist()) == [4.0, 4.0, 5.0]


def test_a_binary_file_is_still_not_a_spreadsheet() -> None:
    noise = random.Random(20).randbytes(4096)  # noqa: S311 - test noise
    blob = b"a,b\n" + bytes(b % 32 for b in noise if b % 32 not in (9, 10, 13))
    with pytest.raises(SourceError, match=r"^blob\.csv: not a spreadsheet \(unrecognised binary"):
        read_tables(blob, "blob.csv", Limits())


def test_a_comment_longer_than_csv_limit_is_read() -> None:
    rows = [list(r) for r in ROWS]
    rows[0][3] = "Ý kiến dài. " * 20_000  # 240,000 characters, over csv's 131,072
    [table] = read_tables(written(rows), "lop5a.csv", Limits())
    assert table.rows[1][3] == rows[0][3]


def test_a_cell_over_the_limit_names_the_cell_and_the_setting() -> None:
    rows = [list(r) for r in ROWS]
    rows[2][3] = "x" * 150_001
    with pytest.raises(SourceError) as got:
        read_tables(written(rows), "lop5a.csv", Limits(max_cell_chars=150_000))
    assert str(got.value) == (
        "lop5a.csv: cell D4 holds 150,001 characters, more than the limit of 150,000 "
        "(limits.max_cell_chars)"
    )


def test_a_cell_in_another_encoding_is_named_not_a_byte() -> None:
    content = written([list(r) for r in ROWS] * 30)
    pasted = "Cần thêm sân chơi".encode("cp1258", "replace")
    at = content.index("Cần thêm sân chơi".encode())
    content = content[:at] + pasted + content[at + len("Cần thêm sân chơi".encode()) :]
    with pytest.raises(SourceError) as got:
        read_tables(content, "lop5a.csv", Limits())
    message = str(got.value)
    assert message.startswith("lop5a.csv: damaged UTF-8 text in cell D3 (row 3):"), message
    assert "byte" not in message and "\n" not in message
