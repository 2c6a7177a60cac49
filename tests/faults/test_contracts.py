"""Issue #20, items 6 (config half) and 7: khaosat.yaml and schools.csv checked as contracts.

A config fault ends every command with exit code 2 and one line naming the file, the field, the
value and what is allowed, never a traceback; a registry file that cannot be read the same (a
bad row of one fails only its own sources, with the nearest valid level: see
test_registry_rows.py); a schools.csv without enrolment runs, says so once, and tells the
leader "chưa có sĩ số" through an alert per school rather than dropping the low-response rule
silently.

The command line is exercised through typer's CliRunner where the command fails before Prefect
is touched (a config that does not load), and as a subprocess, as an officer runs it, where it
fails after (the registry is read once the command has set Prefect's environment up).
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from flows.cli.app import app
from flows.registry import RegistryError, read_schools
from flows.settings import SettingsError, load_settings
from tests.factories import khaosat, make_province, rows

#: (what is appended to or replaced in the test province's khaosat.yaml, the field named).
CONFIG_FAULTS = {
    "impossible date": ("opens: 2024-10-01", "opens: 2024-02-30", "campaign.opens"),
    "negative concurrency": ("", "run:\n  concurrency: -1\n", "run.concurrency"),
    "malformed URL port": (
        "",
        'warehouse:\n  url: "postgresql://u:hunter2@host:99999x/db"\n',
        "warehouse.url",
    ),
    "negative max_rows": ("", "limits:\n  max_rows: -5\n", "limits.max_rows"),
    "zero batch": ("", "run:\n  batch_sources: 0\n", "run.batch_sources"),
    "SMTP port out of range": ("", "notify:\n  smtp_port: 70000\n", "notify.smtp_port"),
    "Sheets endpoint not http": ("", "gsheets:\n  endpoint: ftp://x\n", "gsheets.endpoint"),
    "Dask address without port": (
        "",
        'run:\n  task_runner: dask\n  dask_address: "tcp://h:87x"\n',
        "run.dask_address",
    ),
    "unknown time zone": ("", "run:\n  timezone: Asia/Hanoi\n", "run.timezone"),
    "cron that does not parse": ("", 'run:\n  cron: "30 25 * * *"\n', "run.cron"),
}

#: Every command that reads a config, as typed after ``khaosat``.
COMMANDS = {
    "run": ["run"],
    "rerun": ["rerun", "--failed"],
    "publish": ["publish"],
    "report": ["report"],
    "status": ["status"],
    "serve": ["serve"],
    "alerts": ["alerts", "list"],
    "template": ["template", "CMHS_TH", "-o", "{tmp}/form.xlsx"],
}


def _faulty(tmp_path: Path, fault: str) -> tuple[Path, str]:
    """The test province with ``fault`` written into its config; the config and the field."""
    config = make_province(tmp_path)
    old, new, field = CONFIG_FAULTS[fault]
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(old, new) if old else text + new, encoding="utf-8")
    return config, field


def _one_error_line(output: str, *needles: str) -> str:
    """The output's only line, which must be an error naming each of ``needles``."""
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert "Traceback" not in output
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _invoke(args: list[str], **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, args, env=env or None)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


# ------------------------------------------------------------------------------------------
# khaosat.yaml: each fault, through the command line
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", list(CONFIG_FAULTS))
def test_config_fault_is_one_line_and_exit_2(tmp_path: Path, fault: str) -> None:
    config, field = _faulty(tmp_path, fault)
    code, output = _invoke(["run", "--config", str(config)])
    assert code == 2
    line = _one_error_line(output, str(config), f"field {field}")
    assert "hunter2" not in line  # a URL's password is never repeated


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_reports_a_bad_config_as_exit_2(tmp_path: Path, command: str) -> None:
    config, _ = _faulty(tmp_path, "impossible date")
    args = [a.format(tmp=tmp_path) for a in COMMANDS[command]]
    code, output = _invoke([*args, "--config", str(config)])
    assert code == 2
    _one_error_line(output, "field campaign.opens", "'2024-02-30'", "valid date")
    assert not (tmp_path / "form.xlsx").exists()


