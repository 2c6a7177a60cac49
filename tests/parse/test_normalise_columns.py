"""parse_timestamps (a column at once, numpy for the Forms text) against parse_timestamp (one
value at a time), and loose's ASCII shortcut against the general path."""

from __future__ import annotations

import datetime as dt
import random
import unicodedata

import numpy as np
import pytest

from flows.parse.normalise import (
    UnreadableTimestamp,
    day_month_order,
    fold,
    loose,
    parse_timestamp,
    parse_timestamps,
)
from schemas.records import Cell


def one_by_one(values: list[Cell]) -> tuple[list[dt.datetime | None], list[int]]:
    """What parse did before parse_timestamps: one order for the column, then each value."""
    dayfirst = day_month_order([v for v in values if isinstance(v, str)])
    out: list[dt.datetime | None] = []
    unreadable: list[int] = []
    for i, value in enumerate(values):
        try:
            out.append(parse_timestamp(value, dayfirst))
        except UnreadableTimestamp:
            out.append(None)
            unreadable.append(i)
    return out, unreadable


def assert_same(values: list[Cell]) -> None:
    stamps, unreadable = parse_timestamps(values)
    expected, expected_unreadable = one_by_one(values)
    assert stamps.dtype == np.dtype("datetime64[us]")
    assert unreadable.tolist() == expected_unreadable
    got = [None if np.isnat(s) else s.astype(dt.datetime) for s in stamps]
    assert got == expected


def forms_text(rng: random.Random) -> str:
    day, month = rng.randint(0, 32), rng.randint(0, 13)
    year = rng.choice([2024, 2025, 2000, 1900, 2100, 99, 100, 24, 1, 0, 9999])
    date = f"{day}/{month}/{year:04d}" if rng.random() < 0.9 else f"{day:02d}/{month:02d}/{year}"
    shape = rng.random()
    if shape < 0.15:
        return date
    hour, minute, second = rng.randint(0, 25), rng.randint(0, 61), rng.randint(0, 61)
    if shape < 0.3:
        return f"{date} {hour}:{minute:02d}"
    return f"{date} {hour}:{minute:02d}:{second:02d}"


def other_value(rng: random.Random) -> Cell:
    return rng.choice(
        [
            None,
            "",
            "  ",
            " 21/10/2024 6:07:21",  # spaces: the general path
            "21/10/2024  6:07:21",
            "21-10-2024 06:07",
            "21.10.24",
            "29/10/2024 9:05:31 CH",
            "2024-10-21T06:07:21+00:00",
            "2024-10-21 06:07:21",
            "45594.5",
            "not a date",
            "٢١/١٠/٢٠٢٤",  # Arabic-Indic digits: \d matches them, the fast pattern does not
            45594.378831018,
            45594,
            4,
            True,
            dt.datetime(2024, 10, 21, 6, 7, 21, 123456),
            dt.date(2024, 10, 21),
            dt.time(6, 7),
        ]
    )


@pytest.mark.parametrize("seed", range(40))
def test_parse_timestamps_matches_parse_timestamp(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible cases, not secrets
    values: list[Cell] = []
    for _ in range(rng.randint(0, 60)):
        values.append(forms_text(rng) if rng.random() < 0.8 else other_value(rng))
    assert_same(values)


@pytest.mark.parametrize(
    "values",
    [
        [],
        [None, ""],
        ["21/10/2024 6:07:21", "22/10/2024 16:59:59"],
        ["10/29/2024 9:05:31", "11/01/2024 10:00:00"],  # month-first column
        ["10/29/2024 9:05:31", "29/10/2024 9:05:31"],  # both: day-first wins
        ["29/02/2024 23:59:59", "29/02/2023 00:00:00"],  # leap year, then not
        ["31/04/2024", "0/1/2024", "1/0/2024", "1/1/0000", "24/10/2024 24:00:00"],
        ["10/29/2024 9:05:31", "13/13/2024"],  # a value over 12 in both places
        ["1/2/2024", " 13/1/2024"],  # the order decided by a value read the general way
    ],
)
def test_parse_timestamps_cases(values: list[Cell]) -> None:
    assert_same(values)


def test_parse_timestamps_reads_forms_text() -> None:
    stamps, unreadable = parse_timestamps(["21/10/2024 6:07:21", "31/02/2024 1:00:00", None])
    assert stamps[0] == np.datetime64("2024-10-21T06:07:21", "us")
    assert np.isnat(stamps[1]) and np.isnat(stamps[2])
    assert unreadable.tolist() == [1]


@pytest.mark.parametrize(
    "text",
    [
        "Hài lòng",
        "hai long",
        "Email Address",
        "  A  b ",
        "Đúng",
        unicodedata.normalize("NFD", "Kém"),
        "khoá",
        "x\u200by",
        "",
        "TC1. Tính kịp thời",
        "naïve",
        "ǅ",
    ],
)
def test_loose_ascii_shortcut_is_the_general_path(text: str) -> None:
    folded = fold(text)
    bare = "".join(c for c in unicodedata.normalize("NFD", folded) if not unicodedata.combining(c))
    assert loose(text) == bare.replace("đ", "d")
