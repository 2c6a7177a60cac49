"""Case tables for the pure normalisers of flows/parse/normalise.py."""

from __future__ import annotations

import datetime as dt
import math
import unicodedata

import pytest

from flows.parse.answers import level_value, likert_value, percent_value, yesno_value
from flows.parse.normalise import (
    UnreadableTimestamp,
    cell_text,
    day_month_order,
    fold,
    is_blank,
    loose,
    parse_timestamp,
    strip_numbering,
)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hài lòng", "hài lòng"),
        (nfd("Hài lòng"), "hài lòng"),  # decomposed input folds to the NFC form
        ("  RẤT   hài\tlòng \n", "rất hài lòng"),
        ("Đ\u00a0Đ", "đ đ"),  # NBSP is whitespace
        ("a\u200bb", "ab"),  # zero-width space dropped
        ("", ""),
    ],
)
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected
    assert unicodedata.is_normalized("NFC", fold(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ngoại khóa", "ngoai khoa"),
        ("ngoại khoá", "ngoai khoa"),  # old tone placement: same loose key
        ("Đánh giá", "danh gia"),
        (nfd("Rất hài lòng"), "rat hai long"),
    ],
)
def test_loose(text: str, expected: str) -> None:
    assert loose(text) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Câu 5. Thông tin tuyển sinh", "Thông tin tuyển sinh"),
        ("Câu 12: Mức độ hài lòng", "Mức độ hài lòng"),
        ("Câu hỏi 3 - Sân chơi", "Sân chơi"),
        ("câu 5.Thông tin", "Thông tin"),
        ("Tiêu chí 1: Chất lượng sản phẩm", "Chất lượng sản phẩm"),
        ("Mục 2. Giá cả", "Giá cả"),
        ("Tiêu chí 1", "Tiêu chí 1"),  # the whole header: nothing to strip it from
        ("1) Thủ tục", "Thủ tục"),
        ("(5) Vị trí", "Vị trí"),
        ("a/ Học phí", "Học phí"),
        ("b) Học phí", "Học phí"),
        ("5. Thực hiện", "Thực hiện"),
        ("I. Phòng học", "Phòng học"),
        ("IV) Phòng học", "Phòng học"),
        ("II- Phòng học", "Phòng học"),
        ("1.2. Phòng học", "Phòng học"),
        ("1.2 Phòng học", "Phòng học"),
        ("5 - Thông tin", "Thông tin"),
        ("I. 1. Thông tin", "Thông tin"),  # two levels
        ("  Câu 1.   Lớp  ", "Lớp"),
        # left alone: no numbering, or numbering-like text that is the header itself
        ("Lớp", "Lớp"),
        ("E-mail", "E-mail"),
        ("TC1. Thông tin", "TC1. Thông tin"),  # an item code, matched as such by parse
        ("80% mong đợi", "80% mong đợi"),
        ("Câu 5.", "Câu 5."),  # nothing would be left: keep the header
    ],
)
def test_strip_numbering(header: str, expected: str) -> None:
    assert strip_numbering(header) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # numbers
        (1, 1.0),
        (5, 5.0),
        (4.0, 4.0),
        ("4", 4.0),
        (" 3 ", 3.0),
        ("4,0", 4.0),
        ("4.0", 4.0),
        # canonical labels and the variants of DOMAIN.md
        ("Rất không hài lòng", 1.0),
        ("Không hài lòng", 2.0),
        ("Chưa hài lòng", 2.0),
        ("Bình thường", 3.0),
        ("Phân vân", 3.0),
        ("Trung lập", 3.0),
        ("Tạm hài lòng", 3.0),
        ("Hài lòng", 4.0),
        ("Rất hài lòng", 5.0),
        # numbered labels
        ("1 - Rất không hài lòng", 1.0),
        ("(1)", 1.0),
        ("1.", 1.0),
        ("4 - Hài lòng", 4.0),
        ("5. Rất hài lòng", 5.0),
        ("Hài lòng (4)", 4.0),
        ("Rất hài lòng - 5", 5.0),
        ("Mức 4", 4.0),
        # case, spacing, Unicode form, accents
        ("RẤT HÀI LÒNG", 5.0),
        ("  hài   lòng ", 4.0),
        (nfd("Rất không hài lòng"), 1.0),
        (nfd("Chưa hài lòng"), 2.0),
        ("Rat hai long", 5.0),
        ("Hài lòng.", 4.0),
        # not a Likert answer
        ("6", None),
        ("0", None),
        (6, None),
        (0, None),
        (4.5, None),
        ("Không biết", None),
        ("x", None),
        ("", None),
        (None, None),
        (True, None),  # a checkbox is not a 1
        ("5 - Hài lòng", None),  # number and label disagree
        ("Hài lòng (5)", None),
        (dt.datetime(2024, 1, 4), None),
    ],
)
def test_likert_value(raw: object, expected: float | None) -> None:
    assert likert_value(raw) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Có", 1.0),
        ("Không", 0.0),
        ("có", 1.0),
        ("KHÔNG", 0.0),
        (nfd("Có"), 1.0),
        (nfd("Không"), 0.0),
        ("Yes", 1.0),
        ("No", 0.0),
        ("x", 1.0),  # paper forms mark "Có" with an x
        ("X", 1.0),
        ("✓", 1.0),
        (1, 1.0),
        (0, 0.0),
        ("1", 1.0),
        ("0", 0.0),
        (True, 1.0),
        (False, 0.0),
        ("Có (1)", 1.0),
        ("Không - 0", 0.0),
        ("Co", 1.0),
        ("Khong", 0.0),
        ("Có (0)", None),  # disagreeing label and number
        ("2", None),
        (2, None),
        ("Không biết", None),
        ("Có lẽ", None),
        ("", None),
        (None, None),
    ],
)
def test_yesno_value(raw: object, expected: float | None) -> None:
    assert yesno_value(raw) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Tốt", 10.0),
        ("Khá", 7.0),
        ("Trung bình", 5.0),
        ("Yếu", 3.0),
        ("Kém", 0.0),
        ("TỐT", 10.0),
        (nfd("Trung bình"), 5.0),
        ("  trung   bình ", 5.0),
        ("Kem", 0.0),
        (10, 10.0),
        (7.0, 7.0),
        ("5", 5.0),
        ("0", 0.0),
        ("Tốt (10)", 10.0),
        ("Khá - 7", 7.0),
        ("Tốt (7)", None),  # disagreeing label and points
        (8, None),  # not one of the five levels
        ("4", None),
        ("Rất tốt", None),
        (True, None),
        ("", None),
        (None, None),
    ],
)
def test_level_value(raw: object, expected: float | None) -> None:
    assert level_value(raw) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("80", 80.0),
        ("80 %", 80.0),
        ("80%", 80.0),
        (80, 80.0),
        (80.5, 80.5),
        ("80,5", 80.5),
        (0.8, 80.0),  # a percent-formatted cell stores 80% as 0.8
        (0.05, 5.0),
        ("khoảng 80%", 80.0),
        ("Khoảng 90", 90.0),
        ("100%", 100.0),
        (0, 0.0),
        (1, 1.0),  # 1 stays 1: ambiguous, and 1% is a possible answer
        # out of range: returned as is, so validation rejects the value with its number
        (120, 120.0),
        ("150%", 150.0),
        (-5, -5.0),
        # not a percentage
        ("70-80%", None),
        ("nhiều", None),
        ("", None),
        (None, None),
        (True, None),
        (float("nan"), None),
    ],
)
def test_percent_value(raw: object, expected: float | None) -> None:
    assert percent_value(raw) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (dt.datetime(2024, 10, 29, 9, 5, 31), dt.datetime(2024, 10, 29, 9, 5, 31)),
        (dt.date(2024, 10, 29), dt.datetime(2024, 10, 29)),
        # Excel serial numbers (General-formatted cells), as numbers and as text
        (45594.378831018519, dt.datetime(2024, 10, 29, 9, 5, 31)),
        (45594, dt.datetime(2024, 10, 29)),
        ("45594,5", dt.datetime(2024, 10, 29, 12)),
        # day-first text, as Vietnamese Google Sheets write it
        ("29/10/2024 9:05:31", dt.datetime(2024, 10, 29, 9, 5, 31)),
        ("29/10/2024 09:05", dt.datetime(2024, 10, 29, 9, 5)),
        ("29/10/2024", dt.datetime(2024, 10, 29)),
        ("1/11/2024", dt.datetime(2024, 11, 1)),
        ("05/11/2024 8:00:00", dt.datetime(2024, 11, 5, 8)),  # day first, not May 11
        ("29-10-2024 9:05:31", dt.datetime(2024, 10, 29, 9, 5, 31)),
        ("29.10.2024", dt.datetime(2024, 10, 29)),
        ("29/10/24", dt.datetime(2024, 10, 29)),
        ("29/10/2024 9:05:31 CH", dt.datetime(2024, 10, 29, 21, 5, 31)),
        ("29/10/2024 12:05:31 SA", dt.datetime(2024, 10, 29, 0, 5, 31)),
        ("29/10/2024 9:05:31.250", dt.datetime(2024, 10, 29, 9, 5, 31, 250000)),
        # ISO 8601; an offset is converted to Vietnam time (UTC+7)
        ("2024-10-29 09:05:31", dt.datetime(2024, 10, 29, 9, 5, 31)),
        ("2024-10-29T09:05:31", dt.datetime(2024, 10, 29, 9, 5, 31)),
        ("2024-10-29T02:05:31Z", dt.datetime(2024, 10, 29, 9, 5, 31)),
        ("2024-10-29T09:05:31+07:00", dt.datetime(2024, 10, 29, 9, 5, 31)),
        # empty
        (None, None),
        ("", None),
        ("   ", None),
    ],
)
def test_parse_timestamp(cell: object, expected: dt.datetime | None) -> None:
    assert parse_timestamp(cell) == expected  # type: ignore[arg-type]