@pytest.mark.slow
def test_demo_reports_a_bad_setting_from_the_environment(tmp_path: Path) -> None:
    code, output = _invoke(["demo", str(tmp_path / "demo")], KHAOSAT_RUN__CONCURRENCY="-1")
    assert code == 2
    lines = output.strip().splitlines()
    assert lines[0].startswith("Demo province written to")
    _one_error_line(
        "\n".join(lines[1:]), "field run.concurrency", "-1", "greater than or equal to 1"
    )


def test_a_long_error_stays_on_one_line(tmp_path: Path) -> None:
    deep = tmp_path / ("a-folder-with-a-long-name-" * 8)
    deep.mkdir()
    config, _ = _faulty(deep, "malformed URL port")
    code, output = _invoke(["status", "--config", str(config)])
    assert code == 2
    assert len(_one_error_line(output, "warehouse.url")) > 300


# ------------------------------------------------------------------------------------------
# khaosat.yaml: what each message says, and what is still accepted
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "values", "says"),
    [
        ("campaign", {"opens": "2023-02-29"}, "day value is outside expected range"),
        ("campaign", {"timezone": "Mars/Olympus"}, "not a time zone"),
        ("run", {"concurrency": 0}, "greater than or equal to 1"),
        ("run", {"lock_wait_seconds": -1}, "greater than or equal to 0"),
        ("run", {"cron": "every night"}, "expected 5 fields"),
        ("run", {"cron": "0 0 * FOO *"}, "month 'FOO'"),
        ("run", {"dask_address": "http://h:8786"}, "tcp/tls"),
        ("limits", {"max_file_bytes": 0}, "greater than or equal to 1"),
        ("limits", {"max_compression_ratio": 0.5}, "greater than or equal to 1"),
        ("gsheets", {"requests_per_minute": 0}, "greater than or equal to 1"),
        ("gsheets", {"endpoint": "https://"}, "needs a host"),
        ("notify", {"smtp_port": 0}, "greater than or equal to 1"),
        ("warehouse", {"url": "postgresql://u:hunter2@h:0/db"}, "port 0 is not in 1-65535"),
        ("warehouse", {"url": "not a url"}, "is not a database URL"),
    ],
)
def test_setting_out_of_range_names_field_value_and_what_is_allowed(
    tmp_path: Path, section: str, values: dict[str, object], says: str
) -> None:
    config = make_province(tmp_path)
    env = {f"KHAOSAT_{section.upper()}__{k.upper()}": str(v) for k, v in values.items()}
    with pytest.raises(SettingsError) as caught:
        load_settings(config, env=env)
    message = str(caught.value)
    key = next(iter(values))
    assert message.startswith(f"{config}: field {section}.{key}: ")
    assert says in message and "hunter2" not in message
    assert "\n" not in message


def test_password_of_a_malformed_setting_is_not_repeated(tmp_path: Path) -> None:
    config = make_province(tmp_path)
    with pytest.raises(SettingsError) as caught:
        load_settings(config, env={"KHAOSAT_NOTIFY__SMTP_PASSWORD": "[12345678]"})
    assert "notify.smtp_password" in str(caught.value) and "12345678" not in str(caught.value)


