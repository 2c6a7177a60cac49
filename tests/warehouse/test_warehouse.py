"""The warehouse on SQLite and PostgreSQL: migrations, registry sync, and replacing a source's rows.

Every test runs on both backends (the ``engine`` fixture). Parsed frames are built by hand with
``make_parsed`` so these tests depend on nothing upstream of the load step.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from schemas.records import School, Source, cell_address
from tests.factories import (
    SAT,
    SCHOOL,
    SOURCE,
    V1,
    V2,
    answer_cells,
    fetched,
    make_campaign,
    make_parsed,
    table_rows,
)
from warehouse import bulk, load
from warehouse import tables as t
from warehouse.db import alembic_config, connect, get_salt, migrate, reader, safe_url
from warehouse.ledger import (
    FAILURE_RULE,
    finish_run,
    last_loaded_fingerprints,
    latest_statuses,
    record_absent,
    record_failure,
    record_unchanged,
    start_run,
)
from warehouse.load import replace_source
from warehouse.registry import sync_registry

# -- fixtures for this module ------------------------------------------------------------------

RUN = "run-1"


@pytest.fixture
def registered(engine: Engine) -> Engine:
    """The engine with the campaign, one school and SAT registered, and run-1 started."""
    sync_registry(engine, make_campaign(), [SCHOOL], {"SAT": SAT})
    start_run(engine, RUN, "HCM-2024")
    return engine


# -- migrations and connections --------------------------------------------------------------


def test_migrate_twice_is_a_no_op(engine: Engine) -> None:
    migrate(engine)  # the fixture already migrated once
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head
        names = set(sa.inspect(conn).get_table_names())
    assert names == set(t.metadata.tables) | {"alembic_version"}


def test_migrations_build_exactly_tables_py(engine: Engine) -> None:
    """0001 is written out by hand; this catches any drift from the metadata."""
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert diff == []


def test_every_table_and_column_has_its_contract() -> None:
    for table in t.metadata.tables.values():
        assert table.comment and table.comment.startswith("One row per"), table.name
        for column in table.c:
            assert column.comment, f"{table.name}.{column.name} has no comment"
            assert column.comment.startswith("[PII]") == bool(column.info.get("pii"))
    assert t.response.c.comment.info["pii"] and t.quarantine.c.raw_value.info["pii"]


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Any) -> None:
    eng = connect(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    eng.dispose()


def test_a_reader_streaming_rows_leaves_the_write_lock_to_writers(tmp_path: Any) -> None:
    """Every SQLite transaction takes the write lock first, but a ``reader``'s: a stream read
    beside a writer (the comment mart's comments while the flow raises alerts) must not make
    the writer wait."""
    path = tmp_path / "w.sqlite"
    eng = connect(f"sqlite:///{path}")
    with eng.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE n (i INTEGER)")
        conn.exec_driver_sql("INSERT INTO n VALUES " + ",".join(f"({i})" for i in range(100)))
    with reader(eng) as conn:
        rows = conn.execution_options(stream_results=True, yield_per=10).exec_driver_sql(
            "SELECT i FROM n"
        )
        assert next(iter(rows))[0] == 0  # mid-stream: its transaction is open
        other = sqlite3.connect(path, timeout=0)  # fails at once on a held lock
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO n VALUES (100)")
        other.commit()
        other.close()
        assert sum(1 for _ in rows) == 99  # the rest of its snapshot, without the new row
    with eng.connect() as conn:
        conn.exec_driver_sql("SELECT 1")  # a plain connection's transaction takes the lock
        other = sqlite3.connect(path, timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
    eng.dispose()


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgres://u@h/db"])
def test_plain_postgresql_urls_use_psycopg_3(url: str) -> None:
    assert connect(url).dialect.driver == "psycopg"


def test_safe_url_hides_the_password() -> None:
    assert (
        safe_url("postgresql://khaosat:s3cret@db/khaosat") == "postgresql://khaosat:***@db/khaosat"
    )


def test_salt_is_created_once(engine: Engine) -> None:
    salt = get_salt(engine)
    assert len(salt) == 64 and get_salt(engine) == salt


def test_cell_addresses() -> None:
    assert cell_address(12, 4) == "D12"
    assert cell_address(1, 26) == "Z1"
    assert cell_address(7, 27) == "AA7"
    assert cell_address(7, 703) == "AAA7"
    assert cell_address(None, 3) is None


# -- registry ----------------------------------------------------------------------------------


def test_sync_registry_replaces_the_campaigns_registry(engine: Engine) -> None:
    campaign = make_campaign()
    other = School(code="S2", name="Trường B", level="THCS", unit_code="U2", unit_name="Xã 2")
    sync_registry(engine, campaign, [SCHOOL, other], {"SAT": SAT})
    sync_registry(engine, campaign.model_copy(update={"name": "Đổi tên"}), [SCHOOL], {"SAT": SAT})

    assert table_rows(engine, t.campaign)[0]["name"] == "Đổi tên"
    assert [r["school_code"] for r in table_rows(engine, t.school)] == ["S1"]
    assert [r["unit_code"] for r in table_rows(engine, t.unit)] == ["U1"]
    assert table_rows(engine, t.questionnaire) == [
        {
            "questionnaire_code": "SAT",
            "version": "1",
            "name": "Phiếu khảo sát",
            "kind": "satisfaction",
            "levels": "TH",
            "required": True,
        }
    ]
    questions = table_rows(engine, t.question, exclude=["text"])
    assert [(q["question_code"], q["position"], q["dimension"]) for q in questions] == [
        ("CHUNG", 3, "CHUNG"),
        ("LOP", 1, None),
        ("MONG_DOI", 4, None),
        ("TC1", 2, "TIEP_CAN"),
        ("Y_KIEN", 5, None),
    ]


def test_sources_left_out_of_the_registry_are_retired_and_can_return(engine: Engine) -> None:
    campaign = make_campaign()
    second = Source(school_code="S1", questionnaire="SAT", kind="gsheet", location="KEY#Form")
    sync_registry(engine, campaign, [SCHOOL], {"SAT": SAT}, sources=[SOURCE, second])
    sync_registry(engine, campaign, [SCHOOL], {"SAT": SAT}, sources=[second])
    active = {r["location"]: r["is_active"] for r in table_rows(engine, t.source)}
    assert active == {"s1.xlsx": False, "KEY#Form": True}
    sync_registry(engine, campaign, [SCHOOL], {"SAT": SAT}, sources=[SOURCE, second])
    assert all(r["is_active"] for r in table_rows(engine, t.source))


# -- replacing a source ------------------------------------------------------------------------


@pytest.mark.slow
def test_replace_source_writes_responses_answers_quarantine_and_ledger(registered: Engine) -> None:
    result = replace_source(registered, "HCM-2024", RUN, fetched("aaa"), V1)
    assert (result.n_responses, result.n_answers, result.n_rejected) == (2, 5, 1)

    responses = table_rows(registered, t.response)
    assert [
        (r["response_no"], r["row_number"], r["sheet"], r["class_name"], r["comment"])
        for r in responses
    ] == [(1, 2, "Câu trả lời 1", "3A", "Tốt"), (2, 3, "Câu trả lời 1", "4", None)]
    assert responses[0]["submitted_at"] == dt.datetime(2024, 10, 15, 9, 0)

    sid = result.source_id
    assert answer_cells(registered) == [
        (sid, 1, "CHUNG", 4.0, "E2"),
        (sid, 1, "MONG_DOI", 80.0, "F2"),
        (sid, 1, "TC1", 5.0, "D2"),
        (sid, 2, "CHUNG", 3.0, "E3"),
        (sid, 2, "TC1", None, "D3"),  # unreadable: NULL, raw text in quarantine
    ]
    assert len(table_rows(registered, t.answer)) == 5
    # one row per question answered: its column and the header the sheet gave it
    assert table_rows(registered, t.answer_column) == [
        {"source_id": sid, "question_code": q, "column_letter": col, "header": header}
        for q, col, header in [
            ("CHUNG", "E", "Hài lòng chung"),
            ("MONG_DOI", "F", "Đáp ứng mong đợi"),
            ("TC1", "D", "Thông tin tuyển sinh"),
        ]
    ]

    (q,) = table_rows(registered, t.quarantine, exclude=["quarantine_id"])
    assert q == {
        "campaign_id": "HCM-2024",
        "source_id": result.source_id,
        "school_code": "S1",
        "questionnaire": "SAT",
        "file": "s1.xlsx",
        "sheet": "Câu trả lời 1",
        "cell": "D3",
        "row_number": 3,
        "response_no": 2,
        "question_code": "TC1",
        "raw_value": "abc",
        "rule": "likert_label",
        "reason": "'abc' is not a satisfaction level",
        "scope": "value",
    }

    (ledger,) = table_rows(registered, t.load_ledger)
    assert ledger["load_id"] == result.load_id
    assert ledger["status"] == "loaded"
    assert ledger["fingerprint"] == "aaa"
    assert ledger["modified_at"] == dt.datetime(2024, 11, 1, 8, 0)
    assert (ledger["n_rows_read"], ledger["n_responses"], ledger["n_answers"]) == (2, 2, 5)
    assert ledger["unknown_columns"] == '["Số điện thoại"]'
    assert ledger["archive_path"] == "archive/aaa"
    assert ledger["started_at"] <= ledger["finished_at"]


@pytest.mark.slow
def test_replace_source_twice_gives_the_same_rows(registered: Engine) -> None:
    first_load = replace_source(registered, "HCM-2024", RUN, fetched("aaa"), V1)
    first = {
        tb.name: table_rows(registered, tb, exclude=["quarantine_id"])
        for tb in (t.response, t.answer, t.answer_column, t.quarantine)
    }
    start_run(registered, "run-2", "HCM-2024")
    second_load = replace_source(registered, "HCM-2024", "run-2", fetched("aaa"), V1)
    second = {
        tb.name: table_rows(registered, tb, exclude=["quarantine_id"])
        for tb in (t.response, t.answer, t.answer_column, t.quarantine)
    }
    assert second == first
    assert second_load.load_id != first_load.load_id
    assert [r["status"] for r in table_rows(registered, t.load_ledger)] == ["loaded", "loaded"]
    assert len(table_rows(registered, t.source)) == 1


def test_replace_source_twice_in_one_run_writes_once(registered: Engine) -> None:
    # A load retried in the same run (its process died after the commit) finds it done.
    first = replace_source(registered, "HCM-2024", RUN, fetched("aaa"), V1)
    again = replace_source(registered, "HCM-2024", RUN, fetched("aaa"), V1)
    assert again == first
    assert len(table_rows(registered, t.load_ledger)) == 1
    # other content of the source in the same run is loaded, replacing the first
    other = replace_source(registered, "HCM-2024", RUN, fetched("bbb"), V2)
    assert other.load_id != first.load_id
    ledger = table_rows(registered, t.load_ledger)
    assert [r["fingerprint"] for r in ledger] == ["aaa", "bbb"]
    assert len(table_rows(registered, t.response)) == other.n_responses == 1


@pytest.mark.slow
def test_replace_source_replaces_only_its_own_source(registered: Engine) -> None:
    other = Source(school_code="S1", questionnaire="SAT", kind="csv", location="s1-giay.csv")
    first = replace_source(registered, "HCM-2024", RUN, fetched("aaa"), V1).source_id
    second = replace_source(registered, "HCM-2024", RUN, fetched("bbb", other), V2).source_id
    replace_source(registered, "HCM-2024", RUN, fetched("ccc"), V2)
    assert len(table_rows(registered, t.response)) == 2  # one each
    assert table_rows(registered, t.quarantine) == []
    # V1's CHUNG and MONG_DOI went with its answers; each source keeps its own columns
    assert answer_cells(registered) == [(first, 1, "TC1", 1.0, "D2"), (second, 1, "TC1", 1.0, "D2")]
    columns = table_rows(registered, t.answer_column, exclude=["header"])
    assert [(c["source_id"], c["question_code"], c["column_letter"]) for c in columns] == [
        (first, "TC1", "D"),
        (second, "TC1", "D"),
    ]


@pytest.mark.parametrize("failing", ["answer", "answer_column"])
def test_a_failure_mid_load_leaves_the_previous_rows(
    registered: Engine, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    tables = (t.response, t.answer, t.answer_column, t.quarantine, t.load_ledger)
    replace_source(registered, "HCM-2024", RUN, fetched("aaa"), V1)
    before = {tb.name: table_rows(registered, tb) for tb in tables}

    real_bulk_insert = bulk.bulk_insert

    def failing_bulk_insert(conn: Any, table: sa.Table, *args: Any) -> None:
        # By now the source's old rows are deleted and the new responses inserted (and, for
        # answer_column, the new answers).
        if table.name == failing:
            raise RuntimeError("disk full")
        real_bulk_insert(conn, table, *args)

    monkeypatch.setattr(bulk, "bulk_insert", failing_bulk_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        replace_source(registered, "HCM-2024", RUN, fetched("bbb"), V2)

    assert {tb.name: table_rows(registered, tb) for tb in tables} == before


def test_a_question_read_from_two_columns_is_refused_and_loads_nothing(
    registered: Engine,
) -> None:
    """parse reads one column per question; if a Parsed ever held two, storing one column
    would point some answers at the wrong cell, so the load refuses it before writing."""
    replace_source(registered, "HCM-2024", RUN, fetched("aaa"), V1)
    before = {tb.name: table_rows(registered, tb) for tb in (t.answer, t.answer_column)}
    two = make_parsed(SAT, [{"TC1": 5}, {"TC1": 4}])
    two.answers.loc[1, "col"] = 30  # response 2's TC1 from column AD instead of D
    with pytest.raises(ValueError, match=r"TC1 in columns D, AD.*not loaded"):
        replace_source(registered, "HCM-2024", RUN, fetched("bbb"), two)
    assert {tb.name: table_rows(registered, tb) for tb in (t.answer, t.answer_column)} == before


def test_answers_without_a_sheet_column_are_refused() -> None:
    """No column means no cell address: refused like the old NOT NULL cell refused it."""
    parsed = make_parsed(SAT, [{"TC1": 5, "CHUNG": 4}])
    parsed.answers["col"] = parsed.answers["col"].astype("float64")
    parsed.answers.loc[1, "col"] = math.nan
    with pytest.raises(ValueError, match=r"answers to CHUNG have no sheet column"):
        load.answer_rows(parsed)


def test_a_source_without_answers_writes_no_answer_rows(registered: Engine) -> None:
    result = replace_source(registered, "HCM-2024", RUN, fetched("aaa"), make_parsed(SAT, [{}]))
    assert (result.n_responses, result.n_answers) == (1, 0)
    assert table_rows(registered, t.answer) == table_rows(registered, t.answer_column) == []


def test_record_failure_keeps_the_last_good_rows(registered: Engine) -> None:
    replace_source(registered, "HCM-2024", RUN, fetched("aaa"), V1)
    good = {tb.name: table_rows(registered, tb) for tb in (t.response, t.answer, t.answer_column)}

    for _night in range(2):  # a failure repeated night after night leaves one quarantine row
        record_failure(
            registered, "HCM-2024", RUN, SOURCE, "S1 s1.xlsx: not a workbook", fetched("bad")
        )

    kept = {tb.name: table_rows(registered, tb) for tb in (t.response, t.answer, t.answer_column)}
    assert kept == good
    rules = sorted((q["rule"], q["scope"]) for q in table_rows(registered, t.quarantine))
    assert rules == [("likert_label", "value"), (FAILURE_RULE, "source")]
    failure = [q for q in table_rows(registered, t.quarantine) if q["rule"] == FAILURE_RULE][0]
    assert failure["reason"] == "S1 s1.xlsx: not a workbook" and failure["file"] == "s1.xlsx"
    ledger = table_rows(registered, t.load_ledger)
    assert [r["status"] for r in ledger] == ["loaded", "failed", "failed"]
    assert ledger[-1]["message"] == "S1 s1.xlsx: not a workbook"
    assert ledger[-1]["fingerprint"] == "bad"  # what was fetched, for the officer to find it
    # A failed source is reloaded next time even if its bytes are unchanged.
    assert last_loaded_fingerprints(registered, "HCM-2024") == {}

    # The next good load clears the failure row.
    replace_source(registered, "HCM-2024", RUN, fetched("aaa"), V1)
    assert [q["rule"] for q in table_rows(registered, t.quarantine)] == ["likert_label"]
    assert last_loaded_fingerprints(registered, "HCM-2024") == {SOURCE.key: "aaa"}


def test_fingerprints_follow_the_latest_good_load(registered: Engine) -> None:
    assert last_loaded_fingerprints(registered, "HCM-2024") == {}
    record_absent(registered, "HCM-2024", RUN, SOURCE)
    assert last_loaded_fingerprints(registered, "HCM-2024") == {}
    replace_source(registered, "HCM-2024", RUN, fetched("aaa"), V1)
    record_unchanged(registered, "HCM-2024", RUN, fetched("aaa"))
    record_absent(registered, "HCM-2024", RUN, SOURCE)  # data kept: still skippable
    assert last_loaded_fingerprints(registered, "HCM-2024") == {SOURCE.key: "aaa"}
    replace_source(registered, "HCM-2024", RUN, fetched("bbb"), V2)
    assert last_loaded_fingerprints(registered, "HCM-2024") == {SOURCE.key: "bbb"}


def test_runs_count_their_sources_by_last_status(registered: Engine) -> None:
    other = Source(school_code="S1", questionnaire="SAT", kind="csv", location="s1-giay.csv")
    third = Source(school_code="S1", questionnaire="SAT", kind="csv", location="s1-3.csv")
    record_failure(registered, "HCM-2024", RUN, SOURCE, "timeout")
    replace_source(registered, "HCM-2024", RUN, fetched("aaa"), V1)  # a retry worked
    record_failure(registered, "HCM-2024", RUN, other, "not a workbook")
    record_absent(registered, "HCM-2024", RUN, third, "no file yet")
    assert latest_statuses(registered, "HCM-2024") == {
        SOURCE.key: "loaded",
        other.key: "failed",
        third.key: "absent",
    }
    summary = finish_run(registered, RUN)
    assert (summary.status, summary.n_sources, summary.n_loaded, summary.n_failed) == (
        "partial",
        3,
        1,
        1,
    )
    assert summary.n_absent == 1 and summary.n_unchanged == 0
    (run,) = table_rows(registered, t.run)
    assert run["status"] == "partial" and run["finished_at"] is not None

    start_run(registered, "run-2", "HCM-2024")
    record_unchanged(registered, "HCM-2024", "run-2", fetched("aaa"))
    assert finish_run(registered, "run-2").status == "succeeded"


@pytest.mark.slow
def test_bulk_rows_go_through_copy_on_postgresql(
    registered: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied: list[tuple[str, int]] = []
    real_copy = bulk.copy_rows

    def spy(conn: Any, table: sa.Table, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        copied.append((table.name, len(rows)))
        real_copy(conn, table, columns, rows)

    monkeypatch.setattr(bulk, "copy_rows", spy)
    replace_source(registered, "HCM-2024", RUN, fetched("aaa"), V1)
    if registered.dialect.name == "postgresql":
        assert copied[:4] == [
            ("response", 2),
            ("answer", 5),
            ("answer_column", 3),
            ("quarantine", 1),
        ]
        assert {name for name, _ in copied[4:]} == {
            "figure_source_dimension",
            "figure_source_question",
        }
        assert len(table_rows(registered, t.answer)) == 5
    else:
        assert copied == []  # SQLite: one executemany per table instead
