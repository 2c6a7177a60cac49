"""Alerts and school feedback across nightly runs, as a data officer lives them.

The province of tests/pipeline/test_nightly.py: S1's CSVC answers are 2 and 1 (0% satisfied, two
respondents: Wilson's upper bound 65.8% is below 70, so an amber low-score alert despite the
small sample), S4 never submits, S5's file is corrupt.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from flows.cli.app import app
from flows.pipeline import nightly
from flows.settings import load_settings
from tests.factories import AS_OF, make_province, rows, stamp
from warehouse import db

#: Whole flows, servers and subprocesses: minutes, not seconds.
pytestmark = pytest.mark.slow

CSVC_LOW = ("pct_satisfied_low", "school", "S1", "CMHS_TH/CSVC")


def alert_rows(engine: sa.Engine) -> dict[tuple[str, str, str, str], dict[str, object]]:
    return {
        (str(r["rule"]), str(r["scope"]), str(r["scope_code"]), str(r["subject"])): r
        for r in rows(engine, "SELECT * FROM alerts")
    }


def test_alert_lifecycle_and_feedback_over_three_nights(
    tmp_path: Path, prefect_harness: None
) -> None:
    config = make_province(tmp_path)
    settings = load_settings(config, env={})
    engine = db.connect(settings.warehouse_url)

    nightly.run(settings, as_of=AS_OF)
    first = alert_rows(engine)
    low = first[CSVC_LOW]
    assert (low["severity"], low["status"]) == ("amber", "open")
    assert first[("submission_missing", "school", "S4", "CMHS_TH")]["status"] == "open"
    assert any(k[0] == "insufficient_sample" and k[2] == "S1" for k in first)

    # every school with errors gets a feedback workbook naming each rejected cell
    feedback = tmp_path / "output" / "feedback"
    s1 = openpyxl.load_workbook(feedback / "S1.xlsx")
    cells = {str(c.value) for ws in s1.worksheets for row in ws.iter_rows() for c in row}
    assert {"E3", "G6"} <= cells
    assert (feedback / "S5.xlsx").exists()  # the corrupt file

    # the officer acknowledges the alert; the next night adds nothing and keeps the note
    runner = CliRunner()
    ack = runner.invoke(
        app,
        ["alerts", "ack", str(low["alert_id"]), "--note", "Đã giao phòng CSVC", "-c", str(config)],
    )
    assert ack.exit_code == 0, ack.output
    nightly.run(settings, as_of=AS_OF + dt.timedelta(days=1))
    second = alert_rows(engine)
    assert set(second) == set(first)
    assert len(rows(engine, "SELECT * FROM alerts")) == len(first)
    assert second[CSVC_LOW]["status"] == "acknowledged"
    assert second[CSVC_LOW]["note"] == "Đã giao phòng CSVC"
    assert second[CSVC_LOW]["alert_id"] == low["alert_id"]

    # S1 sends a corrected file whose CSVC answers are all satisfied: the alert resolves itself
    path = tmp_path / "submissions" / "S1_cmhs.xlsx"
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    assert ws is not None
    for (cell,) in ws.iter_rows(min_row=2, min_col=6, max_col=6):
        if cell.value is not None:
            cell.value = "Rất hài lòng"
    wb.save(path)
    stamp(path, dt.datetime(2024, 10, 24, 18, 0))
    nightly.run(settings, as_of=AS_OF + dt.timedelta(days=2))
    third = alert_rows(engine)
    assert third[CSVC_LOW]["status"] == "resolved"
    assert third[("submission_missing", "school", "S4", "CMHS_TH")]["status"] == "open"

    listed = runner.invoke(app, ["alerts", "list", "--status", "resolved", "-c", str(config)])
    assert listed.exit_code == 0 and "S1" in listed.output