def test_valid_settings_are_still_accepted(tmp_path: Path) -> None:
    config = make_province(tmp_path)
    for env in [
        {"KHAOSAT_RUN__CRON": "*/15 6-22 1,15 JAN-MAR MON-FRI"},
        {"KHAOSAT_RUN__CRON": "@daily"},
        {"KHAOSAT_RUN__CRON": "0 2 L * 5#3"},
        {"KHAOSAT_RUN__DASK_ADDRESS": "10.0.0.5:8786"},
        {"KHAOSAT_RUN__DASK_ADDRESS": "tls://scheduler.sgd.vn:8786"},
        {"KHAOSAT_WAREHOUSE_URL": "postgresql+psycopg://u:p@db.sgd.vn:5432/khaosat"},
        {"KHAOSAT_WAREHOUSE_URL": "sqlite:///relative.sqlite"},
        {"KHAOSAT_GSHEETS__ENDPOINT": "http://127.0.0.1:8080"},
        {"KHAOSAT_CAMPAIGN__TIMEZONE": "UTC", "KHAOSAT_RUN__PARSE_PROCESSES": "0"},
    ]:
        load_settings(config, env=env)
    settings = load_settings(config, env={})
    assert str(settings.campaign.opens) == "2024-10-01"  # text in YAML, a date once validated


def test_warehouse_as_a_plain_url_and_relative_sqlite_beside_the_config(tmp_path: Path) -> None:
    config = make_province(tmp_path)
    text = config.read_text(encoding="utf-8")
    config.write_text(text + "warehouse: sqlite:///nightly.db\n", encoding="utf-8")
    settings = load_settings(config, env={})
    assert settings.warehouse_url == f"sqlite:///{config.parent / 'nightly.db'}"
    moved = load_settings(config, env={"KHAOSAT_WAREHOUSE_URL": "sqlite:///other/w.db"})
    assert moved.warehouse_url == f"sqlite:///{config.parent / 'other' / 'w.db'}"
    absolute = load_settings(config, env={"KHAOSAT_WAREHOUSE_URL": "sqlite:////srv/k.db"})
    assert absolute.warehouse_url == "sqlite:////srv/k.db"
    postgres = "postgresql://u:p@db.sgd.vn/khaosat"
    assert load_settings(config, env={"KHAOSAT_WAREHOUSE_URL": postgres}).warehouse_url == postgres


# ------------------------------------------------------------------------------------------
# schools.csv: levels and enrolment
# ------------------------------------------------------------------------------------------


def _with_school_row(config: Path, old: str, new: str) -> Path:
    schools = config.parent / "schools.csv"
    text = schools.read_text(encoding="utf-8")
    assert old in text
    schools.write_text(text.replace(old, new), encoding="utf-8")
    return schools


@pytest.mark.parametrize(
    ("raw", "nearest"),
    [
        ("MG", "MN"),  # mẫu giáo: the Mầm non level
        ("THP", "THPT"),
        ("Tiểu học", "TH"),
        ("PTTH", "THPT"),
        ("TT GDNN-GDTX", "GDTX"),
        ("XYZ", None),
    ],
)
def test_unknown_level_names_the_line_and_the_nearest(
    tmp_path: Path, raw: str, nearest: str | None
) -> None:
    schools = _with_school_row(make_province(tmp_path), "S2,Trường Tiểu học B,TH,", f"S2,B,{raw},")
    with pytest.raises(RegistryError) as caught:
        read_schools(schools)
    message = str(caught.value)
    assert message.startswith(f"{schools}: line 3: level {raw!r} is not one of MN, TH, THCS")
    assert (f"did you mean {nearest}?" in message) if nearest else "did you mean" not in message


def test_levels_are_read_in_any_case(tmp_path: Path) -> None:
    schools = _with_school_row(make_province(tmp_path), "S2,Trường Tiểu học B,TH,", "S2,B,th,")
    assert {s.level for s in read_schools(schools)} == {"TH", "THPT", "THCS"}


