"""Leadership workbooks: every figure equals the mart row it comes from, on SQLite and PostgreSQL.

The warehouse is built the way the nightly flow builds it (registry sync, loads, ledger, marts)
from generated answers to the real questionnaires, so the marts are whatever SQL computes; these
tests check that the workbooks copy them faithfully (unrounded), suppress what must be
suppressed, publish nothing personal, and are reproducible. The mart arithmetic itself is
test_marts.py's job.

The province (code 01) of campaign HN-2025 (previous: HN-2024):
- U1 Phường Ba Đình: TH1 (40 CMHS_TH, 12 PAPI, 2 services), TH2 (3 CMHS_TH and 3 PAPI: too few
  to publish), MN1 (4 CMHS_MN: the whole MN level is too small), THCS1 (CMHS_THCS file absent);
- U2 (a hostile name starting with "="): TH3 (30 low CMHS_TH, 10 PAPI, 2 services, one under
  40 points and one whose name carries a phone number), and a second CMHS_TH file that fails;
- U3 Xã Mới: TH9, registered, nothing submitted.
HN-2024 had U1 only (TH1, TH2, MN1), so U2 has no year-on-year figures.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy.engine import Engine

from flows.alerts import DEFAULT_ACTIONS, ThresholdError, Thresholds
from flows.pipeline.workbook_pool import write_workbooks
from flows.privacy import mask_personal
from flows.publish.labels import (
    ALERT_SHEET,
    DIMENSION_SHEET,
    FIVE_MEAN_LABEL,
    INFO_SHEET,
    LEVEL_LABELS,
    PAPI_SHEET,
    QUESTION_SHEET,
    SCHOOL_SHEET,
    SERVICE_SHEET,
    STAMP_LABELS,
    SUMMARY_SHEET,
    SUPPRESSED,
    YOY_SHEET,
)
from flows.publish.workbooks.alerts import ALERT_DETAIL_SHEET
from flows.publish.workbooks.summary import SUMMARY_HEADER_ROW, SUMMARY_HEADERS
from flows.publish.xlsx import (
    BOX,
    MAX_COLUMN_WIDTH,
    PCT_FORMAT,
    fit_row_heights,
    merge_cells,
    portrait_width,
    print_setup,
    safe_file_part,
    save_workbook,
    set_style,
    write_cell,
)
from schemas import load_questionnaires
from schemas.questionnaire import DIMENSIONS
from tests.factories import (
    CAMPAIGN,
    FAILED,
    HOSTILE_UNIT,
    PREVIOUS,
    RUN_1_START,
    load_both_campaigns,
)
from tests.factories import rows as select_rows
from warehouse import tables as t
from warehouse.ledger import finish_run, record_failure, start_run
from warehouse.marts import province_dimension

QS = load_questionnaires()
C, P = CAMPAIGN.id, PREVIOUS.id
SHEETS = [
    SUMMARY_SHEET,
    DIMENSION_SHEET,
    QUESTION_SHEET,
    SCHOOL_SHEET,
    SERVICE_SHEET,
    PAPI_SHEET,
    YOY_SHEET,
    ALERT_SHEET,
    ALERT_DETAIL_SHEET,
    INFO_SHEET,
]
#: Text that respondents typed or that identifies them: must never reach a workbook.
PERSONAL_MARKERS = ("ph.huynh", "@example.com", "0912 345 678", "Nguyễn Văn Bình", "h001")

RUN_2_START = dt.datetime(2025, 12, 2, 1, 30)


#: Alerts as flows.alerts writes them (rule names and subject formats are that module's).
ALERTS = [
    # rule, severity, scope, scope_code, subject, value, threshold, status, note
    ("pct_satisfied_low", "red", "unit", "U2", "TH/CMHS_TH/CSVC", 55.5, 70.0, "open", None),
    (
        "pct_satisfied_low",
        "amber",
        "school",
        "TH1",
        "CMHS_TH/TIEP_CAN",
        80.25,
        85.0,
        "acknowledged",
        "=cmd|' /C calc'!A0 gọi cô Lan 0912 345 678",
    ),
    ("insufficient_sample", "info", "school", "TH2", "CMHS_TH", 3.0, 30.0, "open", None),
    # A small-sample alert (raised on a Wilson bound): its value is a figure of 3 respondents.
    ("pct_satisfied_low", "amber", "school", "TH2", "CMHS_TH/CSVC", 33.3, 85.0, "open", None),
    ("papi_low", "amber", "province", "01", "HOC_THEM", 62.3, 80.0, "resolved", "đã xử lý"),
    ("service_total_low", "amber", "school", "TH3", "Bán trú", 24.0, 40.0, "open", None),
    ("pct_satisfied_low", "red", "school", "TH3", "CMHS_TH/CHUNG", 40.0, 70.0, "open", None),
]


@pytest.fixture
def warehouse(engine: Engine) -> Engine:
    """Both campaigns loaded, marts built, alerts raised (see the module docstring)."""
    load_both_campaigns(engine)
    columns = ("rule", "severity", "scope", "scope_code", "subject", "value", "threshold")
    with engine.begin() as conn:
        for *values, status, note in ALERTS:
            conn.execute(
                t.alerts.insert().values(
                    campaign_id=C,
                    status=status,
                    note=note,
                    first_seen_at=dt.datetime(2025, 12, 1, 1, 35, 10, 123456),
                    last_seen_at=dt.datetime(2025, 12, 1, 1, 35, 10),
                    **dict(zip(columns, values, strict=True)),
                )
            )
    return engine


@pytest.fixture
def books(warehouse: Engine, tmp_path: Path) -> dict[str, Path]:
    """The workbooks of run-1, by scope code."""
    paths = write_workbooks(warehouse, C, tmp_path / "out", QS, run_id="run-1")
    return {p.stem.removeprefix(f"{C}_"): p for p in paths}


# ---------------------------------------------------------------------------------------------
# Reading helpers


def _rows(engine: Engine, table: sa.Table, campaign: str = C) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(sa.select(table).where(table.c.campaign_id == campaign))
        ]


def _header_row(ws: Worksheet, first_header: str, start: int = 1) -> int:
    for r in range(start, ws.max_row + 1):
        if ws.cell(r, 1).value == first_header:
            return r
    raise AssertionError(f"no header {first_header!r} on {ws.title}")


def _table(ws: Worksheet, header_row: int) -> list[tuple[Any, ...]]:
    """Rows under a header until the first empty row."""
    out = []
    for row in ws.iter_rows(min_row=header_row + 1, values_only=True):
        if all(v is None for v in row):
            break
        out.append(row)
    return out


def _approx(value: Any) -> Any:
    return pytest.approx(value, rel=1e-12) if isinstance(value, float) else value


def _shown(value: Any, n: int | None) -> Any:
    if value is None:
        return None
    return SUPPRESSED if n is not None and n < 5 else _approx(value)


def _label(code: str) -> str:
    q = QS[code]
    return {"papi": f"{q.respondent} (PAPI)", "service_review": "Dịch vụ giáo dục"}.get(
        q.kind, q.respondent
    )


def _dim_label(q: str, dim: str) -> str:
    if dim == "MONG_DOI":
        return "Mức đáp ứng mong đợi (%)"
    return QS[q].dimensions[dim]


def _school_units(engine: Engine) -> dict[str, dict[str, Any]]:
    return {r["school_code"]: r for r in _rows(engine, t.school)}


# ---------------------------------------------------------------------------------------------
# Files and sheets


@pytest.mark.slow
def test_one_workbook_per_unit_and_one_for_the_province(warehouse: Engine, tmp_path: Path) -> None:
    out = tmp_path / "output"
    paths = write_workbooks(warehouse, C, out, QS, run_id="run-1")
    assert [p.name for p in paths] == [
        "HN-2025_01.xlsx",
        "HN-2025_U1.xlsx",
        "HN-2025_U2.xlsx",
        "HN-2025_U3.xlsx",
    ]
    assert sorted(out.iterdir()) == sorted(paths)  # nothing for the previous campaign's units
    for path in paths:
        wb = load_workbook(path)
        assert wb.sheetnames == SHEETS
        assert wb.active is not None and wb.active.title == SUMMARY_SHEET


@pytest.mark.slow
def test_units_written_in_processes_are_the_same_files(warehouse: Engine, tmp_path: Path) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    here = write_workbooks(warehouse, C, tmp_path / "here", QS, run_id="run-1")
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        there = write_workbooks(warehouse, C, tmp_path / "there", QS, run_id="run-1", pool=pool)
    assert [p.name for p in there] == [p.name for p in here]  # province first, units in order
    assert [p.read_bytes() for p in there] == [p.read_bytes() for p in here]


@pytest.mark.slow
def test_units_not_given_to_a_process_are_written_here_once_the_province_is(
    warehouse: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One busy worker, given two units (one running, one queued): it holds the first until
    # this thread has written the province's workbook and every other unit, last first.
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from flows.publish import workbooks

    here = write_workbooks(warehouse, C, tmp_path / "here", QS, run_id="run-1")
    n_units = len(here) - 1
    assert n_units >= 3
    saved_by: list[str] = []
    all_but_one = threading.Event()
    save = workbooks.save_workbook

    def recording(wb: Workbook, path: Path) -> Path:
        if threading.current_thread() is threading.main_thread():
            saved_by.append("here")
            if len(saved_by) == n_units - 1:  # the province and all units but the worker's
                all_but_one.set()
        else:
            assert all_but_one.wait(60), "this thread did not take the units back"
            saved_by.append("pool")
        return save(wb, path)

    monkeypatch.setattr(workbooks, "save_workbook", recording)
    with ThreadPoolExecutor(1) as pool:
        there = write_workbooks(warehouse, C, tmp_path / "there", QS, run_id="run-1", pool=pool)
    assert saved_by == ["here"] * (n_units - 1) + ["pool"] * 2
    assert [p.name for p in there] == [p.name for p in here]  # province first, units in order
    assert [p.read_bytes() for p in there] == [p.read_bytes() for p in here]


def _die(*args: object) -> None:
    os._exit(3)  # as a process killed by the kernel would


@pytest.mark.slow
def test_units_whose_process_died_are_written_here_and_the_pool_is_discarded(
    warehouse: Engine, tmp_path: Path
) -> None:
    import multiprocessing
    from concurrent.futures import Future, ProcessPoolExecutor

    class DyingOnTheFirstJob(ProcessPoolExecutor):
        submitted = 0
        shut_down = 0

        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
            self.submitted += 1
            return super().submit(_die if self.submitted == 1 else fn, *args, **kwargs)

        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            self.shut_down += 1
            super().shutdown(wait=wait, cancel_futures=cancel_futures)

    here = write_workbooks(warehouse, C, tmp_path / "here", QS, run_id="run-1")
    pool = DyingOnTheFirstJob(1, mp_context=multiprocessing.get_context("forkserver"))
    try:
        there = write_workbooks(warehouse, C, tmp_path / "there", QS, run_id="run-1", pool=pool)
        # Discarded: shut down by write_workbooks, so the next run asks for a new pool.
        assert pool.shut_down == 1
        with pytest.raises(RuntimeError):  # BrokenProcessPool is one
            pool.submit(print)
    finally:
        pool.shutdown()
    assert [p.name for p in there] == [p.name for p in here]
    assert [p.read_bytes() for p in there] == [p.read_bytes() for p in here]


@pytest.mark.slow
def test_what_crosses_to_the_processes_is_frozen_before_the_province_is_written(
    warehouse: Engine, tmp_path: Path
) -> None:
    # A pool pickles a job's arguments in a thread of its own, later: an argument this thread
    # goes on using (the campaign's data, whose caches the province's workbook fills) can
    # change while it is pickled. Only a token, bytes and scopes may cross.
    from concurrent.futures import Future, ThreadPoolExecutor

    from flows.publish.workbooks.data import CampaignData

    sent: list[tuple[Any, ...]] = []

    class Recording(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
            sent.append(args[-1])  # pools.submit sends (folder, job, the job's arguments)
            return super().submit(fn, *args, **kwargs)

    with Recording(2) as pool:
        write_workbooks(warehouse, C, tmp_path, QS, run_id="run-1", pool=pool)
    assert sent and all(any(isinstance(a, bytes) for a in args) for args in sent)
    assert not any(isinstance(a, CampaignData) for args in sent for a in args)


@pytest.mark.slow
def test_a_unit_coded_like_the_province_does_not_overwrite_it(
    warehouse: Engine, tmp_path: Path
) -> None:
    with warehouse.begin() as conn:
        conn.execute(t.unit.insert().values(campaign_id=C, unit_code="01", unit_name="Phường 1"))
    paths = write_workbooks(warehouse, C, tmp_path, QS, run_id="run-1")
    assert [p.name for p in paths[:2]] == ["HN-2025_01_toan-tinh.xlsx", "HN-2025_01.xlsx"]
    assert load_workbook(paths[0])[SUMMARY_SHEET]["A1"].value == "TỔNG HỢP · Toàn tỉnh"
    assert load_workbook(paths[1])[SUMMARY_SHEET]["A1"].value == "TỔNG HỢP · Phường 1 (01)"


@pytest.mark.slow
def test_every_sheet_prints_a4_fitted_to_width_with_frozen_headers(
    books: dict[str, Path],
) -> None:
    wb = load_workbook(books["U1"])
    for ws in wb.worksheets:
        # landscape exactly when the columns are wider than a portrait page
        used = sum(
            ws.column_dimensions[get_column_letter(c)].width or 8.43
            for c in range(1, ws.max_column + 1)
        )
        wide = used > portrait_width()
        assert ws.page_setup.orientation == ("landscape" if wide else "portrait"), ws.title
        # the footer sits inside the bottom margin, with room for its line
        assert ws.page_margins.bottom - ws.page_margins.footer >= 0.3
        assert int(ws.page_setup.paperSize) == int(ws.PAPERSIZE_A4)
        # the alert digest, a page of a few lines per school, is fitted to one page
        tall = 1 if ws.title == ALERT_SHEET else 0
        assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == tall
        assert ws.sheet_properties.pageSetUpPr.fitToPage
    for name in (SUMMARY_SHEET, DIMENSION_SHEET, QUESTION_SHEET, SCHOOL_SHEET, ALERT_SHEET):
        assert wb[name].freeze_panes is not None, name
    assert wb[SUMMARY_SHEET].freeze_panes == f"C{SUMMARY_HEADER_ROW + 1}"
    assert wb[DIMENSION_SHEET].print_title_rows == "$5:$5"


# ---------------------------------------------------------------------------------------------
# Figures equal their marts


def _expected_dimension_rows(
    engine: Engine, unit_names: dict[str, str], scope: str
) -> list[tuple[Any, ...]]:
    """Theo tiêu chí as it should read, from the marts (province first for the province)."""
    out = []

    def add(unit: str, rows: list[dict[str, Any]]) -> None:
        for d in rows:
            n = d["n_respondents"]
            out.append(
                (
                    unit,
                    LEVEL_LABELS[d["level"]],
                    _label(d["questionnaire"]),
                    _dim_label(d["questionnaire"], d["dimension"]),
                    d["n_schools"],
                    _shown(n, n),
                    _shown(d["n_answers"], n),
                    _shown(d["mean_score"], n),
                    _shown(d["pct_satisfied"], n),
                    _shown(d["pct_dissatisfied"], n),
                )
            )

    marts = _rows(engine, t.mart_unit_dimension)
    if scope == "01":
        records = province_dimension(engine, C).to_dict("records")
        add("Toàn tỉnh", [{k: None if v != v else v for k, v in r.items()} for r in records])
        for code in sorted(unit_names):
            add(unit_names[code], [m for m in marts if m["unit_code"] == code])
    else:
        add(unit_names[scope], [m for m in marts if m["unit_code"] == scope])
    return out


@pytest.mark.slow
@pytest.mark.parametrize("scope", ["01", "U1", "U2", "U3"])
def test_dimension_sheet_equals_the_marts(
    warehouse: Engine, books: dict[str, Path], scope: str
) -> None:
    units = {r["unit_code"]: r["unit_name"] for r in _rows(warehouse, t.unit)}
    ws = load_workbook(books[scope])[DIMENSION_SHEET]
    hr = _header_row(ws, "Đơn vị")
    got = [row[:10] for row in _table(ws, hr)]
    expected = _expected_dimension_rows(warehouse, units, scope)
    if not expected:
        assert got[0][0].startswith("Chưa có số liệu")
        return
    # Same rows, whatever the order (the order is the report's, checked below).
    key = lambda r: tuple(str(v) for v in r[:4])  # noqa: E731
    assert sorted(map(key, got)) == sorted(map(key, expected))
    by_key = {key(r): r for r in got}
    for exp in expected:
        assert by_key[key(exp)] == exp
    # Report order: the five dimensions, CHUNG, MONG_DOI, in the questionnaire's order.
    th = [r[3] for r in got if r[0] == units.get(scope, "Toàn tỉnh") and r[1] == "Tiểu học"]
    assert th == [*QS["CMHS_TH"].dimensions.values(), "Mức đáp ứng mong đợi (%)"]
    if scope != "01":  # a unit's rate beside the province's
        province = {
            (d["level"], d["questionnaire"], d["dimension"]): d["pct_satisfied"]
            for d in province_dimension(warehouse, C).to_dict("records")
        }
        row = next(
            r
            for r in _table(ws, hr)
            if r[1] == "Tiểu học" and r[3] == QS["CMHS_TH"].dimensions["CSVC"]
        )
        assert row[10] == _approx(province[("TH", "CMHS_TH", "CSVC")])
        assert row[11] == pytest.approx(row[8] - row[10], rel=1e-12)
    # One decimal for percentages, two for means; stored unrounded.
    assert ws.cell(hr + 1, 9).number_format == PCT_FORMAT
    assert ws.cell(hr + 1, 8).number_format in ("0.00", PCT_FORMAT)


@pytest.mark.slow
def test_small_groups_are_suppressed_never_shown(books: dict[str, Path], warehouse: Engine) -> None:
    """MN1 had 4 respondents: every MN figure reads "<5", at school, unit and province scope,
    on every sheet that shows one; MN gets no chart."""
    marts = [m for m in _rows(warehouse, t.mart_unit_dimension) if m["level"] == "MN"]
    assert marts and all(m["n_respondents"] == 4 for m in marts)
    for scope in ("01", "U1"):
        wb = load_workbook(books[scope])
        ws = wb[DIMENSION_SHEET]
        mn = [r for r in _table(ws, _header_row(ws, "Đơn vị")) if r[1] == "Mầm non"]
        assert mn and all(v == SUPPRESSED for r in mn for v in r[5:10] if v is not None)
        summary = {r[0]: r for r in _table(wb[SUMMARY_SHEET], SUMMARY_HEADER_ROW)}
        assert summary["Mầm non"][8:12] == (SUPPRESSED,) * 4
        ws = wb[QUESTION_SHEET]
        column_a = [ws.cell(r, 1).value for r in range(1, ws.max_row + 1)]
        mn = next(i for i, v in enumerate(column_a) if str(v).startswith("Mầm non · "))
        # One line instead of a block of "<5", then the next level's block.
        assert column_a[mn + 1] == "Dưới 5 người trả lời: số liệu ẩn (<5)."
        assert str(column_a[mn + 2]).startswith("Tiểu học · ")
        ws = wb[SCHOOL_SHEET]
        mn1 = next(r for r in _table(ws, _header_row(ws, "Hạng")) if r[1] == "MN1")
        assert mn1[0] is None and set(mn1[-10:]) == {SUPPRESSED}
        with zipfile.ZipFile(books[scope]) as z:
            charts = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/charts/chart")]
        assert charts and not any("Mầm non" in c for c in charts)


@pytest.mark.slow
def test_summary_sheet_equals_the_marts(warehouse: Engine, books: dict[str, Path]) -> None:
    schools = _school_units(warehouse)
    completeness = _rows(warehouse, t.mart_completeness)
    marts = _rows(warehouse, t.mart_unit_dimension)
    for scope in ("U1", "U2"):
        ws = load_workbook(books[scope])[SUMMARY_SHEET]
        assert [c.value for c in ws[SUMMARY_HEADER_ROW]] == list(SUMMARY_HEADERS)
        got = {(r[0], r[1]): r for r in _table(ws, SUMMARY_HEADER_ROW)}
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for row in completeness:
            school = schools[row["school_code"]]
            if school["unit_code"] == scope:
                groups[(school["level"], row["questionnaire"])].append(row)
        assert len(got) == len(groups)
        for (level, q), rows in groups.items():
            r = got[(LEVEL_LABELS[level], _label(q))]
            statuses = [x["status"] for x in rows]
            assert r[2:8] == (
                len(rows),
                sum(s in ("submitted", "late") for s in statuses),
                statuses.count("late"),
                sum(s in ("pending", "missing") for s in statuses),
                statuses.count("failed"),
                sum(x["n_valid"] for x in rows),
            )
            dims = {
                m["dimension"]: m
                for m in marts
                if (m["unit_code"], m["level"], m["questionnaire"]) == (scope, level, q)
            }
            if not dims:
                assert r[8:12] == (None, None, None, None)
                continue
            five = [dims[d] for d in DIMENSIONS]
            if any(d["n_respondents"] < 5 for d in five):
                assert r[8] == r[10] == SUPPRESSED
            else:
                assert r[8] == pytest.approx(sum(d["pct_satisfied"] for d in five) / 5)
                assert r[10] == pytest.approx(sum(d["mean_score"] for d in five) / 5)
            n = dims["CHUNG"]["n_respondents"]
            assert r[9] == _shown(dims["CHUNG"]["pct_satisfied"], n)
            assert r[11] == _shown(
                dims["MONG_DOI"]["mean_score"], dims["MONG_DOI"]["n_respondents"]
            )
    # U2's primary parents are unhappy: the verdict and the key lines say so.
    ws = load_workbook(books["U2"])[SUMMARY_SHEET]
    row = {r[0]: r for r in _table(ws, SUMMARY_HEADER_ROW) if r[1] == "Cha mẹ học sinh"}
    assert row["Tiểu học"][12].startswith("Thấp")
    lines = " ".join(str(ws.cell(r, 1).value) for r in range(4, 8))
    assert "1 tệp lỗi" in lines and "2 mức đỏ, 1 mức vàng" in lines


@pytest.mark.slow
def test_summary_charts_one_per_group_coloured_by_tier(books: dict[str, Path]) -> None:
    ws = load_workbook(books["01"])[SUMMARY_SHEET]
    titles = []
    with zipfile.ZipFile(books["01"]) as z:
        charts = sorted(n for n in z.namelist() if n.startswith("xl/charts/chart"))
        xml = [z.read(n).decode() for n in charts]
    # CMHS_TH (TH) only: every MN figure is suppressed. Its bars carry tier colours.
    assert len(charts) == 1
    for chart in xml:
        titles.append(chart)
        assert "C00000" in chart or "FFC000" in chart or "70AD47" in chart
    assert "Tiểu học – Cha mẹ học sinh" in titles[0]
    # Conditional fills use the thresholds (defaults here).
    formulas = [r.formula[0] for cf in ws.conditional_formatting for r in cf.rules]
    assert any("<70" in f for f in formulas) and any(">=85" in f for f in formulas)


@pytest.mark.slow
def test_thresholds_are_the_alert_rules_and_listed(warehouse: Engine, tmp_path: Path) -> None:
    thresholds = {"pct_satisfied_amber": 90.0, "papi_pct_yes_min": 75.0, "wilson_z": 1.5}
    path = write_workbooks(warehouse, C, tmp_path, QS, run_id="run-1", thresholds=thresholds)[1]
    wb = load_workbook(path)
    formulas = [r.formula[0] for cf in wb[SUMMARY_SHEET].conditional_formatting for r in cf.rules]
    assert any(">=90" in f for f in formulas) and not any(">=85" in f for f in formulas)
    papi = [r.formula[0] for cf in wb[PAPI_SHEET].conditional_formatting for r in cf.rules]
    assert papi and all("<75" in f for f in papi)
    info = wb[INFO_SHEET]
    listed = {
        row[2]: row[1] for row in _table(info, _header_row(info, "Ngưỡng")) if row[2] is not None
    }
    assert listed["pct_satisfied_amber"] == 90
    assert listed["papi_pct_yes_min"] == 75
    assert listed["wilson_z"] == 1.5
    assert listed["pct_satisfied_red"] == 70  # defaults still listed
    assert set(listed) == {f.name for f in dataclasses.fields(Thresholds)} | {"(ẩn danh)"}
    # The same keys as the alert rules: a typo fails loudly, as it does there.
    with pytest.raises(ThresholdError, match="pct_satisfied_target"):
        write_workbooks(warehouse, C, tmp_path, QS, thresholds={"pct_satisfied_target": 90})


def _question_expectation(
    engine: Engine, scope: str
) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    out: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in _rows(engine, t.mart_unit_question):
        if scope != "01" and r["unit_code"] != scope:
            continue
        acc = out[(r["level"], r["questionnaire"])].setdefault(
            r["question_code"], {k: 0 for k in ("n_answers", "n_1", "n_2", "n_3", "n_4", "n_5")}
        )
        for k in ("n_answers", "n_1", "n_2", "n_3", "n_4", "n_5"):
            acc[k] += r[k]
        if scope != "01":
            acc["mean_score"], acc["pct_satisfied"] = r["mean_score"], r["pct_satisfied"]
    if scope == "01":
        for group in out.values():
            for acc in group.values():
                n = acc["n_answers"]
                acc["mean_score"] = sum(k * acc[f"n_{k}"] for k in range(1, 6)) / n
                acc["pct_satisfied"] = 100 * (acc["n_4"] + acc["n_5"]) / n
    return out


@pytest.mark.slow
@pytest.mark.parametrize("scope", ["01", "U1"])
def test_question_sheet_equals_the_marts(
    warehouse: Engine, books: dict[str, Path], scope: str
) -> None:
    ws = load_workbook(books[scope])[QUESTION_SHEET]
    expected = _question_expectation(warehouse, scope)
    th = expected[("TH", "CMHS_TH")]
    q = QS["CMHS_TH"]
    # Find the TH block: its item rows follow the group title.
    start = next(
        r for r in range(1, ws.max_row + 1) if str(ws.cell(r, 1).value).startswith("Tiểu học")
    )
    rows: dict[str, tuple[Any, ...]] = {}
    for row in ws.iter_rows(min_row=start + 1, values_only=True):
        if row[0] is not None and str(row[0]).startswith(("Mầm non", "Trung học")):
            break
        if row[0] in th:
            rows[row[0]] = row
    likert = [i for i in q.items if i.kind == "likert"]
    assert list(rows) == [i.code for i in likert]  # grouped by dimension, questionnaire order
    for item in likert:
        row, exp = rows[item.code], th[item.code]
        n = exp["n_answers"]
        assert row[1] == item.text
        for k in range(1, 6):
            assert row[2 * k] == exp[f"n_{k}"]
            assert row[2 * k + 1] == pytest.approx(100 * exp[f"n_{k}"] / n, rel=1e-12)
        assert row[12] == n
        assert row[13] == pytest.approx(exp["pct_satisfied"], rel=1e-12)
        assert row[14] == pytest.approx(100 * (exp["n_1"] + exp["n_2"]) / n, rel=1e-12)
        assert row[15] == pytest.approx(exp["mean_score"], rel=1e-12)
    # Dimension titles sit above their items.
    titles = [ws.cell(r, 1).value for r in range(start, ws.max_row + 1)]
    assert q.dimensions["TIEP_CAN"] in titles and q.dimensions["CHUNG"] in titles


@pytest.mark.slow
def test_school_sheet_ranks_schools_and_hides_small_ones(
    warehouse: Engine, books: dict[str, Path]
) -> None:
    marts = _rows(warehouse, t.mart_school_dimension)
    ws = load_workbook(books["01"])[SCHOOL_SHEET]
    hr = _header_row(ws, "Hạng")
    block = [row for row in _table(ws, hr) if row[1] in ("TH1", "TH2", "TH3")]
    by_code = {r[1]: r for r in block}
    assert [r[1] for r in block][-1] == "TH2"  # unranked, last
    five = {}
    for code in ("TH1", "TH3"):
        dims = {
            m["dimension"]: m
            for m in marts
            if m["school_code"] == code and m["questionnaire"] == "CMHS_TH"
        }
        row = by_code[code]
        assert row[3] == {"TH1": "Phường Ba Đình", "TH3": HOSTILE_UNIT}[code]
        assert row[6:12] == tuple(_approx(dims[d]["pct_satisfied"]) for d in (*DIMENSIONS, "CHUNG"))
        five[code] = sum(dims[d]["pct_satisfied"] for d in DIMENSIONS) / 5
        assert row[12] == pytest.approx(five[code], rel=1e-12)
        assert row[13] == pytest.approx(sum(dims[d]["mean_score"] for d in DIMENSIONS) / 5)
        assert row[14] == _approx(dims["MONG_DOI"]["mean_score"])
    best, worst = sorted(five, key=five.__getitem__, reverse=True)
    assert by_code[best][0] == 1 and by_code[worst][0] == 2
    small = by_code["TH2"]
    assert small[0] is None and small[5] == SUPPRESSED
    assert all(v == SUPPRESSED for v in small[6:15])
    # The school whose name starts with "-" stays text.
    assert by_code["TH3"][2] == "-Trường Tiểu học Lê Lợi"


@pytest.mark.slow
def test_service_sheet_equals_the_mart_and_masks_phone_numbers(
    warehouse: Engine, books: dict[str, Path]
) -> None:
    mart = _rows(warehouse, t.mart_service_ranking)
    ws = load_workbook(books["U2"])[SERVICE_SHEET]
    got = _table(ws, _header_row(ws, "Dịch vụ"))
    expected = sorted(
        (mask_personal(m["service"]), m["rank"], m["school_code"], m["total_points"])
        for m in mart
        if m["unit_code"] == "U2"
    )
    assert sorted((r[0], r[1], r[2], r[4]) for r in got) == expected
    assert any("[số điện thoại]" in r[0] for r in got)
    low = next(r for r in got if r[0] == "Bán trú")
    assert low[4] == 24.0 and low[5] == "Cần rà soát"
    # The province ranks each service across units; the mart's unit rank is kept beside it.
    ws = load_workbook(books["01"])[SERVICE_SHEET]
    rows = [r for r in _table(ws, _header_row(ws, "Dịch vụ")) if r[0] == "Bán trú"]
    assert [(r[1], r[3], r[4], r[6]) for r in rows] == [(1, 1, "TH1", 80.0), (2, 1, "TH3", 24.0)]


@pytest.mark.slow
def test_papi_sheet_equals_the_mart(warehouse: Engine, books: dict[str, Path]) -> None:
    mart = {(r["scope"], r["scope_code"], r["indicator"]): r for r in _rows(warehouse, t.mart_papi)}
    indicators = [i for i in QS["PAPI_TH"].items if i.kind == "yesno"]
    ws = load_workbook(books["U1"])[PAPI_SHEET]
    hr = _header_row(ws, "Mã")
    rows = _table(ws, hr)
    assert [r[0] for r in rows] == [i.code for i in indicators]
    for row, item in zip(rows, indicators, strict=True):
        unit, prov = mart[("unit", "U1", item.code)], mart[("province", "01", item.code)]
        assert row[1] == item.text
        assert row[2:5] == (unit["n_answers"], _approx(unit["pct_yes"]), _approx(prov["pct_yes"]))
    matrix_hr = _header_row(ws, "Mã", hr + 1)
    schools = {r[0]: r for r in _table(ws, matrix_hr)}
    assert set(schools) == {"TH1", "TH2"}
    assert schools["TH1"][2:] == tuple(
        _approx(mart[("school", "TH1", i.code)]["pct_yes"]) for i in indicators
    )
    assert all(v == SUPPRESSED for v in schools["TH2"][2:])  # 3 answers


@pytest.mark.slow
def test_year_on_year(warehouse: Engine, books: dict[str, Path], tmp_path: Path) -> None:
    previous = _rows(warehouse, t.mart_unit_dimension, P)
    current = _rows(warehouse, t.mart_unit_dimension)
    ws = load_workbook(books["U1"])[YOY_SHEET]
    rows = {
        (r[0], r[2]): r for r in _table(ws, _header_row(ws, "Cấp học")) if r[1] == "Cha mẹ học sinh"
    }

    def pick(rows_: list[dict[str, Any]], dim: str) -> dict[str, Any]:
        return next(
            m
            for m in rows_
            if (m["unit_code"], m["level"], m["questionnaire"], m["dimension"])
            == ("U1", "TH", "CMHS_TH", dim)
        )

    for dim in (*DIMENSIONS, "CHUNG"):
        now, before = pick(current, dim), pick(previous, dim)
        row = rows[("Tiểu học", QS["CMHS_TH"].dimensions[dim])]
        assert row[3:6] == (
            _approx(now["pct_satisfied"]),
            _approx(before["pct_satisfied"]),
            pytest.approx(now["pct_satisfied"] - before["pct_satisfied"], rel=1e-9),
        )
        assert row[8] == pytest.approx(now["mean_score"] - before["mean_score"], rel=1e-9)
    five = rows[("Tiểu học", FIVE_MEAN_LABEL)]
    assert five[3] == pytest.approx(sum(pick(current, d)["pct_satisfied"] for d in DIMENSIONS) / 5)
    # U2 did not exist last year; the province compares with the previous province figures.
    u2 = load_workbook(books["U2"])[YOY_SHEET]
    assert "không có số liệu của" in u2.cell(5, 1).value
    ws = load_workbook(books["01"])[YOY_SHEET]
    assert len(_table(ws, _header_row(ws, "Cấp học"))) > 0
    # No previous campaign: one line says so.
    with warehouse.begin() as conn:
        conn.execute(
            sa.update(t.campaign).where(t.campaign.c.campaign_id == C).values(previous_id=None)
        )
    path = write_workbooks(warehouse, C, tmp_path / "noprev", QS, run_id="run-1")[1]
    ws = load_workbook(path)[YOY_SHEET]
    assert ws.cell(5, 1).value.startswith("Không có đợt khảo sát năm trước")


@pytest.mark.slow
def test_alert_detail_sheet_shows_the_scope_alerts(books: dict[str, Path]) -> None:
    def alerts(scope: str) -> list[tuple[Any, ...]]:
        ws = load_workbook(books[scope])[ALERT_DETAIL_SHEET]
        return _table(ws, _header_row(ws, "Mức"))

    u1 = alerts("U1")
    # Open first (most severe first), then acknowledged; a unit's own and its schools' only.
    assert [(r[0], r[1], r[3]) for r in u1] == [
        ("Vàng", "Tỷ lệ hài lòng thấp", "TH2"),
        ("Thông tin", "Không đủ mẫu để kết luận", "TH2"),
        ("Vàng", "Tỷ lệ hài lòng thấp", "TH1"),
    ]
    # TH2 has 3 respondents: neither its rate nor its count is published.
    assert u1[0][6] == SUPPRESSED and u1[1][6] == SUPPRESSED
    assert u1[0][7] == 85.0
    amber = u1[2]
    assert amber[4] == "Trường Tiểu học Kim Đồng"
    assert amber[5:9] == (
        "Cha mẹ học sinh · Tiếp cận dịch vụ giáo dục (CMHS_TH/TIEP_CAN)",
        80.25,
        85.0,
        "Đã ghi nhận",
    )
    assert amber[9] == dt.datetime(2025, 12, 1, 1, 35, 10) and amber[10] == amber[9]
    assert amber[11] == "=cmd|' /C calc'!A0 gọi cô [tên] [số điện thoại]"  # text, masked
    u2 = alerts("U2")
    assert [(r[0], r[3], r[5]) for r in u2] == [
        (
            "Đỏ",
            "U2",
            "Tiểu học · Cha mẹ học sinh · Cơ sở vật chất, trang thiết bị dạy học (TH/CMHS_TH/CSVC)",
        ),
        ("Đỏ", "TH3", "Cha mẹ học sinh · Hài lòng chung (CMHS_TH/CHUNG)"),
        ("Vàng", "TH3", "Bán trú"),
    ]
    assert u2[0][6] == 55.5  # a unit of 30 respondents
    province = alerts("01")
    assert len(province) == len(ALERTS)
    assert province[-1][5] == "Giáo viên không ưu ái học sinh học thêm (HOC_THEM)"
    assert province[-1][8] == "Đã xử lý"
    assert alerts("U3")[0][0] == "Không có cảnh báo nào cho phạm vi này."
    # the suggested follow-up, most specific first: the dimension's, the indicator's
    assert amber[12] == DEFAULT_ACTIONS["TIEP_CAN"]
    assert u2[0][12] == DEFAULT_ACTIONS["CSVC"]
    assert province[-1][12] == DEFAULT_ACTIONS["HOC_THEM"]


@pytest.mark.slow
def test_alert_detail_sheet_suggests_the_provinces_own_follow_up(
    warehouse: Engine, tmp_path: Path
) -> None:
    own = {"CSVC": "Phòng CSVC của Sở kiểm tra trong tháng"}
    paths = write_workbooks(warehouse, C, tmp_path, QS, run_id="run-1", actions=own)
    ws = load_workbook(next(p for p in paths if "U2" in p.name))[ALERT_DETAIL_SHEET]
    assert ws.cell(_header_row(ws, "Mức"), 13).value == "Hướng xử lý đề xuất"
    rows = _table(ws, _header_row(ws, "Mức"))
    assert rows[0][5].endswith("(TH/CMHS_TH/CSVC)") and rows[0][12] == own["CSVC"]
    assert rows[1][12] == DEFAULT_ACTIONS["CHUNG"]  # others keep the built-in one


def newest_load(engine: Engine) -> dt.datetime:
    """When the campaign's newest successful load ended, to the second (the workbooks'
    "data as of")."""
    sql = "SELECT max(finished_at) AS at FROM load_ledger WHERE campaign_id = :c AND status = :s"
    found = select_rows(engine, sql, c=C, s="loaded")[0]["at"]
    at = found if isinstance(found, dt.datetime) else dt.datetime.fromisoformat(str(found))
    return at.replace(microsecond=0)


@pytest.mark.slow
def test_info_sheet(warehouse: Engine, books: dict[str, Path]) -> None:
    ws = load_workbook(books["U2"])[INFO_SHEET]
    facts = {ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(1, ws.max_row + 1)}
    assert facts["Mã đợt khảo sát"] == C
    assert facts["Tên đợt khảo sát"] == CAMPAIGN.name
    assert facts["Hạn nộp"] == dt.datetime(2025, 11, 30)
    assert facts["Đợt năm trước để so sánh"] == P
    assert facts[STAMP_LABELS[0]] == "run-1"
    assert facts[STAMP_LABELS[2]] == newest_load(warehouse)
    # U2's sources: CMHS_TH, PAPI_TH, DVGD_8TC loaded; the second CMHS_TH file failed.
    assert facts["Đã nạp"] == 3 and facts["Lỗi, không đọc được"] == 1
    assert facts["Tổng số nguồn"] == 4
    problems = _table(ws, _header_row(ws, "Mã trường"))
    assert problems == [
        ("TH3", "-Trường Tiểu học Lê Lợi", "CMHS_TH", "TH3_lop5.xlsx", "Lỗi, không đọc được")
    ]
    ws = load_workbook(books["01"])[INFO_SHEET]
    facts = {ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(1, ws.max_row + 1)}
    assert facts["Chưa có tệp"] == 1 and facts["Tổng số nguồn"] == 11


# ---------------------------------------------------------------------------------------------
# Privacy and safety


def _all_cells(path: Path) -> Iterator[tuple[str, Any]]:
    for ws in load_workbook(path).worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.value is not None:
                    yield ws.title, cell


@pytest.mark.slow
def test_no_personal_data_and_no_formulas_anywhere(books: dict[str, Path]) -> None:
    for path in books.values():
        for sheet, cell in _all_cells(path):
            assert cell.data_type != "f", (path.name, sheet, cell.coordinate)
            if isinstance(cell.value, str):
                for marker in PERSONAL_MARKERS:
                    assert marker not in cell.value, (path.name, sheet, cell.coordinate)
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.startswith("xl/worksheets/sheet"):
                    xml = z.read(name).decode()
                    assert "<f>" not in xml and "<f " not in xml


@pytest.mark.slow
def test_text_from_the_warehouse_is_never_a_formula(books: dict[str, Path]) -> None:
    wb = load_workbook(books["U2"])
    ws = wb[SUMMARY_SHEET]
    assert ws["A1"].value == f"TỔNG HỢP · {HOSTILE_UNIT} (U2)"
    assert ws["A2"].value.startswith("@Khảo sát") and ws["A2"].data_type == "s"
    dims = wb[DIMENSION_SHEET]
    cell = dims.cell(_header_row(dims, "Đơn vị") + 1, 1)
    assert cell.value == HOSTILE_UNIT and cell.data_type == "s" and cell.quotePrefix


# ---------------------------------------------------------------------------------------------
# Reproducibility


def _cells(path: Path) -> dict[tuple[str, str], Any]:
    out = {}
    for ws in load_workbook(path).worksheets:
        stamp_rows = (
            {r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value in STAMP_LABELS}
            if ws.title == INFO_SHEET
            else set()
        )
        for row in ws.iter_rows():
            for cell in row:
                if cell.row in stamp_rows and cell.column == 2:
                    continue
                out[(ws.title, cell.coordinate)] = (cell.value, cell.number_format)
    return out


@pytest.mark.slow
def test_same_data_gives_the_same_cells_only_the_run_stamp_differs(
    warehouse: Engine, tmp_path: Path
) -> None:
    first = write_workbooks(warehouse, C, tmp_path / "a", QS, run_id="run-1")
    again = write_workbooks(warehouse, C, tmp_path / "b", QS, run_id="run-1")
    for a, b in zip(first, again, strict=True):
        assert a.read_bytes() == b.read_bytes()
    # The next night re-runs the failed source only: same data, another run.
    start_run(warehouse, "run-2", C, started_at=RUN_2_START)
    record_failure(warehouse, C, "run-2", FAILED, "still broken")
    finish_run(warehouse, "run-2", finished_at=RUN_2_START + dt.timedelta(minutes=1))
    second = write_workbooks(warehouse, C, tmp_path / "c", QS, run_id="run-2")
    for a, b in zip(first, second, strict=True):
        assert _cells(a) == _cells(b), a.name
        info_a, info_b = load_workbook(a)[INFO_SHEET], load_workbook(b)[INFO_SHEET]
        stamps = [
            (info_a.cell(r, 2).value, info_b.cell(r, 2).value)
            for r in range(1, info_a.max_row + 1)
            if info_a.cell(r, 1).value in STAMP_LABELS
        ]
        # the figures are still those of run-1's loads: a failure loads nothing
        newest = newest_load(warehouse)
        assert stamps == [("run-1", "run-2"), (RUN_1_START, RUN_2_START), (newest, newest)]
    props = load_workbook(first[0]).properties
    assert props.created == props.modified == dt.datetime(2020, 1, 1)
    # Without a run id the latest run stamps the workbooks.
    latest = write_workbooks(warehouse, C, tmp_path / "d", QS)
    assert latest[0].read_bytes() == second[0].read_bytes()


# ---------------------------------------------------------------------------------------------
# Shared writing helpers


@pytest.mark.parametrize(
    "text", ["=1+1", "+84 912 345 678", "-Đề nghị thêm cây xanh", "@SUM(A1:A3)", "=)) vui"]
)
def test_write_cell_keeps_formula_like_text_as_text(tmp_path: Path, text: str) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    write_cell(ws, 1, 1, text)
    write_cell(ws, 2, 1, -5)  # numbers stay numbers
    write_cell(ws, 3, 1, "Bình thường\x07")  # a control character XML cannot hold
    save_workbook(wb, tmp_path / "x.xlsx")
    back = load_workbook(tmp_path / "x.xlsx").active
    assert back is not None
    assert back["A1"].value == text and back["A1"].data_type == "s"
    assert back["A1"].quotePrefix  # Excel keeps it text when the cell is edited
    assert back["A2"].value == -5 and back["A2"].data_type == "n"
    assert back["A3"].value == "Bình thường"


def _styled_sheet(fast: bool) -> Workbook:
    """A sheet styled and merged the way the workbooks do it: through write_cell and
    merge_cells (``fast``), or through openpyxl's own attribute assignment and merge."""
    thin = Side(style="thin", color="A6A6A6")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    top_only = Border(top=Side(style="medium"))
    fill = PatternFill("solid", start_color="F2F2F2")
    bold, wrap = Font(bold=True), Alignment(vertical="center", wrap_text=True)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in range(1, 9):
        for col in range(1, 7):
            # A fresh (equal) Font for some cells, as callers outside this module pass them.
            font = bold if (row + col) % 3 else Font(bold=True)
            if fast:
                write_cell(ws, row, col, f"{row}/{col}", font=font)
            else:
                cell = write_cell(ws, row, col, f"{row}/{col}")
                cell.font = font
            style = {"border": box if row % 2 else top_only, "alignment": wrap}
            if col == 1:
                style["fill"] = fill
            if fast:
                set_style(ws.cell(row, col), **style)  # type: ignore[arg-type]
            else:
                for name, value in style.items():
                    setattr(ws.cell(row, col), name, value)
    write_cell(ws, 12, 1, "no border")
    ranges = [
        (1, 1, 1, 6),
        (2, 1, 3, 1),
        (2, 2, 3, 3),
        (4, 2, 4, 6),
        (12, 1, 12, 4),
        (10, 2, 11, 5),
    ]
    for first_row, first_col, last_row, last_col in ranges:
        if fast:
            merge_cells(ws, first_row, first_col, last_row, last_col)
        else:
            ws.merge_cells(
                start_row=first_row, start_column=first_col, end_row=last_row, end_column=last_col
            )
    fit_row_heights(ws)
    return wb


