"""The nightly flow end to end on a small province whose every figure is computed by hand.

Submissions (tests/fixtures/e2e/make_e2e.py): S1 an xlsx Forms download (grid headers, e-mails,
names, a duplicate, a response before the campaign opens, "6" and "Không biết", NFD text), S2 an
.xls typed from paper by LibreOffice (title block, merged cells, numbered headers, blank row,
totals row, no timestamps), S3 an .ods from LibreOffice (English headers, datetime cells, late)
and a CSV with BOM, S5 a corrupt xlsx, S6 a registered file that is absent, S4 no source at all.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.pipeline import batches, nightly, tasks
from flows.pipeline import context as run_context
from flows.pipeline.read_ahead import ParseJob, drop_read_ahead
from flows.settings import Settings, load_settings
from schemas.records import Fetched, Parsed, SourceOutcome
from tests.factories import AS_OF, make_province, rows, stamp
from warehouse import db, tables
from warehouse.load import LoadResult

#: Whole flows, servers and subprocesses: minutes, not seconds.
pytestmark = pytest.mark.slow


def sorted_rows(engine: sa.Engine, table: str) -> list[dict[str, object]]:
    """All rows of a mart, in an order that does not depend on the backend."""
    return sorted(rows(engine, f"SELECT * FROM {table}"), key=repr)  # noqa: S608


def figures(engine: sa.Engine, table: str, key: str, where: str) -> dict[str, dict[str, object]]:
    out = {}
    for r in rows(engine, f"SELECT * FROM {table} WHERE {where}"):  # noqa: S608 - test SQL
        out[str(r[key])] = r
    return out


# (n_respondents, n_answers, mean_score, pct_satisfied, pct_dissatisfied), by hand:
# S1 valid: TC1 4,3,4  TC2 5,3  CS1 2,1  CHUNG 4,5  MONG_DOI 80,90 (respondents r1, r2, r5)
# S2 valid: TC1 5,1,1  CS1 4,2,3  CHUNG 5,3
EXPECTED_SCHOOL = {
    ("S1", "TIEP_CAN"): (3, 5, 3.8, 60.0, 0.0),
    ("S1", "CSVC"): (2, 2, 1.5, 0.0, 100.0),
    ("S1", "CHUNG"): (2, 2, 4.5, 100.0, 0.0),
    ("S1", "MONG_DOI"): (2, 2, 85.0, None, None),
    ("S2", "TIEP_CAN"): (3, 3, 7 / 3, 100 / 3, 200 / 3),
    ("S2", "CSVC"): (3, 3, 3.0, 100 / 3, 100 / 3),
    ("S2", "CHUNG"): (2, 2, 4.0, 50.0, 0.0),
}
# unit U1, TH, CMHS_TH pools S1 and S2: (n_schools, n_respondents, n_answers, mean, sat, dis)
EXPECTED_UNIT = {
    "TIEP_CAN": (2, 6, 8, 3.25, 50.0, 25.0),
    "CSVC": (2, 5, 5, 2.4, 20.0, 60.0),
    "CHUNG": (2, 4, 4, 4.25, 75.0, 0.0),
    "MONG_DOI": (1, 2, 2, 85.0, None, None),
}
# unit U1 items: n_answers, n_1..n_5, mean, pct_satisfied
EXPECTED_QUESTION = {
    "TC1": (6, 2, 0, 1, 2, 1, 3.0, 50.0),
    "TC2": (2, 0, 0, 1, 0, 1, 4.0, 50.0),
    "CS1": (5, 1, 2, 1, 1, 0, 2.4, 20.0),
    "CHUNG": (4, 0, 0, 1, 1, 2, 4.25, 75.0),
}
EXPECTED_COMPLETENESS = {
    ("S1", "CMHS_TH"): ("submitted", 3, 4),
    ("S2", "CMHS_TH"): ("submitted", 3, 0),
    ("S3", "CMHS_THPT"): ("late", 2, 0),
    ("S3", "HS_THPT"): ("submitted", 2, 0),
    ("S4", "CMHS_TH"): ("missing", 0, 0),
    ("S5", "CMHS_THCS"): ("failed", 0, 1),
    ("S6", "CMHS_THCS"): ("missing", 0, 0),
}


def approx(value: object) -> object:
    return None if value is None else pytest.approx(value)


@pytest.fixture(params=["sqlite", "postgresql"])
def province(request: pytest.FixtureRequest, tmp_path: Path, prefect_harness: None) -> Path:
    url = request.getfixturevalue("fresh_postgres_url") if request.param != "sqlite" else None
    return make_province(tmp_path, url)


def test_nightly_end_to_end(province: Path) -> None:
    settings = load_settings(province, env={})
    summary = nightly.run(settings, as_of=AS_OF)
    engine = db.connect(settings.warehouse_url)

    status = {(o.source.school_code, o.source.questionnaire): o.status for o in summary.outcomes}
    assert status == {
        ("S1", "CMHS_TH"): "loaded",
        ("S2", "CMHS_TH"): "loaded",
        ("S3", "CMHS_THPT"): "loaded",
        ("S3", "HS_THPT"): "loaded",
        ("S5", "CMHS_THCS"): "failed",
        ("S6", "CMHS_THCS"): "absent",
    }
    failed = next(o for o in summary.outcomes if o.status == "failed")
    assert failed.message.startswith("S5 submissions/S5_cmhs.xlsx: ")
    assert "\n" not in failed.message
    assert summary.exit_code == 1

    school = rows(engine, "SELECT * FROM mart_school_dimension WHERE questionnaire = 'CMHS_TH'")
    got = {
        (r["school_code"], r["dimension"]): (
            r["n_respondents"],
            r["n_answers"],
            r["mean_score"],
            r["pct_satisfied"],
            r["pct_dissatisfied"],
        )
        for r in school
    }
    assert set(got) == set(EXPECTED_SCHOOL)
    for key, want in EXPECTED_SCHOOL.items():
        assert got[key] == tuple(approx(v) for v in want), key

    unit = figures(engine, "mart_unit_dimension", "dimension", "unit_code = 'U1'")
    assert set(unit) == set(EXPECTED_UNIT)
    for dim, want in EXPECTED_UNIT.items():
        r = unit[dim]
        assert (r["level"], r["questionnaire"]) == ("TH", "CMHS_TH")
        got_u = (
            r["n_schools"],
            r["n_respondents"],
            r["n_answers"],
            r["mean_score"],
            r["pct_satisfied"],
            r["pct_dissatisfied"],
        )
        assert got_u == tuple(approx(v) for v in want), dim

    question = figures(engine, "mart_unit_question", "question_code", "unit_code = 'U1'")
    assert set(question) == set(EXPECTED_QUESTION)
    for code, want in EXPECTED_QUESTION.items():
        r = question[code]
        got_q = (
            r["n_answers"],
            r["n_1"],
            r["n_2"],
            r["n_3"],
            r["n_4"],
            r["n_5"],
            r["mean_score"],
            r["pct_satisfied"],
        )
        assert got_q == tuple(approx(v) for v in want), code

    thpt = rows(engine, "SELECT * FROM mart_unit_dimension WHERE unit_code = 'U2'")
    by = {(r["questionnaire"], r["dimension"]): (r["mean_score"], r["pct_satisfied"]) for r in thpt}
    assert by == {
        ("CMHS_THPT", "TIEP_CAN"): (approx(3.5), approx(50.0)),
        ("CMHS_THPT", "CHUNG"): (approx(3.5), approx(50.0)),
        ("HS_THPT", "TIEP_CAN"): (approx(4.5), approx(100.0)),
        ("HS_THPT", "CHUNG"): (approx(4.0), approx(100.0)),
    }

    completeness = {
        (r["school_code"], r["questionnaire"]): (r["status"], r["n_valid"], r["n_rejected"])
        for r in rows(engine, "SELECT * FROM mart_completeness")
    }
    assert completeness == EXPECTED_COMPLETENESS

    # every rejected value names its sheet and cell
    quarantine = {
        (r["cell"], r["raw_value"]): r
        for r in rows(engine, "SELECT * FROM quarantine WHERE school_code = 'S1'")
    }
    assert {"E3", "G6"} <= {cell for cell, _ in quarantine}
    assert quarantine[("E3", "6")]["sheet"] == "Câu trả lời biểu mẫu 1"
    assert quarantine[("E3", "6")]["file"] == "S1_cmhs.xlsx"

    # no e-mail or name reaches the warehouse
    dump = repr([rows(engine, f"SELECT * FROM {t}") for t in ("response", "answer", "quarantine")])  # noqa: S608
    for secret in ("a@x.vn", "b@x.vn", "Nguyễn Văn A", "Trần Thị B"):
        assert secret not in dump

    assert summary.workbooks and all(p.exists() for p in summary.workbooks)

    # a second night with nothing new: unchanged sources skipped, marts identical
    before = {t: sorted_rows(engine, t) for t in MARTS}
    again = nightly.run(settings, as_of=AS_OF)
    assert {o.status for o in again.outcomes if o.source.school_code in ("S1", "S2", "S3")} == {
        "unchanged"
    }
    after = {t: sorted_rows(engine, t) for t in MARTS}
    assert after == before
    n_answers = rows(engine, "SELECT COUNT(*) AS n FROM answer")[0]["n"]
    assert n_answers == 11 + 8 + 4 + 4  # S1, S2, S3 parents, S3 students: no duplicates


MARTS = (
    "mart_school_dimension",
    "mart_unit_dimension",
    "mart_unit_question",
    "mart_completeness",
)


def test_a_quiet_night_publishes_only_what_changed(province: Path) -> None:
    """Nothing new: no source is read again and marts, alerts and workbooks are left alone;
    anything the outputs depend on (a file, a setting, the deadline, a deleted workbook)
    publishes again."""
    settings = load_settings(province, env={})
    first = nightly.run(settings, as_of=AS_OF)
    stamps = {p: p.stat().st_mtime_ns for p in first.workbooks}
    assert first.published and stamps

    engine = db.connect(settings.warehouse_url)
    alerts = tables.alerts
    seen = sa.select(alerts.c.last_seen_at).where(alerts.c.status == "open")
    with engine.connect() as conn:
        before = conn.execute(seen).scalars().all()
    later = AS_OF + dt.timedelta(days=1)
    quiet = nightly.run(settings, as_of=later)
    assert not quiet.published and quiet.workbooks == []
    # the conditions still hold: each open alert was seen again tonight
    with engine.connect() as conn:
        assert before and conn.execute(seen).scalars().all() == [later] * len(before)
    assert {o.status for o in quiet.outcomes} == {"unchanged", "failed", "absent"}
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # a file touched but not changed is fetched again (its new sighting archived), not reloaded
    s1 = province.parent / "submissions" / "S1_cmhs.xlsx"
    stamp(s1, dt.datetime(2024, 10, 24, 18, 0))
    touched = nightly.run(settings, as_of=AS_OF)
    assert not touched.published
    assert next(o for o in touched.outcomes if o.source.school_code == "S1").status == "unchanged"

    # the other side of the deadline: absent turns from missing to pending
    before_deadline = nightly.run(settings, as_of=dt.datetime(2024, 10, 20, 2, 0))
    assert before_deadline.published

    # a deleted workbook is written again
    gone = first.workbooks[0]
    gone.unlink()
    rewritten = nightly.run(settings, as_of=AS_OF)
    assert rewritten.published and gone.exists()
    # ... and so is a deleted draft report
    report = settings.output / f"{settings.campaign.id}_BAO_CAO.docx"
    report.unlink()
    assert nightly.run(settings, as_of=AS_OF).published and report.exists()

    # a changed threshold changes tiers and alerts
    province.write_text(
        province.read_text(encoding="utf-8") + "thresholds:\n  pct_satisfied_red: 55\n",
        encoding="utf-8",
    )
    assert nightly.run(load_settings(province, env={}), as_of=AS_OF).published


def _stop_the_process(job: object) -> None:
    os._exit(3)  # as a parse process killed by the kernel, or aborted by a library, would


def test_a_parse_process_that_dies_stops_its_source_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.pipeline.faults import WorkerDied
    from flows.pipeline.pools import parse_pool
    from schemas.records import Fetched

    settings = load_settings(make_province(tmp_path), env={})
    ctx = run_context.prepare(settings, "r1")
    source = ctx.sources[0]
    assert source.path is not None
    fetched = Fetched(
        source=source,
        content=source.path.read_bytes(),
        fingerprint="x",
        archive_path=source.path,
        filename=source.path.name,
    )
    assert parse_pool(settings) is not None  # the default: parse processes beside the flow
    monkeypatch.setattr(tasks, "parse_fetched", _stop_the_process)
    with pytest.raises(WorkerDied, match="the machine stopped the parse process") as died:
        tasks.parse_source(ctx, fetched)
    assert source.path.name in str(died.value)  # the machine's fault, not the file's
    # the broken pool was replaced: the next source parses as usual
    monkeypatch.undo()
    assert not isinstance(tasks.parse_source(ctx, fetched), BaseException)


def _stop_parsing_s2(job: ParseJob) -> object:
    from flows.pipeline.read_ahead import parse_fetched

    if job.filename.startswith("S2_"):
        os._exit(3)  # as a parse process killed by the kernel, or aborted by a library, would
    return parse_fetched(job)


def test_a_parse_process_that_dies_in_a_run_stops_that_source_alone(
    province: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(province, env={})
    # Pickled by reference: the parse processes run this module's function. The task runner's
    # threads send jobs at once, so S2's breaks theirs too: each is tried again alone.
    monkeypatch.setattr(tasks, "parse_fetched", _stop_parsing_s2)
    summary = nightly.run(settings, as_of=AS_OF)
    by_school = {o.source.school_code: o for o in summary.outcomes}
    assert by_school["S2"].status == "stopped"  # the machine's fault: not judged, no ledger row
    assert "the machine stopped the parse process" in (by_school["S2"].message or "")
    assert by_school["S1"].status == by_school["S3"].status == "loaded"
    assert summary.exit_code == 5
    monkeypatch.undo()
    again = nightly.run(settings, as_of=AS_OF)  # the next night tries it again
    assert {o.source.school_code: o.status for o in again.outcomes}["S2"] == "loaded"


def test_the_first_batch_is_read_ahead_unless_unchanged(
    tmp_path: Path, prefect_harness: None
) -> None:
    """``read_ahead`` (what ``khaosat run`` calls while its API boots) hands the parse process
    the first batch's files that changed since their last load; a run uses them up."""
    from flows.pipeline.pools import parse_pool

    config = make_province(tmp_path)
    one = {"KHAOSAT_RUN__PARSE_PROCESSES": "1"}  # one process takes jobs in order: see below
    settings = load_settings(config, env=one)
    pool = parse_pool(settings)
    assert pool is not None

    def read_ahead(settings: Settings, **params: object) -> list[str]:
        run_context.read_ahead(settings, **params)
        return pool.submit(drop_read_ahead).result()  # after the reads queued before it

    # a warehouse not made yet: the first batch, without creating the SQLite file
    small = load_settings(config, env={**one, "KHAOSAT_RUN__BATCH_SOURCES": "2"})
    assert read_ahead(small) == ["S1_cmhs.xlsx", "S2_cmhs.xls"]
    assert not (tmp_path / "khaosat.sqlite").exists()
    # the corrupt S5 is not kept (its parse says why) and the absent S6 is skipped
    assert read_ahead(settings) == ["S1_cmhs.xlsx", "S2_cmhs.xls", "S3_cmhs.ods", "S3_hs.csv"]

    run_context.read_ahead(settings)
    assert nightly.run(settings, as_of=AS_OF).count("loaded") == 4
    assert pool.submit(drop_read_ahead).result() == []  # the run used up what was read ahead

    assert read_ahead(settings) == []  # nothing changed since it was loaded
    stamp(tmp_path / "submissions" / "S1_cmhs.xlsx", dt.datetime(2024, 10, 24, 18, 0))
    assert read_ahead(settings) == []  # touched, same bytes: fetched again but not parsed
    csv = tmp_path / "submissions" / "S3_hs.csv"
    csv.write_bytes(csv.read_bytes() + b"\n")
    assert read_ahead(settings) == ["S3_hs.csv"]
    assert read_ahead(settings, school="S1") == ["S1_cmhs.xlsx"]  # a school's re-run forces
    assert read_ahead(settings, questionnaire="HS_THPT") == ["S3_hs.csv"]
    assert read_ahead(settings, failed_only=True) == []