def _unreadable(config: Path, damage: str) -> None:
    """Damage the province's registry so that it cannot be read at all."""
    if damage == "missing column":
        sources = config.parent / "sources.csv"
        text = sources.read_text(encoding="utf-8").replace(",location", ",where")
        sources.write_text(text, encoding="utf-8")
    else:  # saved by Excel as "CSV" rather than "CSV UTF-8", in Windows-1258
        schools = config.parent / "schools.csv"
        text = schools.read_text(encoding="utf-8")
        schools.write_bytes(text.encode("cp1258", "replace"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "damage", "says"),
    [
        ("run", "not UTF-8", "schools.csv: not UTF-8 (save it as 'CSV UTF-8')"),
        ("publish", "not UTF-8", "schools.csv: not UTF-8 (save it as 'CSV UTF-8')"),
        ("serve", "not UTF-8", "schools.csv: not UTF-8 (save it as 'CSV UTF-8')"),
        ("rerun", "not UTF-8", "schools.csv: not UTF-8 (save it as 'CSV UTF-8')"),
        ("run", "missing column", "sources.csv: line 1: missing column(s) location"),
    ],
)
def test_registry_fault_ends_every_command_with_one_line(
    tmp_path: Path, command: str, damage: str, says: str
) -> None:
    """A registry file that cannot be read at all stops every command (a bad row only fails
    its own sources: tests/faults/test_registry_rows.py)."""
    config = make_province(tmp_path)
    _unreadable(config, damage)
    args = [command, "--config", str(config), *(["--failed"] if command == "rerun" else [])]
    # A Prefect API that is never reached: the registry is rejected before any flow starts.
    done = khaosat(*args, timeout=300, api=False, PREFECT_API_URL="http://127.0.0.1:9/api")  # type: ignore[arg-type]
    assert done.returncode == 2, done.stdout + done.stderr
    _one_error_line(done.stdout + done.stderr, says)
    assert not (tmp_path / "khaosat.sqlite").exists()  # nothing started


@pytest.mark.slow
def test_without_enrolment_the_run_goes_on_says_so_once_and_alerts_chua_co_si_so(
    tmp_path: Path, prefect_harness: None
) -> None:
    config = make_province(tmp_path)
    schools = config.parent / "schools.csv"
    lines = schools.read_text(encoding="utf-8").splitlines()
    schools.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n", encoding="utf-8")
    done = khaosat("run", "--config", str(config), KHAOSAT_RUN__PARSE_PROCESSES="0")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output  # S5's damaged file, as with enrolment
    assert "Traceback" not in output
    said = [line for line in output.splitlines() if "no enrollment" in line]
    assert len(said) == 1 and "low_response alerts wait for it" in said[0]

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'khaosat.sqlite'}")
    try:
        found = rows(engine, "SELECT rule, severity, scope_code FROM alerts ORDER BY scope_code")
    finally:
        engine.dispose()
    unknown = [(r["severity"], r["scope_code"]) for r in found if r["rule"] == "enrollment_unknown"]
    # the schools with responses; S5 failed and S6 is absent, as before
    assert unknown == [("info", "S1"), ("info", "S2"), ("info", "S3")]
    assert not [r for r in found if r["rule"] == "low_response"]

    book = openpyxl.load_workbook(tmp_path / "output" / "T-2024_TM.xlsx", read_only=True)
    cells = [
        str(v) for ws in book.worksheets for row in ws.iter_rows(values_only=True) for v in row if v
    ]
    book.close()
    assert sum("Chưa có sĩ số" in c for c in cells) >= 3


def test_negative_enrolment_is_rejected_and_zero_kept(tmp_path: Path) -> None:
    config = make_province(tmp_path)
    schools = _with_school_row(config, "Phường Một,300", "Phường Một,0")
    assert {s.code: s.enrollment for s in read_schools(schools)}["S1"] == 0
    _with_school_row(config, "Phường Một,250", "Phường Một,-1")
    with pytest.raises(RegistryError, match=r"line 3: enrollment '-1' is negative"):
        read_schools(schools)


def test_the_levels_read_are_the_levels_published() -> None:
    from flows.publish.labels import LEVEL_LABELS
    from schemas.records import SCHOOL_LEVELS

    assert tuple(LEVEL_LABELS) == SCHOOL_LEVELS
