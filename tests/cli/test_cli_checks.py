"""Issue #21, item 3: the command line checks what it is told.

``rerun --school`` with a code the registry does not have, or ``--questionnaire`` the school
does not answer, is refused with exit code 2 and one line with a suggestion; nothing is
recorded (no run row) or rewritten (no workbook). Codes are matched in any letter case, as
``template`` and ``alerts --unit`` do: ``rerun --school s1`` is ``rerun --school S1``.

The commands run through typer's CliRunner with a Prefect API address that is never reached:
a refused command stops before any flow (the slow test of tests/faults/test_registry_rows.py
runs ``rerun --school`` in lowercase for real).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli.app import app
from flows.pipeline.context import read_registry
from flows.registry import NotInRegistry, pick
from flows.settings import load_settings
from tests.factories import make_province, rows
from warehouse import db, ledger, registry

#: A Prefect API nobody answers: a command that got as far as a flow would fail on it.
NO_API = {"PREFECT_API_URL": "http://127.0.0.1:9/api"}


@pytest.fixture
def province(tmp_path: Path, own_environment: None) -> Path:
    """The test province with a warehouse that has seen one run; its config."""
    config = make_province(tmp_path)
    settings = load_settings(config, env={})
    questionnaires, found = read_registry(settings)
    engine = db.connect(settings.warehouse_url)
    db.migrate(engine)
    registry.sync_registry(
        engine, settings.campaign, found.schools, questionnaires, sources=found.sources
    )
    ledger.start_run(engine, "yesterday", "T-2024")
    ledger.finish_run(engine, "yesterday")
    engine.dispose()
    return config


def _runs(config: Path) -> list[dict[str, object]]:
    engine = db.connect(load_settings(config, env={}).warehouse_url)
    try:
        return rows(engine, "SELECT run_id, status FROM run")
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["--school", "XX999"],
            "school XX999 is not in schools.csv (it has S1, S2, S3, S4, S5, S6)",
        ),
        (["--school", "S01"], "school S01 is not in schools.csv (did you mean S1?)"),
        (
            ["--school", "s1", "--questionnaire", "CMHS_THCS"],
            "school S1 has no CMHS_THCS source in sources.csv (did you mean CMHS_TH?)",
        ),
        (
            ["--school", "S3", "--questionnaire", "papi_th"],
            "school S3 has no papi_th source in sources.csv: only CMHS_THPT, HS_THPT",
        ),
        (
            ["--failed", "--questionnaire", "CMSH_TH"],
            "there is no CMSH_TH source in sources.csv (did you mean CMHS_TH?)",
        ),
    ],
)
def test_a_school_or_questionnaire_the_registry_lacks_is_refused(
    province: Path, args: list[str], says: str
) -> None:
    done = CliRunner().invoke(app, ["rerun", *args, "--config", str(province)], env=NO_API)
    assert done.exit_code == 2, done.output
    assert done.output.strip() == f"error: {says}"
    assert "Traceback" not in done.output
    assert _runs(province) == [{"run_id": "yesterday", "status": "succeeded"}]
    assert not (province.parent / "output").exists()  # no workbook written


def test_codes_are_taken_in_any_letter_case(tmp_path: Path) -> None:
    config = make_province(tmp_path)
    _, found = read_registry(load_settings(config, env={}))
    assert pick(found, "s3", "hs_thpt") == ("S3", "HS_THPT")
    assert pick(found, " s1 ", None) == ("S1", None)
    assert pick(found, None, "cmhs_thcs") == (None, "CMHS_THCS")
    # a school whose schools.csv row is refused can still be named (its sources fail again)
    schools = tmp_path / "schools.csv"
    schools.write_text(
        schools.read_text(encoding="utf-8").replace("S5,Trường THCS E,THCS,", "S5,E,MG,"),
        encoding="utf-8",
    )
    _, found = read_registry(load_settings(config, env={}))
    assert pick(found, "s5", "cmhs_thcs") == ("S5", "CMHS_THCS")
    with pytest.raises(NotInRegistry, match=r"^school XX9 is not in schools.csv"):
        pick(found, "XX9", None)


def test_rerun_still_wants_one_of_failed_or_school(province: Path) -> None:
    done = CliRunner().invoke(app, ["rerun", "--config", str(province)], env=NO_API)
    assert done.exit_code == 2
    assert done.output.strip() == "error: give exactly one of --failed or --school CODE"
    assert len(_runs(province)) == 1
