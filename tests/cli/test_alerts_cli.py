"""``khaosat alerts`` through the real command line (flows.cli.app) on SQLite and PostgreSQL.

The alerts are raised by ``sync_alerts`` as a night raises them; the commands are run the way an
officer types them: show with its history, ack twice, note, resolve, ``--by``; an alert id or a
unit the campaign does not have is one line and exit code 2; unit codes in any letter case.
"""

from __future__ import annotations

import getpass
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from flows.cli.alerts import nearest_ids
from flows.cli.app import app
from schemas.records import School
from tests.factories import SAT, make_campaign
from warehouse.alerts import AlertCandidate, list_alerts, sync_alerts
from warehouse.registry import sync_registry

# Each test builds a province's warehouse with its alerts, on both backends.
pytestmark = pytest.mark.slow

C = "HCM-2024"
SCHOOLS = [
    School(code="S1", name="Trường Tiểu học An Phú", level="TH", unit_code="XP01", unit_name="P1"),
    School(
        code="S2", name="Trường Tiểu học Bình Minh", level="TH", unit_code="HD02", unit_name="P2"
    ),
]
LOW = AlertCandidate("pct_satisfied_low", "amber", "school", "S1", "SAT/CSVC", 80.0, 85.0)
MISSING = AlertCandidate("submission_missing", "amber", "school", "S2", "SAT", 0.0)
UNIT = AlertCandidate("pct_satisfied_low", "red", "unit", "XP01", "TH/SAT/CSVC", 60.0, 70.0)


@pytest.fixture
def config(engine: Engine, warehouse_url: str, tmp_path: Path) -> Path:
    """khaosat.yaml of a campaign with three open alerts in its warehouse."""
    sync_registry(engine, make_campaign(), SCHOOLS, {"SAT": SAT})
    sync_alerts(engine, C, [LOW, MISSING, UNIT])
    path = tmp_path / "khaosat.yaml"
    path.write_text(
        f"campaign:\n  id: {C}\n  name: Khảo sát\n  school_year: 2024-2025\n"
        "  opens: 2024-10-01\n  closes: 2024-11-30\n  deadline: 2024-11-30\n"
        "registry:\n  schools: schools.csv\n  sources: sources.csv\n"
        f"warehouse:\n  url: {warehouse_url}\n",
        encoding="utf-8",
    )
    return path


def alerts(config: Path, *args: str) -> Result:
    """``khaosat alerts ARGS --config CONFIG`` as typed."""
    return CliRunner().invoke(app, ["alerts", *args, "--config", str(config)])


def ids(engine: Engine) -> dict[tuple[str, str, str, str], int]:
    return {(a.rule, a.scope, a.scope_code, a.subject): a.alert_id for a in list_alerts(engine, C)}


def one_error_line(result: Result) -> str:
    """The output, asserted to be a single error line and no traceback."""
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return lines[0]