def test_fast_styling_and_merging_write_what_openpyxl_writes(tmp_path: Path) -> None:
    # merge_cells and set_style stand in for openpyxl's own (much slower) code paths; the
    # files must not differ by a byte.
    fast = save_workbook(_styled_sheet(True), tmp_path / "fast.xlsx")
    plain = save_workbook(_styled_sheet(False), tmp_path / "plain.xlsx")
    assert fast.read_bytes() == plain.read_bytes()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Liên hệ a.b@truong.edu.vn ngay", "Liên hệ [email] ngay"),
        ("Gọi 0912 345 678 hoặc +84912345678", "Gọi [số điện thoại] hoặc [số điện thoại]"),
        ("Bán trú 2024-2025, 35 học sinh", "Bán trú 2024-2025, 35 học sinh"),
    ],
)
def test_mask_personal(text: str, expected: str) -> None:
    assert mask_personal(text) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [("XP01", "XP01"), ("../../etc", "_.._etc"), ("Phường 1", "Ph__ng_1"), ("", "_")],
)
def test_registry_codes_cannot_escape_the_output_folder(code: str, expected: str) -> None:
    assert safe_file_part(code) == expected
    assert "/" not in safe_file_part(code)


def test_table_columns_fit_their_content_and_long_text_wraps() -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    write_cell(ws, 1, 1, "TỔNG HỢP · a title far wider than any column of the table below it")
    for row, text in enumerate(("Trung học phổ thông", "x" * 80), start=3):
        set_style(write_cell(ws, row, 1, text), border=BOX)
        set_style(write_cell(ws, row, 2, 1234567), border=BOX)
    ws.column_dimensions["A"].width = 10
    print_setup(ws, (3, 3), None)
    # the 80-character cell is capped and wraps; the title (no border) does not count
    assert ws.column_dimensions["A"].width == MAX_COLUMN_WIDTH
    assert ws["A4"].alignment.wrap_text and not ws["A3"].alignment.wrap_text
    assert ws.row_dimensions[4].height and ws.row_dimensions[4].height > 15
    assert ws.column_dimensions["B"].width >= len("1,234,567")
    assert ws.page_setup.orientation == "portrait"  # 50 + 11 fit a portrait page
    assert ws.oddFooter.right.font == "Calibri,Regular"
