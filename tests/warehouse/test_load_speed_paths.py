"""The per-source fast paths of warehouse.load and warehouse.figures against plain references.

``figures.figure_rows`` (integer codes and bincounts, used by ``replace_source`` and when
figures are recomputed from stored answers) is compared, case by case, with the figures
computed the obvious way in pandas, straight from DOMAIN.md's definitions. ``load.column_values``'s
shortcuts for text and datetime columns are compared with the per-value conversion they skip,
and its SQLite bulk insert (many rows a statement) with what ``table.insert()`` stores.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from warehouse import figures
from warehouse import tables as t
from warehouse.bulk import SQLITE_MAX_PARAMS, bulk_insert
from warehouse.load import as_datetime, as_text, column_values

NAN = math.nan

#: (code, kind, dimension) of a questionnaire with every kind of item.
ITEMS = [
    ("A1", "likert", "D1"),
    ("A2", "likert", "D1"),
    ("B1", "likert", "D2"),
    ("L0", "likert", None),  # a Likert item in no dimension
    ("YN", "yesno", None),
    ("LV", "level", None),
    ("PC", "percent", None),
    ("TX", "text", None),
]

#: name -> (answers as (response_no, question_code, value), services by response_no or None).
CASES: dict[str, tuple[list[tuple[int, str, float]], dict[int, Any] | None]] = {
    "likert": ([(1, "A1", 4), (1, "A2", 2), (2, "A1", 5), (2, "B1", 3), (3, "L0", 1)], None),
    "nan values": ([(1, "A1", NAN), (1, "A2", 4), (2, "A1", NAN), (2, "YN", NAN)], None),
    "out of range": (
        [(1, "A1", 0), (1, "A2", 6), (2, "A1", 4.5), (2, "YN", 2), (3, "LV", 4), (3, "PC", 101)],
        None,
    ),
    "no valid answer": ([(1, "A1", NAN), (2, "YN", 7), (3, "TX", 1)], None),
    "no answer": ([], None),
    "papi yes/no": ([(1, "YN", 1), (2, "YN", 0), (3, "YN", 1), (3, "A1", 3)], None),
    "percent": ([(1, "PC", 0), (1, "A1", 5), (2, "PC", 55.5), (3, "PC", 100), (4, "PC", -1)], None),
    "level": ([(1, "LV", 10), (2, "LV", 7), (3, "LV", 3), (4, "LV", 0), (5, "LV", 5)], None),
    "unknown question": ([(1, "ZZ", 4), (1, "A1", 4)], None),
    "service review": (
        [(1, "LV", 10), (1, "A1", 4), (2, "LV", 7), (3, "LV", 5), (4, "LV", 3), (5, "LV", 0)],
        {1: "Bán trú", 2: "Thư viện", 3: "Bán trú", 4: None, 5: "Y tế"},
    ),
    "service of a response not listed": ([(1, "LV", 10), (9, "LV", 7)], {1: "Y tế"}),
    "services all empty": ([(1, "LV", 10), (2, "YN", 1)], {1: None, 2: None}),
    "response numbers large": ([(10**9, "A1", 4), (7, "A1", 2), (7, "B1", 1)], None),
}


def reference(
    answers: list[tuple[int, str, float]], services: dict[int, Any] | None
) -> tuple[int, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """n_valid_responses, dimension rows and question rows, computed the obvious way."""
    kind = {code: k for code, k, _ in ITEMS}
    dimension = {code: d for code, _, d in ITEMS}
    allowed = {"likert": {1, 2, 3, 4, 5}, "yesno": {0, 1}, "level": {0, 3, 5, 7, 10}}
    df = pd.DataFrame(answers, columns=["response_no", "question_code", "value"])

    def valid(row: pd.Series) -> bool:
        k, v = kind.get(row.question_code), row.value
        if k == "percent":
            return bool(0 <= v <= 100)
        return k in allowed and v in allowed[k]

    df = df[df.apply(valid, axis=1)] if len(df) else df
    df = df.assign(
        kind=df["question_code"].map(kind),
        label=[
            "MONG_DOI" if kind[c] == "percent" else dimension[c] if kind[c] == "likert" else None
            for c in df["question_code"]
        ],
        service=[(services or {}).get(r) or "" for r in df["response_no"]],
    )
    dims = [
        (
            label,
            g["response_no"].nunique(),
            len(g),
            float(g["value"].sum()),
            None if label == "MONG_DOI" else int((g["value"] >= 4).sum()),
            None if label == "MONG_DOI" else int((g["value"] <= 2).sum()),
        )
        for label, g in df[df["label"].notna()].groupby("label")
    ]
    questions = [
        (
            code,
            service,
            len(g),
            *(int((g["value"] == k).sum()) for k in range(1, 6)),
            float(g["value"].sum()),
        )
        for (code, service), g in df[df["kind"].isin(["likert", "yesno", "level"])].groupby(
            ["question_code", "service"]
        )
    ]
    return df["response_no"].nunique(), sorted(dims), sorted(questions)


def rows_of(columns: list[list[Any]]) -> list[tuple[Any, ...]]:
    return sorted(zip(*columns, strict=True)) if columns and columns[0] else []


@pytest.mark.parametrize("case", list(CASES))
def test_figure_rows_equal_the_reference(case: str) -> None:
    answers, services = CASES[case]
    response = np.array([a[0] for a in answers], dtype=np.int64)
    codes = np.array([a[1] for a in answers], dtype=object)
    value = np.array([a[2] for a in answers], dtype=np.float64)
    items = figures.prepare_items(ITEMS)
    by_service = None
    if services is not None:
        keys = np.array(list(services), dtype=np.int64)
        by_service = figures.service_codes(response, keys, list(services.values()))
    got = figures.figure_rows(items, items.locate(codes), response, value, by_service)
    n_valid, dims, questions = reference(answers, services)
    assert got.n_valid_responses == n_valid
    assert rows_of(got.dimensions) == dims
    assert rows_of(got.questions) == questions
    # rows come out sorted, as the frames did: by dimension, and by question then service
    assert got.dimensions[0] == sorted(got.dimensions[0])
    keys = list(zip(*got.questions[:2], strict=True))
    assert keys == sorted(keys)


def test_text_columns_convert_as_value_by_value() -> None:
    values = ["a", None, NAN, 3.0, 3.5, pd.NA, "", 7]
    df = pd.DataFrame({"x": pd.Series(values, dtype=object)})
    assert column_values(df, "x", as_text) == ["a", None, None, "3", "3.5", None, "", "7"]
    assert column_values(df, "x", str) == ["a", None, None, "3.0", "3.5", None, "", "7"]
    strings = pd.DataFrame({"x": pd.array(["a", None, "b"], dtype="str")})
    assert column_values(strings, "x", as_text) == ["a", None, "b"]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_datetime_columns_convert_as_value_by_value(unit: str) -> None:
    stamps = [dt.datetime(2024, 10, 21, 6, 28, 2, 123456), None, dt.datetime(1969, 12, 31, 23)]
    series = pd.Series(pd.to_datetime(stamps)).astype(f"datetime64[{unit}]")
    df = pd.DataFrame({"t": series})
    expected = [None if pd.isna(v) else as_datetime(v) for v in series.tolist()]
    got = column_values(df, "t", as_datetime)
    assert got == expected
    assert all(v is None or type(v) is dt.datetime for v in got)


def _value(column: sa.Column[Any], i: int) -> Any:
    """A value for row ``i`` of ``column``: NULL every seventh row where the column allows it."""
    if column.nullable and not column.primary_key and i % 7 == 3:
        return None
    if isinstance(column.type, sa.DateTime):
        return dt.datetime(2024, 10, 21, 6, 28, 2, 123456) + dt.timedelta(seconds=i)
    if isinstance(column.type, sa.Float):
        return i / 3
    if isinstance(column.type, sa.Integer):
        return i
    return f"Hài lòng {i}"


@pytest.mark.parametrize("table", [t.answer, t.response], ids=lambda table: table.name)
@pytest.mark.parametrize("extra", [-1, 0, 1, 5])  # rows around whole statements
def test_sqlite_bulk_insert_stores_what_table_insert_stores(table: sa.Table, extra: int) -> None:
    columns = [c.name for c in table.c]
    per = SQLITE_MAX_PARAMS // len(columns)
    n = 2 * per + extra  # whole statements of ``per`` rows, and the rest one by one
    data = [[_value(table.c[c], i) for i in range(n)] for c in columns]
    stored = []
    for bulk in (True, False):
        engine = sa.create_engine("sqlite://")
        table.create(engine)
        with engine.begin() as conn:
            if bulk:
                bulk_insert(conn, table, columns, data)
            else:
                rows = zip(*data, strict=True)
                conn.execute(table.insert(), [dict(zip(columns, r, strict=True)) for r in rows])
        with engine.connect() as conn:
            # typeof: the storage class too, not only the value Python reads back
            kinds = ", ".join(f"typeof({c}), {c}" for c in columns)
            stored.append(conn.exec_driver_sql(f"SELECT {kinds} FROM {table.name}").all())
        engine.dispose()
    assert len(stored[0]) == n
    assert sorted(stored[0]) == sorted(stored[1])