def history_rows(output: str) -> list[list[str]]:
    """The cells of the History table's rows (what, by, note; the time dropped)."""
    rows = output.split("History", 1)[1].splitlines()
    cells = [[c.strip() for c in r.strip("│").split("│")] for r in rows if r.startswith("│")]
    return [c[1:] for c in cells if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d", c[0])]


@pytest.mark.slow
def test_ack_twice_note_resolve_and_show_the_history(config: Path, engine: Engine) -> None:
    alert_id = str(ids(engine)[LOW.key])
    first = alerts(config, "ack", alert_id, "--note", "Đã gọi hiệu trưởng", "--by", "lan")
    assert first.exit_code == 0, first.output
    assert "acknowledged" in first.output
    for args in (
        ["ack", alert_id, "--note", "Trường hẹn sửa trong tuần", "--by", "minh"],
        ["note", alert_id, "--note", "Chờ ảnh chụp phòng học", "--by", "lan"],
        ["resolve", alert_id, "--note", "Đã sửa", "--by", "minh"],
    ):
        result = alerts(config, *args)
        assert result.exit_code == 0, result.output

    shown = alerts(config, "show", alert_id)
    assert shown.exit_code == 0, shown.output
    card = shown.output.split("History", 1)[0]
    for field, value in [
        ("alert", f"{alert_id}: Tỷ lệ hài lòng thấp (pct_satisfied_low)"),
        ("severity", "amber"),
        ("status", "resolved"),
        ("scope", "school S1 Trường Tiểu học An Phú"),
        ("subject", "SAT/CSVC"),
        ("note", "Đã sửa"),
    ]:
        assert re.search(rf"^{field} +{re.escape(value)}", card, re.M), (field, card)
    assert re.search(r"^value +80", card, re.M) and "threshold 85" in card
    assert re.search(r"^first seen +\d{4}-\d\d-\d\d \d\d:\d\d *$", card, re.M)
    assert re.search(r"^last seen +\d{4}-\d\d-\d\d \d\d:\d\d *$", card, re.M)
    assert history_rows(shown.output) == [
        ["acknowledged", "lan", "Đã gọi hiệu trưởng"],
        ["acknowledged", "minh", "Trường hẹn sửa trong tuần"],
        ["note", "lan", "Chờ ảnh chụp phòng học"],
        ["resolved", "minh", "Đã sửa"],
    ]

    listed = alerts(config, "list", "--all", "--status", "all")
    assert listed.exit_code == 0 and "Đã sửa" in listed.output


@pytest.mark.slow
def test_who_defaults_to_the_os_user_and_a_night_is_khaosat(config: Path, engine: Engine) -> None:
    alert_id = ids(engine)[MISSING.key]
    result = alerts(config, "resolve", str(alert_id), "--note", "Đã nộp bản giấy")
    assert result.exit_code == 0, result.output
    sync_alerts(engine, C, [LOW, MISSING, UNIT])  # still missing: the night reopens it
    shown = alerts(config, "show", str(alert_id))
    assert history_rows(shown.output) == [
        ["resolved", getpass.getuser(), "Đã nộp bản giấy"],
        ["reopened: the condition holds again", "khaosat", ""],
    ]


def test_an_alert_nothing_happened_to_says_so(config: Path, engine: Engine) -> None:
    shown = alerts(config, "show", str(ids(engine)[UNIT.key]))
    assert shown.exit_code == 0, shown.output
    assert "No history yet" in shown.output
    assert re.search(r"^status +open *$", shown.output, re.M)


@pytest.mark.parametrize("command", ["ack", "resolve", "note", "show"])
def test_an_unknown_alert_id_is_one_line_with_the_nearest(
    config: Path, engine: Engine, command: str
) -> None:
    known = sorted(ids(engine).values())
    missing = str(max(known) + 5)
    args = [command, missing] + ([] if command == "show" else ["--note", "x"])
    result = alerts(config, *args)
    assert result.exit_code == 2
    line = one_error_line(result)
    near = ", ".join(str(i) for i in known)
    assert line == (
        f"error: no alert {missing} in campaign {C}; nearest: {near} "
        "(all: khaosat alerts list --status all)"
    )


def test_a_refused_change_exits_1(config: Path, engine: Engine) -> None:
    alert_id = str(ids(engine)[LOW.key])
    assert alerts(config, "resolve", alert_id, "--note", "Đã sửa").exit_code == 0
    again = alerts(config, "ack", alert_id, "--note", "muộn")
    assert again.exit_code == 1
    assert (
        one_error_line(again)
        == f"error: alert {alert_id} is resolved: it cannot become acknowledged"
    )


def test_unit_codes_in_any_case(config: Path) -> None:
    for unit in ("XP01", "xp01", "Xp01"):
        result = alerts(config, "list", "--unit", unit)
        assert result.exit_code == 0, result.output
        assert "S1" in result.output and "XP01" in result.output and "S2" not in result.output


@pytest.mark.parametrize(
    ("unit", "hint"),
    [
        ("XP99", "did you mean XP01?"),
        ("xp1", "did you mean XP01?"),
        ("ZZ", "its units: HD02, XP01"),
    ],
)
def test_an_unknown_unit_is_one_line_with_a_suggestion(config: Path, unit: str, hint: str) -> None:
    result = alerts(config, "list", "--unit", unit)
    assert result.exit_code == 2
    assert one_error_line(result) == f"error: unknown unit {unit} in campaign {C}; {hint}"
    assert "No alerts match" not in result.output


def test_nearest_ids() -> None:
    assert nearest_ids(10, [1, 2, 8, 9, 12, 40]) == [8, 9, 12]
    assert nearest_ids(0, [7, 3]) == [3, 7]
    known: list[Any] = []
    assert nearest_ids(5, known) == []
