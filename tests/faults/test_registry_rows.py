"""Issue #21, items 1 and 2 (registry side): a bad registry row fails its own sources, not the
night; a night that stops is on record.

The test province (``make_province``) with one mistake per row a data officer makes: a kind
mistyped (``exel``), a questionnaire mistyped (``CMSH_THPT``), a folder misspelt
(``submisions/``), a school code on two rows with other details, a level written out in words,
an enrolment in words. One ``khaosat run`` loads every other source, exits 1 (sources failed),
and ``khaosat status`` (and ``--json``) names each bad row with its file, line and suggestion;
once the CSV files are fixed, ``khaosat rerun --failed`` loads them.

A registry file that cannot be read at all still stops the run (exit 2, one line); that run is
recorded when the warehouse knows the campaign, and ``status`` says so in Vietnamese.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from flows.cli.app import app
from flows.cli.status import campaign_status, last_run_line
from flows.pipeline.context import read_registry
from flows.registry import NotInRegistry, RegistryError
from flows.registry import read_registry as read_registry_files
from flows.settings import load_settings
from schemas import load_questionnaires
from schemas.records import Source
from tests.factories import khaosat, make_province, rows
from tests.pipeline.test_notify import SMTPServer, notify_yaml
from warehouse import db, ledger, registry

#: (file, text as the test province has it, the mistake): one bad row each.
MISTAKES = [
    ("sources.csv", "S2,CMHS_TH,excel,", "S2,CMHS_TH,exel,"),
    ("sources.csv", "S3,CMHS_THPT,excel,", "S3,CMSH_THPT,excel,"),
    ("sources.csv", "csv,submissions/S3_hs.csv", "csv,submisions/S3_hs.csv"),
    (
        "schools.csv",
        "Phường Một,350\n",
        "Phường Một,350\nS4,Trường Tiểu học D2,TH,U1,Phường Một,\n",
    ),
    ("schools.csv", "S6,Trường THCS G,THCS,", "S6,Trường THCS G,Trung học cơ sở,"),
    ("schools.csv", "Phường Một,400", "Phường Một,bốn trăm"),
]

#: source ("school location") -> what its status must say: file, line, value, suggestion.
SAID = {
    "S2 submissions/S2_cmhs.xls": (
        "sources.csv: line 3: kind 'exel' is not one of excel, csv, gsheet, folder, drive "
        "(did you mean excel?)"
    ),
    "S3 submissions/S3_cmhs.ods": (
        "sources.csv: line 4: questionnaire 'CMSH_THPT' is not one of CMHS_MN, CMHS_TH, "
        "CMHS_THCS, CMHS_THPT, DVGD_8TC, HS_THPT, PAPI_TH (did you mean CMHS_THPT?)"
    ),
    "S3 submisions/S3_hs.csv": (
        "sources.csv: line 5: location 'submisions/S3_hs.csv': folder submisions does not exist "
        "(did you mean submissions/S3_hs.csv?)"
    ),
    "S4 submissions/S4.xlsx": (
        "schools.csv: line 8: school_code S4 is on line 5 too, with other details: keep one row "
        "per school"
    ),
    "S5 submissions/S5_cmhs.xlsx": "schools.csv: line 6: enrollment 'bốn trăm' is not a whole",
    "S6 submissions/S6_missing.xlsx": (
        "schools.csv: line 7: level 'Trung học cơ sở' is not one of MN, TH, THCS, THPT, GDTX "
        "(did you mean THCS?)"
    ),
}


def _mistaken(folder: Path) -> Path:
    """The test province in ``folder``, S4 given a source (whose file is not in yet), with
    every MISTAKE made; its config."""
    config = make_province(folder)
    sources = folder / "sources.csv"
    added = sources.read_text(encoding="utf-8") + "S4,CMHS_TH,excel,submissions/S4.xlsx\n"
    sources.write_text(added, encoding="utf-8")
    for name, old, new in MISTAKES:
        path = folder / name
        text = path.read_text(encoding="utf-8")
        assert old in text, (name, old)
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return config


#: The tone marks (grave, acute, tilde, hook above, dot below): Windows-1258 keeps them apart.
_TONES = "\u0300\u0301\u0303\u0309\u0323"


def _windows_1258(text: str) -> bytes:
    """``text`` as Excel saves a CSV on a Vietnamese Windows: Windows-1258, where a vowel with
    its hat or horn is one byte and its tone another."""
    out = []
    for char in text:
        try:
            out.append(char.encode("cp1258"))
        except UnicodeEncodeError:
            marks = unicodedata.normalize("NFD", char)
            tones = "".join(m for m in marks if m in _TONES)
            vowel = unicodedata.normalize("NFC", "".join(m for m in marks if m not in _TONES))
            out.append((vowel + tones).encode("cp1258"))
    return b"".join(out)


def _fix(folder: Path) -> None:
    """What the officer does the morning after: every mistake undone."""
    for name, old, new in reversed(MISTAKES):
        path = folder / name
        path.write_text(path.read_text(encoding="utf-8").replace(new, old, 1), encoding="utf-8")


# ------------------------------------------------------------------------------------------
# The registry: bad rows refused, with their line and the nearest valid value
# ------------------------------------------------------------------------------------------


def test_each_bad_row_fails_its_own_sources_and_the_rest_are_read(tmp_path: Path) -> None:
    config = _mistaken(tmp_path)
    _, found = read_registry(load_settings(config, env={}))
    assert [s.key for s in found.sources] == ["S1|CMHS_TH|submissions/S1_cmhs.xlsx"]
    assert [s.code for s in found.schools] == ["S1", "S2", "S3"]  # S4 twice, S5, S6 refused
    refused = {r.source.label: r.message for r in found.refused}
    assert set(refused) == set(SAID)
    for label, said in SAID.items():
        assert refused[label].startswith(f"{tmp_path / said.split(':', 1)[0]}:"), refused[label]
        assert said in refused[label], refused[label]
        assert "\n" not in refused[label]
    assert found.notes == []


def test_a_missing_file_in_a_folder_that_exists_is_not_a_registry_mistake(tmp_path: Path) -> None:
    config = make_province(tmp_path)
    sources = tmp_path / "sources.csv"
    sources.write_text(
        sources.read_text(encoding="utf-8") + "S4,CMHS_TH,excel,submissions/S4_later.xlsx\n",
        encoding="utf-8",
    )
    _, found = read_registry(load_settings(config, env={}))
    assert found.refused == []
    assert "S4|CMHS_TH|submissions/S4_later.xlsx" in {s.key for s in found.sources}


def test_codes_and_kinds_in_another_letter_case_are_the_registry_s(tmp_path: Path) -> None:
    make_province(tmp_path)
    sources = tmp_path / "sources.csv"
    text = sources.read_text(encoding="utf-8").replace("S1,CMHS_TH,excel", "s1,cmhs_th,Excel")
    sources.write_text(text, encoding="utf-8")
    found = read_registry_files(tmp_path / "schools.csv", sources, load_questionnaires())
    assert found.refused == []
    first = found.sources[0]
    assert (first.school_code, first.questionnaire, first.kind) == ("S1", "CMHS_TH", "excel")


def test_the_same_row_twice_is_one_school_and_the_same_source_twice_one_source(
    tmp_path: Path,
) -> None:
    make_province(tmp_path)
    schools, sources = tmp_path / "schools.csv", tmp_path / "sources.csv"
    schools.write_text(
        schools.read_text(encoding="utf-8") + "S1,Trường Tiểu học A,TH,U1,Phường Một,300\n",
        encoding="utf-8",
    )
    sources.write_text(
        sources.read_text(encoding="utf-8") + "S1,CMHS_TH,excel,submissions/S1_cmhs.xlsx\n",
        encoding="utf-8",
    )
    found = read_registry_files(schools, sources, load_questionnaires())
    assert found.refused == [] and len(found.sources) == 6
    assert [s.code for s in found.schools].count("S1") == 1
    assert found.notes == [
        f"{schools}: line 8: repeats line 2 (school S1): left out",
        f"{sources}: line 8: the same source is on line 2: left out",
    ]


@pytest.mark.parametrize(
    ("name", "damage", "says"),
    [
        ("schools.csv", "cp1258", "not UTF-8 (save it as 'CSV UTF-8')"),
        ("sources.csv", "no location", "line 1: missing column(s) location"),
    ],
)
def test_a_registry_file_that_cannot_be_read_is_still_an_error(
    tmp_path: Path, name: str, damage: str, says: str
) -> None:
    config = make_province(tmp_path)
    path = tmp_path / name
    text = path.read_text(encoding="utf-8")
    if damage == "cp1258":
        path.write_bytes(_windows_1258(text))
    else:
        path.write_text(text.replace(",location", ",where"), encoding="utf-8")
    with pytest.raises(RegistryError) as caught:
        read_registry(load_settings(config, env={}))
    assert str(caught.value) == f"{path}: {says}"


# ------------------------------------------------------------------------------------------
# The ledger and status: refused rows are failed sources, listed first with their line
# ------------------------------------------------------------------------------------------


def _warehouse(config: Path, engine: Engine) -> None:
    """The campaign of ``config`` synced into ``engine`` as a run would (refused rows too)."""
    settings = load_settings(config, env={})
    questionnaires, found = read_registry(settings)
    listed = [*found.sources, *(r.source for r in found.refused)]
    registry.sync_registry(engine, settings.campaign, found.schools, questionnaires, sources=listed)


def test_refused_rows_are_failed_sources_listed_first_with_their_line(
    tmp_path: Path, engine: Engine
) -> None:
    config = _mistaken(tmp_path)
    _warehouse(config, engine)
    _, found = read_registry(load_settings(config, env={}))
    ledger.start_run(engine, "run-1", "T-2024")
    broken = Source("S1", "CMHS_TH", "excel", "submissions/S1_cmhs.xlsx")
    ledger.record_failure(engine, "T-2024", "run-1", broken, "S1 submissions/S1_cmhs.xlsx: damaged")
    ledger.record_refused(
        engine,
        "T-2024",
        "run-1",
        [(r.source, f"{r.source.label}: {r.message}") for r in found.refused],
    )
    run = ledger.finish_run(engine, "run-1")
    assert (run.status, run.n_failed) == ("partial", 7)
    # no quarantine row for a registry mistake: the school's file is not at fault
    assert [r["school_code"] for r in rows(engine, "SELECT school_code FROM quarantine")] == ["S1"]

    files = (str(tmp_path / "schools.csv"), str(tmp_path / "sources.csv"))
    status = campaign_status(engine, "T-2024", registry_files=files)
    failed = [s for s in status.sources if s.state == "failed"]
    assert {f"{s.school_code} {s.location}" for s in failed[:-1]} == set(SAID)
    assert failed[-1].school_code == "S1"  # the school's own file comes after the registry
    for s in failed[:-1]:
        assert SAID[f"{s.school_code} {s.location}"] in (s.reason or "")
    # a refused source does not count as loaded: the next run reads it again
    assert ledger.last_loads(engine, "T-2024") == {}


def test_a_night_that_stops_before_its_run_row_is_recorded_once(
    engine: Engine, tmp_path: Path
) -> None:
    config = make_province(tmp_path)
    assert not ledger.record_stopped_run(
        engine, "r0", "T-2024", status="failed", message="before the campaign was known"
    )
    _warehouse(config, engine)
    assert ledger.record_stopped_run(engine, "r1", "T-2024", status="failed", message="why")
    assert not ledger.record_stopped_run(engine, "r1", "T-2024", status="error", message="again")
    found = rows(engine, "SELECT run_id, status, message, n_sources, finished_at FROM run")
    assert len(found) == 1
    assert found[0]["status"] == "failed" and found[0]["message"] == "why"
    assert found[0]["n_sources"] == 0 and found[0]["finished_at"] is not None


# ------------------------------------------------------------------------------------------
# An unreadable registry: exit 2, one line, and the night on record (no Prefect touched)
# ------------------------------------------------------------------------------------------


def test_an_unreadable_registry_is_recorded_and_shown_by_status(
    tmp_path: Path, own_environment: None
) -> None:
    config = make_province(tmp_path)
    url = f"sqlite:///{tmp_path / 'khaosat.sqlite'}"
    engine = db.connect(url)
    db.migrate(engine)
    _warehouse(config, engine)
    ledger.start_run(engine, "yesterday", "T-2024")
    ledger.finish_run(engine, "yesterday")
    schools = tmp_path / "schools.csv"
    schools.write_bytes(_windows_1258(schools.read_text(encoding="utf-8")))

    env = {"PREFECT_API_URL": "http://127.0.0.1:9/api"}  # never reached: nothing starts
    done = CliRunner().invoke(app, ["run", "--config", str(config)], env=env)
    assert done.exit_code == 2, done.output
    line = f"{schools}: not UTF-8 (save it as 'CSV UTF-8')"
    assert done.output.strip() == f"error: {line}"

    runs = rows(engine, "SELECT run_id, status, message FROM run ORDER BY started_at, run_id")
    assert len(runs) == 2
    tonight = next(r for r in runs if r["run_id"] != "yesterday")
    assert (tonight["status"], tonight["message"]) == ("failed", line)

    status = campaign_status(engine, "T-2024")
    engine.dispose()
    assert status.last_run is not None and status.last_run.run_id == tonight["run_id"]
    said = last_run_line(status.last_run)
    assert said is not None and said.startswith("Lần chạy cuối: thất bại lúc ")
    assert said.endswith(f" — {line}")
    shown = CliRunner().invoke(app, ["status", "--config", str(config)], env={"COLUMNS": "400"})
    text = " ".join(shown.output.split())  # the title wraps at the table's width
    assert f"Lần chạy cuối: thất bại lúc {said.split(' lúc ')[1]}" in text
    assert "fix what the last run says" in text
    as_json = CliRunner().invoke(app, ["status", "--json", "--config", str(config)])
    last = json.loads(as_json.output)["last_run"]
    assert (last["run_id"], last["status"], last["message"]) == (tonight["run_id"], "failed", line)


def test_an_unreadable_registry_is_mailed_when_notify_is_set(
    tmp_path: Path, own_environment: None
) -> None:
    config = make_province(tmp_path)
    (tmp_path / "sources.csv").write_text("school_code,questionnaire\n", encoding="utf-8")
    with SMTPServer() as server:
        with config.open("a", encoding="utf-8") as f:
            f.write(notify_yaml(server, user=None))
        done = CliRunner().invoke(
            app, ["run", "--config", str(config)], env={"PREFECT_API_URL": "http://127.0.0.1:9/api"}
        )
    assert done.exit_code == 2, done.output
    [got] = server.messages
    assert got.message["Subject"] == "[khaosat] T-2024: run failed"
    assert f"{tmp_path / 'sources.csv'}: line 1: missing column(s) kind, location" in got.body


def test_an_unreadable_registry_without_a_warehouse_creates_none(
    tmp_path: Path, own_environment: None
) -> None:
    config = make_province(tmp_path)
    (tmp_path / "sources.csv").write_text("school_code,questionnaire\n", encoding="utf-8")
    env = {"PREFECT_API_URL": "http://127.0.0.1:9/api"}
    done = CliRunner().invoke(app, ["run", "--config", str(config)], env=env)
    assert done.exit_code == 2
    assert "missing column(s) kind, location" in done.output
    assert not (tmp_path / "khaosat.sqlite").exists()


# ------------------------------------------------------------------------------------------
# The night, as an officer runs it
# ------------------------------------------------------------------------------------------


def _status(config: Path) -> dict[str, dict[str, str]]:
    done = khaosat("status", "--json", "--config", str(config), timeout=120)
    assert done.returncode == 0, done.stderr
    return {f"{s['school_code']} {s['location']}": s for s in json.loads(done.stdout)["sources"]}


@pytest.mark.slow
def test_a_province_with_registry_mistakes_loads_the_rest_and_names_each_row(
    tmp_path: Path, prefect_harness: None
) -> None:
    config = _mistaken(tmp_path)
    done = khaosat("run", "--config", str(config), KHAOSAT_RUN__PARSE_PROCESSES="0")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output

    status = _status(config)
    assert status["S1 submissions/S1_cmhs.xlsx"]["state"] == "loaded"
    for key, said in SAID.items():
        assert status[key]["state"] == "failed", (key, status[key])
        assert said in status[key]["reason"], (key, status[key]["reason"])
    json_order = [k for k, s in status.items() if s["state"] == "failed"]
    assert sorted(json_order) == sorted(SAID)

    shown = khaosat("status", "--config", str(config), timeout=120, COLUMNS="400")
    assert shown.returncode == 0, shown.stderr
    for said in SAID.values():
        assert said in shown.stdout, said
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'khaosat.sqlite'}")
    try:
        marts = rows(engine, "SELECT school_code, status FROM mart_completeness")
        assert {"school_code": "S2", "status": "failed"} in marts
    finally:
        engine.dispose()

    # A lowercase school code works as the registry spells it; the registry's mistakes stay.
    again = khaosat("rerun", "--school", "s1", "--config", str(config))
    assert again.returncode == 0, again.stdout + again.stderr

    _fix(tmp_path)
    fixed = khaosat("rerun", "--failed", "--config", str(config), KHAOSAT_RUN__PARSE_PROCESSES="0")
    assert fixed.returncode == 1, fixed.stdout + fixed.stderr  # S5's file is damaged, as ever
    status = _status(config)
    for key in (
        "S2 submissions/S2_cmhs.xls",
        "S3 submissions/S3_cmhs.ods",
        "S3 submissions/S3_hs.csv",
    ):
        assert status[key]["state"] == "loaded", (key, status[key])
    assert status["S5 submissions/S5_cmhs.xlsx"]["state"] == "failed"
    assert "schools.csv" not in status["S5 submissions/S5_cmhs.xlsx"]["reason"]
    assert status["S6 submissions/S6_missing.xlsx"]["state"] == "absent"
    assert status["S4 submissions/S4.xlsx"]["state"] == "absent"  # its file is not in yet
    assert "S3 submisions/S3_hs.csv" not in status  # the misspelt row left sources.csv


@pytest.mark.slow
def test_a_flow_run_naming_a_school_the_registry_lacks_fails_and_runs_nothing(
    tmp_path: Path, prefect_harness: None
) -> None:
    """A Custom run from Prefect's UI is not checked by the command line: the flow itself
    refuses a school no source names, rather than ending Completed with nothing done."""
    from flows.pipeline import nightly

    config = make_province(tmp_path)
    settings = load_settings(config, env={})
    with pytest.raises(NotInRegistry, match="school XX999: no source in sources.csv"):
        nightly.run(settings, school="XX999")
    assert not settings.output.exists()  # no workbook rewritten
