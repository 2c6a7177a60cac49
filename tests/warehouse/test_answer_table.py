"""Migration 0005 (the compact answer table) on SQLite and PostgreSQL.

A warehouse of the old shape (answer with campaign_id and a cell per row) is built at revision
0004 with plain SQL, then upgraded: every answer keeps its value, and its cell, found through
answer_column and response.row_number, is the one it had. Downgrading gives back the old rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from tests.factories import answer_cells, table_rows
from warehouse import tables as t
from warehouse.db import alembic_config, connect, migrate
from warehouse.marts import ensure_figures

#: Old-shape answers: (campaign_id, source_id, response_no, question_code, value, cell).
#: Source 1 has its header in row 1; source 2 (another campaign) a title block above it, rows
#: past 9 and columns past Z, so the migration strips several digits and keeps two letters.
OLD_ANSWERS = [
    ("C1", 1, 1, "CHUNG", 4.0, "E2"),
    ("C1", 1, 1, "TC1", 5.0, "D2"),
    ("C1", 1, 2, "CHUNG", None, "E3"),  # unreadable: NULL
    ("C1", 1, 2, "TC1", 3.0, "D3"),
    ("C2", 2, 1, "TC1", 1.0, "AB9"),
    ("C2", 2, 2, "TC1", 2.0, "AB10"),
    ("C2", 2, 2, "CHUNG", 5.0, "AC10"),
    ("C2", 2, 3, "CHUNG", 3.0, "AC123"),
]
#: (campaign_id, source_id, response_no) -> row_number, agreeing with the cells above.
OLD_RESPONSES = {
    ("C1", 1, 1): 2,
    ("C1", 1, 2): 3,
    ("C2", 2, 1): 9,
    ("C2", 2, 2): 10,
    ("C2", 2, 3): 123,
}


def _to(conn: sa.Connection, revision: str, *, down: bool = False) -> None:
    (command.downgrade if down else command.upgrade)(alembic_config(conn), revision)


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _insert_old_shape(conn: sa.Connection, answers: list[tuple[Any, ...]]) -> None:
    """The rows a 0004 warehouse held: campaigns, sources, responses and answers, in SQL."""
    for campaign_id in ("C1", "C2"):
        conn.execute(
            sa.text(
                "INSERT INTO campaign (campaign_id, name, school_year, opens, closes, deadline, "
                "province_code, timezone) VALUES (:c, 'x', '2024-2025', '2024-10-01', "
                "'2024-11-30', '2024-11-30', 'P', 'Asia/Ho_Chi_Minh')"
            ),
            {"c": campaign_id},
        )
    for source_id, campaign_id in ((1, "C1"), (2, "C2")):
        conn.execute(
            sa.text(
                "INSERT INTO source (source_id, campaign_id, school_code, questionnaire, kind, "
                "location, is_active) VALUES (:s, :c, 'S1', 'SAT', 'excel', 'f.xlsx', :yes)"
            ),
            {"s": source_id, "c": campaign_id, "yes": True},
        )
    conn.execute(
        sa.text(
            "INSERT INTO response (campaign_id, source_id, response_no, sheet, row_number) "
            "VALUES (:c, :s, :n, 'Sheet1', :row)"
        ),
        [{"c": c, "s": s, "n": n, "row": row} for (c, s, n), row in OLD_RESPONSES.items()],
    )
    conn.execute(
        sa.text(
            "INSERT INTO answer (campaign_id, source_id, response_no, question_code, value, cell) "
            "VALUES (:c, :s, :n, :q, :v, :cell)"
        ),
        [dict(zip(("c", "s", "n", "q", "v", "cell"), a, strict=True)) for a in answers],
    )


def _old_answers(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(
            (tuple(r) for r in conn.execute(sa.text("SELECT * FROM answer"))),
            key=lambda r: (r[1], r[2], r[3]),
        )


def _answer_storage(engine: Engine) -> str:
    """How answer is stored: SQLite's CREATE TABLE, or PostgreSQL's primary key names."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            return str(
                conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'answer'"
                ).scalar_one()
            )
        return " ".join(
            conn.exec_driver_sql(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'answer'::regclass "
                "UNION ALL SELECT indexname FROM pg_indexes WHERE tablename = 'answer'"
            ).scalars()
        )


def _check_answer_storage(engine: Engine) -> None:
    storage = _answer_storage(engine)
    if engine.dialect.name == "sqlite":
        # the primary key is the table's only b-tree, and nothing checks a foreign key per row
        assert storage.rstrip().endswith("WITHOUT ROWID") and "REFERENCES" not in storage
    else:
        # named as tables.py names it (the old table's pk_answer was renamed out of the way)
        assert storage == "pk_answer pk_answer"


def test_a_new_warehouse_stores_answer_compactly(engine: Engine) -> None:
    _check_answer_storage(engine)


@pytest.fixture
def old_warehouse(warehouse_url: str) -> Iterator[Engine]:
    """A warehouse at revision 0004 holding OLD_ANSWERS, on each backend."""
    engine = connect(warehouse_url)
    with engine.begin() as conn:
        _to(conn, "0004")
        _insert_old_shape(conn, OLD_ANSWERS)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.mark.slow
def test_upgrade_keeps_every_answers_value_and_cell(old_warehouse: Engine) -> None:
    migrate(old_warehouse)
    _check_answer_storage(old_warehouse)

    expected = sorted((s, n, q, v, cell) for _c, s, n, q, v, cell in OLD_ANSWERS)
    assert answer_cells(old_warehouse) == expected
    # one column per (source, question), taken from the cells; no header was ever stored
    assert [tuple(r.values()) for r in table_rows(old_warehouse, t.answer_column)] == [
        (1, "CHUNG", "E", None),
        (1, "TC1", "D", None),
        (2, "CHUNG", "AC", None),
        (2, "TC1", "AB", None),
    ]
    # the migrated answers are what the marts' figures are computed from
    assert ensure_figures(old_warehouse, "C1") == 1


@pytest.mark.slow
def test_downgrade_gives_back_the_old_rows(old_warehouse: Engine) -> None:
    before = _old_answers(old_warehouse)
    assert len(before) == len(OLD_ANSWERS)
    migrate(old_warehouse)
    with old_warehouse.begin() as conn:
        _to(conn, "0004", down=True)
    assert _revision(old_warehouse) == "0004"
    assert _old_answers(old_warehouse) == before
    with old_warehouse.connect() as conn:
        assert "answer_column" not in sa.inspect(conn).get_table_names()
    migrate(old_warehouse)  # and up again
    assert len(answer_cells(old_warehouse)) == len(OLD_ANSWERS)


@pytest.mark.slow
def test_a_question_with_two_columns_stops_the_upgrade_and_changes_nothing(
    warehouse_url: str,
) -> None:
    """answer_column holds one column per (source, question): keeping one of two would point
    the other answers at the wrong cell, so the upgrade refuses, naming the source."""
    engine = connect(warehouse_url)
    try:
        answers = [*OLD_ANSWERS, ("C2", 2, 3, "TC1", 4.0, "AD123")]  # TC1: AB, then AD
        with engine.begin() as conn:
            _to(conn, "0004")
            _insert_old_shape(conn, answers)
        before = _old_answers(engine)
        with pytest.raises(RuntimeError, match=r"source 2 question TC1 \(2 columns\)"):
            migrate(engine)
        assert _revision(engine) == "0004"  # the failed upgrade was rolled back
        assert _old_answers(engine) == before
    finally:
        engine.dispose()
