"""``khaosat status`` on SQLite and PostgreSQL: states from a hand-written ledger, then rendering.

The ledger is written with the ledger functions a run uses (warehouse.ledger), so the states read
back are those real runs leave behind. The command function is exercised through typer's
CliRunner on an app of its own; the same command wired into ``khaosat`` is exercised in
test_operations.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import typer
from rich.console import Console
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from flows.cli.status import (
    NOT_RUN_YET,
    CampaignStatus,
    campaign_status,
    render_status,
    status,
    status_json,
)
from schemas.records import School, Source
from tests.factories import SAT, V1, V2, fetched, make_campaign
from warehouse.ledger import (
    RunRecord,
    finish_run,
    record_absent,
    record_failure,
    record_unchanged,
    start_run,
)
from warehouse.load import replace_source
from warehouse.lock import RunLock, this_holder
from warehouse.registry import sync_registry

CAMPAIGN = "HCM-2024"
SCHOOLS = [
    School(code="S1", name="Trường Tiểu học An Phú", level="TH", unit_code="U1", unit_name="P1"),
    School(code="S2", name="Trường Tiểu học Bình Minh", level="TH", unit_code="U1", unit_name="P1"),
    School(code="S3", name="Trường Tiểu học Cửu Long", level="TH", unit_code="U1", unit_name="P1"),
]
A = Source("S1", "SAT", "excel", "s1.xlsx")  # loaded, then unchanged
B = Source("S2", "SAT", "excel", "s2.xlsx")  # loaded, then failed: rows kept
C = Source("S3", "SAT", "excel", "s3.xlsx")  # absent
D = Source("S1", "SAT", "csv", "s1-giay.csv")  # registered, never processed
E = Source("S3", "SAT", "excel", "s3-cu.xlsx")  # loaded once, then left sources.csv
DAMAGED = "S2 s2.xlsx: damaged file (not a readable zip)"


@pytest.fixture
def ledger(engine: Engine) -> Engine:
    """Two runs of a campaign whose five sources are in every state status can show."""
    campaign = make_campaign()
    sync_registry(engine, campaign, SCHOOLS, {"SAT": SAT}, sources=[A, B, C, D, E])
    start_run(engine, "run-1", CAMPAIGN)
    replace_source(engine, CAMPAIGN, "run-1", fetched("aaa", A), V1)
    replace_source(engine, CAMPAIGN, "run-1", fetched("bbb", B), V2)
    replace_source(engine, CAMPAIGN, "run-1", fetched("eee", E), V2)
    finish_run(engine, "run-1")
    sync_registry(engine, campaign, SCHOOLS, {"SAT": SAT}, sources=[A, B, C, D])
    start_run(engine, "run-2", CAMPAIGN)
    record_unchanged(engine, CAMPAIGN, "run-2", fetched("aaa", A))
    record_failure(engine, CAMPAIGN, "run-2", B, DAMAGED, fetched("ccc", B))
    record_absent(engine, CAMPAIGN, "run-2", C, "S3 s3.xlsx: file s3.xlsx not found")
    finish_run(engine, "run-2")
    return engine


@pytest.mark.slow
def test_every_active_source_with_its_state_failed_first(ledger: Engine) -> None:
    status = campaign_status(ledger, CAMPAIGN)
    got = [(s.school_code, s.location, s.state, s.reason, s.rows) for s in status.sources]
    assert got == [
        ("S2", "s2.xlsx", "failed", "damaged file (not a readable zip)", 1),
        ("S1", "s1-giay.csv", "absent", NOT_RUN_YET, 0),
        ("S3", "s3.xlsx", "absent", "file s3.xlsx not found", 0),
        ("S1", "s1.xlsx", "unchanged", None, 2),
    ]
    by_location = {s.location: s for s in status.sources}
    assert by_location["s2.xlsx"].school_name == "Trường Tiểu học Bình Minh"
    # a failed source keeps the rows and the time of its last good load
    assert by_location["s2.xlsx"].last_loaded_at is not None
    assert by_location["s1.xlsx"].last_loaded_at is not None
    assert by_location["s3.xlsx"].last_loaded_at is None
    assert by_location["s1-giay.csv"].checked_at is None
    assert by_location["s3.xlsx"].checked_at is not None


def test_the_last_run_and_its_counts(ledger: Engine) -> None:
    run = campaign_status(ledger, CAMPAIGN).last_run
    assert run is not None
    assert (run.run_id, run.status, run.finished_at is not None) == ("run-2", "partial", True)
    assert (run.n_sources, run.n_loaded, run.n_unchanged, run.n_failed, run.n_absent) == (
        3,
        0,
        1,
        1,
        1,
    )


def test_a_campaign_that_never_ran(engine: Engine) -> None:
    status = campaign_status(engine, "NOPE")
    assert status.sources == [] and status.last_run is None and status.running is None
    text = _text(render_status(status, Path("/srv/khaosat.yaml")))
    assert "No run yet: khaosat run --config /srv/khaosat.yaml" in text


def _text(renderable: object, width: int = 200) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


@pytest.mark.slow
def test_render_puts_what_needs_action_first_and_says_what_to_do(ledger: Engine) -> None:
    text = _text(render_status(campaign_status(ledger, CAMPAIGN), Path("/srv/khaosat.yaml")))
    lines = text.splitlines()
    assert lines[0].startswith(
        f"Campaign {CAMPAIGN}: 4 sources (1 failed, 2 absent, 0 loaded, 1 unchanged)"
    )
    assert lines[1].startswith("Last run run-2: partial, started ")
    assert "1 failed, 1 absent" in lines[1]
    rows = [line for line in lines if line.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows] == ["failed", "absent", "absent", "unchanged"]
    assert "Trường Tiểu học Bình Minh" in rows[0] and "damaged file (not a readable zip)" in rows[0]
    assert "fix the file, then: khaosat rerun --failed --config /srv/khaosat.yaml" in text


@pytest.mark.slow
def test_render_shows_a_run_in_progress(ledger: Engine) -> None:
    with RunLock(ledger, CAMPAIGN, "run-3"):
        text = _text(render_status(campaign_status(ledger, CAMPAIGN)))
    assert f"Running now: run run-3 on {this_holder()} since " in text


@pytest.mark.slow
def test_status_json_for_scripts(ledger: Engine) -> None:
    data = json.loads(status_json(campaign_status(ledger, CAMPAIGN)))
    assert data["campaign_id"] == CAMPAIGN
    assert data["counts"] == {"failed": 1, "absent": 2, "loaded": 0, "unchanged": 1}
    failed = data["sources"][0]
    assert failed == {
        "school_code": "S2",
        "school_name": "Trường Tiểu học Bình Minh",
        "questionnaire": "SAT",
        "location": "s2.xlsx",
        "state": "failed",
        "reason": "damaged file (not a readable zip)",
        "rows": 1,
        "last_loaded_at": failed["last_loaded_at"],
        "checked_at": failed["checked_at"],
        "found_in": None,  # listed on a row of its own, not found in a folder row's folder
    }
    assert data["superseded"] == []
    assert len(failed["last_loaded_at"]) == len("2024-11-05T01:30:00+07:00")
    assert data["last_run"]["run_id"] == "run-2" and data["running"] is None


# -- the command function, on a typer app of its own -----------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(status)
    app.command("noop")(lambda: None)  # two commands: typer then expects the command's name
    return app


def _config(folder: Path, url: str) -> Path:
    path = folder / "khaosat.yaml"
    path.write_text(
        f"campaign:\n  id: {CAMPAIGN}\n  name: Khảo sát\n  school_year: 2024-2025\n"
        "  opens: 2024-10-01\n  closes: 2024-11-30\n  deadline: 2024-11-30\n"
        f"registry:\n  schools: schools.csv\n  sources: sources.csv\nwarehouse:\n  url: {url}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.slow
def test_status_command_prints_the_table_and_json(ledger: Engine, tmp_path: Path) -> None:
    config = _config(tmp_path, ledger.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(_app(), ["status", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "damaged file (not a readable zip)" in result.output
    assert f"khaosat rerun --failed --config {config}" in result.output

    result = CliRunner().invoke(_app(), ["status", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sources"][0]["school_code"] == "S2"


def test_status_command_without_a_warehouse_creates_none(tmp_path: Path) -> None:
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'nowhere.sqlite'}")
    result = CliRunner().invoke(_app(), ["status", "--config", str(config)])
    assert result.exit_code == 2
    assert "no warehouse at" in result.output and "khaosat run --config" in result.output
    assert not (tmp_path / "nowhere.sqlite").exists()


def test_status_command_with_an_unusable_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["status", "--config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "cannot read" in result.output


# -- the campaign's offset in JSON, and an 80-column terminal ----------------------------------

LONG_REASON = (
    "S3 thu-thap/2024/phieu-khao-sat-cha-me-hoc-sinh-truong-tieu-hoc-cuu-long.xlsx: "
    "sheet 'Câu trả lời 1', cell D12: giá trị 'rất hài lòng lắm' không thuộc thang đo 1–5; "
    "sửa thành một số từ 1 đến 5 rồi nộp lại"
)
LONG = Source(
    "S3",
    "SAT",
    "excel",
    "thu-thap/2024/phieu-khao-sat-cha-me-hoc-sinh-truong-tieu-hoc-cuu-long.xlsx",
)


@pytest.mark.slow
def test_status_json_times_carry_the_campaigns_offset(ledger: Engine, tmp_path: Path) -> None:
    from flows.cli.app import app

    config = _config(tmp_path, ledger.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(app, ["status", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    stamps = [data["last_run"]["started_at"], data["last_run"]["finished_at"]]
    stamps += [s[k] for s in data["sources"] for k in ("last_loaded_at", "checked_at") if s[k]]
    assert len(stamps) == 7
    for stamp in stamps:
        assert stamp.endswith("+07:00"), stamp  # Asia/Ho_Chi_Minh, the default campaign zone
        parsed = dt.datetime.fromisoformat(stamp)
        assert parsed.utcoffset() == dt.timedelta(hours=7)
    # the same instant as the stored campaign-local time
    run = campaign_status(ledger, CAMPAIGN).last_run
    assert run is not None
    assert dt.datetime.fromisoformat(stamps[0]).replace(tzinfo=None) == run.started_at.replace(
        microsecond=0
    )


def test_json_offset_follows_the_campaign_zone() -> None:
    status = CampaignStatus(
        campaign_id="X",
        last_run=RunRecord(
            "r", "X", "succeeded", dt.datetime(2024, 7, 1, 1, 30), None, 0, 0, 0, 0, 0
        ),
        timezone="Europe/Paris",
    )
    assert json.loads(status_json(status))["last_run"]["started_at"] == "2024-07-01T01:30:00+02:00"


@pytest.mark.slow
def test_status_fits_an_80_column_terminal(ledger: Engine, tmp_path: Path) -> None:
    from flows.cli.app import app

    sync_registry(ledger, make_campaign(), SCHOOLS, {"SAT": SAT}, sources=[A, B, C, D, LONG])
    start_run(ledger, "run-3", CAMPAIGN)
    record_failure(ledger, CAMPAIGN, "run-3", LONG, LONG_REASON, fetched("fff", LONG))
    finish_run(ledger, "run-3")
    config = _config(tmp_path, ledger.url.render_as_string(hide_password=False))

    result = CliRunner().invoke(app, ["status", "--config", str(config)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    header = next(line for line in lines if "state" in line and "school" in line)
    for column in ("state", "school", "questionnaire", "reason", "rows"):
        assert column in header, header
    # every file and reason whole, wrapped or folded in its column, never cut
    cells = [line.split("│")[4] for line in lines if line.startswith("│")]
    column = "".join("".join(cells).split())
    for location, reason in [
        (LONG.location, LONG_REASON.split(": ", 1)[1]),
        (B.location, DAMAGED.split(": ", 1)[1]),
        (C.location, "file s3.xlsx not found"),
    ]:
        assert "".join(f"{location}: {reason}".split()) in column
    assert "…" not in result.output

    wide = CliRunner().invoke(app, ["status", "--config", str(config)], env={"COLUMNS": "200"})
    assert "last loaded" in wide.output and "school name" in wide.output
