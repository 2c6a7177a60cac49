"""Folder sources end to end: ``khaosat run`` on the test province whose files sit in folders
named by ``*`` rows of sources.csv instead of one row each."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from flows.settings import load_settings
from tests.factories import khaosat, make_province, mart_tables, rows, stamp
from warehouse import db

#: Whole runs in subprocesses.
pytestmark = pytest.mark.slow

#: One row per questionnaire over the one folder the province's files are in: the pattern
#: tells a school's CMHS file from its HS one.
FOLDER_ROWS = """\
school_code,questionnaire,kind,location
*,CMHS_TH,folder,submissions#{school_code}_cmhs.*
*,CMHS_THCS,folder,submissions#{school_code}_cmhs.*
*,CMHS_THPT,folder,submissions#{school_code}_cmhs.*
*,HS_THPT,folder,submissions#{school_code}_hs.*
"""


def run(config: Path) -> tuple[int, str]:
    done = khaosat("run", "--config", str(config))
    return done.returncode, done.stdout + done.stderr


def status(config: Path) -> dict[str, Any]:
    shown = khaosat("status", "--config", str(config), "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return dict(json.loads(shown.stdout))


def ledger(config: Path) -> list[tuple[object, ...]]:
    engine = db.connect(load_settings(config, env={}).warehouse_url)
    try:
        return sorted(
            (r["school_code"], r["questionnaire"], r["location"], r["status"])
            for r in rows(
                engine,
                "SELECT school_code, questionnaire, location, status FROM load_ledger "
                "WHERE run_id = (SELECT run_id FROM run ORDER BY started_at DESC LIMIT 1)",
            )
        )
    finally:
        engine.dispose()


def marts(config: Path) -> dict[str, list[tuple[object, ...]]]:
    engine = db.connect(load_settings(config, env={}).warehouse_url)
    try:
        return mart_tables(engine)
    finally:
        engine.dispose()


def test_a_folder_gives_the_marts_of_its_files_listed_one_by_one_and_nothing_twice(
    tmp_path: Path, prefect_harness: None
) -> None:
    listed = make_province(tmp_path / "listed")
    folder = make_province(tmp_path / "folder")
    (folder.parent / "sources.csv").write_text(FOLDER_ROWS, encoding="utf-8")

    assert run(listed)[0] == 1  # S5's file is broken, in both
    code, out = run(folder)
    assert code == 1, out
    assert marts(folder) == marts(listed)
    assert ledger(folder) == [
        ("S1", "CMHS_TH", "submissions/S1_cmhs.xlsx", "loaded"),
        ("S2", "CMHS_TH", "submissions/S2_cmhs.xls", "loaded"),
        ("S3", "CMHS_THPT", "submissions/S3_cmhs.ods", "loaded"),
        ("S3", "HS_THPT", "submissions/S3_hs.csv", "loaded"),
        ("S5", "CMHS_THCS", "submissions/S5_cmhs.xlsx", "failed"),
    ]
    # S6 has no file in the folder: missing, exactly as when its absent file was listed
    completeness = {
        (r[0], r[1]): r[2] for r in marts(folder)["mart_completeness"] if r[0] in ("S4", "S6")
    }
    assert completeness == {("S4", "CMHS_TH"): "missing", ("S6", "CMHS_THCS"): "missing"}

    code, out = run(folder)  # a second night, nothing changed
    assert code == 1, out
    assert [r[3] for r in ledger(folder)] == ["unchanged"] * 4 + ["failed"]
    found_in = {s["location"]: s.get("found_in") for s in status(folder)["sources"]}
    assert found_in["submissions/S1_cmhs.xlsx"] == "submissions#{school_code}_cmhs.*"


def test_a_messy_folder_loads_what_it_can_and_names_every_file_it_could_not_place(
    tmp_path: Path, prefect_harness: None
) -> None:
    config = make_province(tmp_path)
    sub, nop = tmp_path / "submissions", tmp_path / "nop"
    (nop / "XA01" / "S1").mkdir(parents=True)
    shutil.copy(sub / "S1_cmhs.xlsx", nop / "XA01" / "S1" / "phieu.xlsx")  # a folder per school
    shutil.copy(sub / "S2_cmhs.xls", nop / "S1 ban cu.xls")  # S1's older file
    shutil.copy(sub / "S2_cmhs.xls", nop / "S2_cmhs.xls")  # S2 has a row of its own: it wins
    shutil.copy(sub / "S2_cmhs.xls", nop / "truong A.xls")  # names no school
    shutil.copy(sub / "S2_cmhs.xls", nop / "S1_S2.xls")  # names two
    (nop / "huong-dan.docx").write_bytes(b"not a submission")
    (nop / "~$phieu.xlsx").write_bytes(b"a lock file")
    stamp(nop / "XA01" / "S1" / "phieu.xlsx", dt.datetime(2024, 10, 24, 17, 0))
    stamp(nop / "S1 ban cu.xls", dt.datetime(2024, 10, 20, 8, 0))
    sources = (tmp_path / "sources.csv").read_text(encoding="utf-8")
    kept = [line for line in sources.splitlines() if not line.startswith("S1,")]
    (tmp_path / "sources.csv").write_text(
        "\n".join([*kept, "*,CMHS_TH,folder,nop"]) + "\n", encoding="utf-8"
    )

    code, out = run(config)
    assert code == 1, out
    assert ledger(config) == [
        ("*", "CMHS_TH", "nop/S1_S2.xls", "failed"),
        ("*", "CMHS_TH", "nop/truong A.xls", "failed"),
        ("S1", "CMHS_TH", "nop/XA01/S1/phieu.xlsx", "loaded"),
        ("S2", "CMHS_TH", "submissions/S2_cmhs.xls", "loaded"),
        ("S3", "CMHS_THPT", "submissions/S3_cmhs.ods", "loaded"),
        ("S3", "HS_THPT", "submissions/S3_hs.csv", "loaded"),
        ("S5", "CMHS_THCS", "submissions/S5_cmhs.xlsx", "failed"),
        ("S6", "CMHS_THCS", "submissions/S6_missing.xlsx", "absent"),
    ]
    shown = status(config)
    reasons = {s["location"]: s["reason"] for s in shown["sources"]}
    assert reasons["nop/truong A.xls"].endswith("tệp không khớp trường nào: truong A.xls")
    assert reasons["nop/S1_S2.xls"].endswith("tệp khớp hai trường: S1_S2.xls (S1, S2)")
    assert [(f["school_code"], f["location"], f["message"]) for f in shown["superseded"]] == [
        (
            "S1",
            "nop/S1 ban cu.xls",
            "tệp S1 ban cu.xls không dùng vì đã có tệp mới hơn XA01/S1/phieu.xlsx",
        )
    ]

    # an unplaced file is no school's submission: no completeness row, no alert
    assert all(r[0] != "*" for r in marts(config)["mart_completeness"])
    assert all("*" not in r for r in marts(config)["alerts"])

    # the school reads why its older file was not used; the province sees every file it
    # could not place, and the one not used
    superseded = "tệp S1 ban cu.xls không dùng vì đã có tệp mới hơn XA01/S1/phieu.xlsx"
    assert superseded in texts(tmp_path / "output" / "feedback" / "S1.xlsx")
    province = texts(tmp_path / "output" / "T-2024_TM.xlsx", "Thông tin")
    assert {
        "nop/truong A.xls\n(tìm thấy trong thư mục nop)",
        "nop/S1_S2.xls\n(tìm thấy trong thư mục nop)",
    } <= province
    assert {"Tệp không dùng vì trường đã có tệp mới hơn", "nop/S1 ban cu.xls"} <= province

    # a night the folder cannot be read (a mount gone): its row fails, the files it found
    # before keep their state and their answers
    before = marts(config)["mart_school_dimension"]
    nop.rename(tmp_path / "nop-offline")
    code, out = run(config)
    assert code == 1, out
    reasons = {s["location"]: s["reason"] for s in status(config)["sources"]}
    assert "folder nop does not exist" in reasons["nop"]
    assert reasons["nop/XA01/S1/phieu.xlsx"] is None
    assert marts(config)["mart_school_dimension"] == before


def texts(path: Path, sheet: str | None = None) -> set[str]:
    """Every text cell of the workbook at ``path`` (of one sheet, if named)."""
    wb = load_workbook(path, read_only=True)
    sheets = [wb[sheet]] if sheet else wb.worksheets
    return {
        v
        for ws in sheets
        for row in ws.iter_rows(values_only=True)
        for v in row
        if isinstance(v, str)
    }