def test_gx_is_imported_ahead_and_frozen_only_when_something_is_read(tmp_path: Path) -> None:
    """With files to read ahead, GX's context is made before the flow starts and frozen out of
    the garbage collector's way; a re-run of failed sources (nothing read) does not pay for it."""
    import gc

    from flows.validate import gx

    settings = load_settings(make_province(tmp_path), env={})
    gx.create_batch_definition.cache_clear()
    try:
        run_context.read_ahead(settings, failed_only=True)
        assert gx.create_batch_definition.cache_info().currsize == 0
        run_context.read_ahead(settings)
        assert gx.create_batch_definition.cache_info().currsize == 1
        context = gx.batch_definition()
        assert not any(obj is context for obj in gc.get_objects())  # frozen: never walked
    finally:
        gc.unfreeze()  # the test session's objects, frozen with it, back to the collector


def test_a_run_that_breaks_is_recorded_failed_not_running(
    tmp_path: Path, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(make_province(tmp_path), env={})

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(nightly, "publish_all", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        nightly.run(settings, as_of=AS_OF)
    engine = db.connect(settings.warehouse_url)
    (run,) = rows(engine, "SELECT status, message, finished_at FROM run")
    assert run["status"] == "failed" and run["finished_at"] is not None
    assert run["message"] == "RuntimeError: disk full"  # why, for khaosat status
    monkeypatch.undo()
    assert nightly.run(settings, as_of=AS_OF).exit_code == 1  # S5 fails; the lock was released


def _stop_loading_s2(
    url: str, campaign_id: str, run_id: str, fetched: Fetched, parsed: Parsed
) -> LoadResult:
    from warehouse import load

    if fetched.source.school_code == "S2":
        os._exit(3)  # as a load process killed by the kernel would
    return load.replace_source_at(url, campaign_id, run_id, fetched, parsed)


def _run_loading_with(
    province: Path, monkeypatch: pytest.MonkeyPatch, job: Callable[..., LoadResult]
) -> tuple[Settings, dict[str, SourceOutcome]]:
    """A run whose load processes run ``job`` instead of replace_source_at; its outcomes."""
    from warehouse import load

    settings = load_settings(province, env={})
    # The job is pickled by reference: the load process runs this module's function.
    monkeypatch.setattr(load, "replace_source_at", job)
    summary = nightly.run(settings, as_of=AS_OF)
    return settings, {o.source.school_code: o for o in summary.outcomes}


def test_a_load_process_that_dies_stops_its_source_alone(
    province: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, by_school = _run_loading_with(province, monkeypatch, _stop_loading_s2)
    assert by_school["S2"].status == "stopped"
    assert by_school["S2"].message.startswith(
        "S2 submissions/S2_cmhs.xls: the machine stopped the load process while it loaded"
    )
    assert by_school["S1"].status == by_school["S3"].status == "loaded"
    engine = db.connect(settings.warehouse_url)
    loaded = rows(engine, "SELECT DISTINCT source_id FROM answer")
    assert len(loaded) == 3  # S1, S3 twice; S2 has nothing half-written

    assert not rows(  # not the school's failure: no ledger row, its previous state kept
        engine,
        "SELECT 1 FROM load_ledger WHERE school_code = 'S2'",
    )
    monkeypatch.undo()
    again = nightly.run(settings, as_of=AS_OF)
    assert {o.source.school_code: o.status for o in again.outcomes}["S2"] == "loaded"
    engine.dispose()


def _die_once_after_loading_s2(
    url: str, campaign_id: str, run_id: str, fetched: Fetched, parsed: Parsed
) -> LoadResult:
    from warehouse import load

    result = load.replace_source_at(url, campaign_id, run_id, fetched, parsed)
    died = Path(f"{fetched.archive_path}.died")  # whether a process died on it already
    if fetched.source.school_code == "S2" and not died.exists():
        died.touch()
        os._exit(3)  # killed after the commit, before the flow heard of it
    return result


def test_a_load_retried_after_its_process_died_having_committed_is_recorded_once(
    province: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, by_school = _run_loading_with(province, monkeypatch, _die_once_after_loading_s2)
    assert by_school["S2"].status == "loaded"  # the retry found the first load committed
    engine = db.connect(settings.warehouse_url)
    ledger = rows(
        engine,
        "SELECT l.status, l.n_answers, l.archive_path FROM load_ledger l "
        "JOIN source s USING (source_id) WHERE s.school_code = 'S2'",
    )
    assert [r["status"] for r in ledger] == ["loaded"]
    assert Path(f"{ledger[0]['archive_path']}.died").exists()  # the process did die
    (answers,) = rows(
        engine,
        "SELECT COUNT(*) AS n FROM answer JOIN source USING (source_id) WHERE school_code = 'S2'",
    )
    assert answers["n"] == ledger[0]["n_answers"] > 0
    engine.dispose()


def test_loading_in_the_flow_process_gives_the_same_warehouse(
    province: Path, tmp_path: Path
) -> None:
    settings = load_settings(province, env={})
    nightly.run(settings, as_of=AS_OF)
    engine = db.connect(settings.warehouse_url)
    marts = [sorted_rows(engine, m) for m in ("mart_school_dimension", "mart_unit_question")]
    answers = rows(engine, "SELECT COUNT(*) AS n FROM answer")
    engine.dispose()

    # Without load processes: SQLite loads in the flow's thread, PostgreSQL in a task per source.
    inline = load_settings(province, env={"KHAOSAT_RUN__LOAD_PROCESSES": "0"})
    summary = nightly.run(inline, as_of=AS_OF, force=True)
    assert summary.count("loaded") == 4
    engine = db.connect(settings.warehouse_url)
    assert [
        sorted_rows(engine, m) for m in ("mart_school_dimension", "mart_unit_question")
    ] == marts
    assert rows(engine, "SELECT COUNT(*) AS n FROM answer") == answers
    engine.dispose()


def test_a_batch_reaches_its_task_unwalked(prefect_harness: None) -> None:
    """A batch handed over ``unwalked`` reaches the task as it is: Prefect does not walk into it
    (~70 ms for a batch's parsed sheets). A state inside shows whether it did: walking
    resolves the state to its result."""
    from prefect import flow, task
    from prefect.states import Completed

    @task
    def echo(batch: list[object]) -> list[object]:
        return batch

    state = Completed(data=7)

    @flow
    def hand_over() -> tuple[list[object], list[object]]:
        return echo([state]), echo(batches.unwalked([state]))

    walked, unwalked = hand_over()
    assert walked == [7]
    assert unwalked == [state]
