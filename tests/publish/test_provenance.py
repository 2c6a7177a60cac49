"""Provenance: every workbook says which run's data it shows, whichever command wrote it.

The test province goes through the real ``khaosat`` commands (run, publish, rerun --school) and
each workbook's "Thông tin" sheet is read back with openpyxl and compared with what ``khaosat
status --json`` says about the same warehouse: the run id, its start, and the newest load.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from flows.publish.labels import INFO_SHEET, STAMP_LABELS
from tests.factories import khaosat, make_province

# Each test drives whole runs, publishes and re-runs of a province.
pytestmark = pytest.mark.slow

#: Each load of the test province in one process: the run takes seconds, not a pool's start.
ENV = {"KHAOSAT_RUN__PARSE_PROCESSES": "0"}


def status(config: Path) -> dict[str, Any]:
    """``khaosat status --json``, parsed."""
    done = khaosat("status", "--json", "--config", str(config), timeout=120)
    assert done.returncode in (0, 1, 3), done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def info_sheets(output: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every leadership workbook's Thông tin rows (their first five columns), by file name."""
    sheets = {}
    for path in sorted(output.glob("*.xlsx")):
        wb = load_workbook(path, read_only=True)
        try:
            if INFO_SHEET in wb.sheetnames:
                rows = wb[INFO_SHEET].iter_rows(max_col=5, values_only=True)
                sheets[path.name] = [tuple(r) for r in rows]
        finally:
            wb.close()
    assert sheets, f"no leadership workbook in {output}"
    return sheets


def fact(rows: list[tuple[Any, ...]], label: str) -> Any:
    """The value beside ``label`` in column A."""
    found = [r[1] for r in rows if r and r[0] == label]
    assert len(found) == 1, f"{label!r} appears {len(found)} times"
    return found[0]


def local(iso: str | None) -> dt.datetime | None:
    """status --json's ISO time as the naive campaign-local time a workbook shows, to the
    second."""
    if iso is None:
        return None
    return dt.datetime.fromisoformat(iso).replace(tzinfo=None, microsecond=0)


def assert_matches_status(output: Path, config: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every workbook's run id, start and data cut-off are those ``status`` reports."""
    st = status(config)
    last = st["last_run"]
    newest = max(local(s["last_loaded_at"]) for s in st["sources"] if s["last_loaded_at"])
    sheets = info_sheets(output)
    for name, rows in sheets.items():
        assert fact(rows, STAMP_LABELS[0]) == last["run_id"], name
        assert fact(rows, STAMP_LABELS[1]) == local(last["started_at"]), name
        assert fact(rows, STAMP_LABELS[2]) == newest, name
    return sheets


@pytest.fixture
def province(tmp_path: Path, prefect_harness: None) -> Path:
    config = make_province(tmp_path)
    done = khaosat("run", "--config", str(config), **ENV)
    assert done.returncode == 1, done.stdout + done.stderr  # S5's file is damaged
    return config


def test_publish_shows_the_latest_run_that_status_knows(province: Path) -> None:
    before = status(province)["last_run"]["run_id"]
    done = khaosat("publish", "--config", str(province), **ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    assert status(province)["last_run"]["run_id"] == before  # publish starts no run
    sheets = assert_matches_status(province.parent / "output", province)
    for rows in sheets.values():
        assert "—" not in (fact(rows, STAMP_LABELS[1]), fact(rows, STAMP_LABELS[2]))


def test_rerun_of_a_school_whose_file_went_keeps_counting_its_answers(province: Path) -> None:
    first = status(province)
    s1 = next(s for s in first["sources"] if s["school_code"] == "S1")
    (province.parent / s1["location"]).unlink()
    done = khaosat("rerun", "--school", "S1", "--config", str(province), **ENV)
    assert done.returncode == 3, done.stdout + done.stderr  # its file is absent now

    after = status(province)
    assert after["last_run"]["run_id"] != first["last_run"]["run_id"]
    sheets = assert_matches_status(province.parent / "output", province)
    day = local(s1["last_loaded_at"])
    assert day is not None
    for name in ("T-2024_TM.xlsx", "T-2024_U1.xlsx"):
        rows = sheets[name]
        titles = [r[0] for r in rows]
        kept = titles.index("Nguồn vẫn tính theo lần nộp trước")
        listed = [r for r in rows[kept:] if r[0] == "S1"]
        assert len(listed) == 1, name
        assert f"dùng số liệu lần nộp trước (ngày {day:%d/%m/%Y})" in listed[0][4]
        if "Nguồn chưa đưa được vào số liệu" in titles:
            left_out = rows[titles.index("Nguồn chưa đưa được vào số liệu") :]
            assert "S1" not in [r[0] for r in left_out], name