def test_parse_timestamp_month_first_when_asked() -> None:
    assert parse_timestamp("10/29/2024 9:05:31", dayfirst=False) == dt.datetime(
        2024, 10, 29, 9, 5, 31
    )
    assert parse_timestamp("05/11/2024", dayfirst=False) == dt.datetime(2024, 5, 11)


@pytest.mark.parametrize(
    "cell",
    [
        "hôm qua",
        "9:05:31",  # a time without a date
        dt.time(9, 5),
        dt.timedelta(hours=1),
        "31/02/2024",  # no such day
        "10/29/2024",  # day 10, month 29 when read day first
        4,  # an answer in the wrong column, not 1900-01-03
        1.5e6,
        True,
        "2024-13-01",
    ],
)
def test_parse_timestamp_unreadable(cell: object) -> None:
    with pytest.raises(UnreadableTimestamp):
        parse_timestamp(cell)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("texts", "dayfirst"),
    [
        (["29/10/2024 9:05:31", "01/11/2024"], True),
        (["10/29/2024 9:05:31", "11/01/2024"], False),
        (["01/02/2024", "03/04/2024"], True),  # ambiguous: the Vietnamese default
        (["29/10/2024", "10/29/2024"], True),  # contradictory: never month-first
        ([], True),
        (["hôm qua"], True),
    ],
)
def test_day_month_order(texts: list[str], dayfirst: bool) -> None:
    assert day_month_order(texts) is dayfirst


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("Hài lòng", "Hài lòng"),
        (4.0, "4"),
        (4.5, "4.5"),
        (45594, "45594"),
        (True, "TRUE"),
        (dt.datetime(2024, 10, 29, 9, 5, 31), "2024-10-29 09:05:31"),
        (dt.date(2024, 10, 29), "2024-10-29"),
    ],
)
def test_cell_text(value: object, expected: str) -> None:
    assert cell_text(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "blank"),
    [(None, True), ("", True), ("  \u00a0", True), (math.nan, True), (0, False), ("0", False)],
)
def test_is_blank(value: object, blank: bool) -> None:
    assert is_blank(value) is blank
