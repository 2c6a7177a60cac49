"""A 50-school province whose files sit in one shared Google Drive folder, through the nightly
flow: discovered by name as a folder beside sources.csv would be, downloaded once, and then
only when a school uploads again.

The same generated province (tests compare it with itself) is loaded once from its drop
folder, listed file by file in sources.csv, and once from the fake Google Drive, where its
files sit in one subfolder per reporting unit under a folder named by one ``*`` row per
questionnaire: the marts must be the same.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import shutil
from pathlib import Path

import pytest

from flows.cli.demo import generate_province
from flows.pipeline import nightly
from flows.settings import load_settings
from tests.factories import mart_tables, one_more_answer, write_key
from tests.fake_google import FakeGoogle
from warehouse import db

#: Whole flows over 50 schools: minutes, not seconds.
pytestmark = pytest.mark.slow

FOLDER = "1SoGDDT_Khaosat_2024"


def _drive_time(path: Path) -> str:
    """A file's modified time as Drive writes it (RFC 3339, UTC)."""
    moment = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _to_drive(google: FakeGoogle, province: Path) -> dict[str, str]:
    """Move the province's submissions into the fake Drive, one subfolder per unit, and point
    sources.csv at the folder with one ``*`` row per questionnaire; the Drive id of each file
    by its local location."""
    with (province / "schools.csv").open(encoding="utf-8") as f:
        unit_of = {r["school_code"]: r["unit_code"] for r in csv.DictReader(f)}
    google.add_folder(FOLDER, "Khảo sát hài lòng 2024")
    for unit in sorted(set(unit_of.values())):
        google.add_folder(f"{FOLDER}_{unit}", unit, FOLDER)
    ids: dict[str, str] = {}
    for path in sorted((province / "submissions").iterdir()):
        school = path.name.split("_", 1)[0]
        file_id = f"1Drive_{path.stem}"
        google.add_file(
            file_id,
            path.name,
            path.read_bytes(),
            f"{FOLDER}_{unit_of[school]}" if school in unit_of else FOLDER,  # misnamed: at the top
            modified_time=_drive_time(path),
        )
        ids[f"submissions/{path.name}"] = file_id
        path.unlink()  # only Drive has it now
    with (province / "sources.csv").open(encoding="utf-8") as f:
        codes = sorted({r["questionnaire"] for r in csv.DictReader(f)})
    rows = [f"*,{q},drive,{FOLDER}#{{school_code}}_{q}.*" for q in codes]
    (province / "sources.csv").write_text(
        "school_code,questionnaire,kind,location\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    return ids


def _renamed(value: object, ids: dict[str, str]) -> object:
    """``value`` with each local file's location replaced by its Drive file id (an alert
    about a source names it by its location)."""
    if not isinstance(value, str):
        return value
    for location, file_id in ids.items():
        value = value.replace(location, file_id)
    return value


def test_a_drive_folder_loads_as_the_same_files_listed_one_by_one(
    tmp_path: Path,
    prefect_harness: None,
    private_key_pem: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = generate_province(
        tmp_path / "local", n_units=5, schools_per_unit=10, respondents=(8, 10)
    )
    shutil.copytree(tmp_path / "local", tmp_path / "drive")  # same bytes, same times
    local = load_settings(config, env={})
    local_run = nightly.run(local)
    expected = mart_tables(db.connect(local.warehouse_url))
    local_status = {o.source.location: o.status for o in local_run.outcomes}

    with FakeGoogle() as google:
        ids = _to_drive(google, tmp_path / "drive")
        assert len(ids) >= 75
        key = write_key(tmp_path / "sa.json", google.token_uri, private_key_pem)
        drive_config = tmp_path / "drive" / config.name
        with drive_config.open("a", encoding="utf-8") as f:
            f.write(f'gsheets: {{credentials: {key}, endpoint: "{google.url}"}}\n')
        settings = load_settings(drive_config, env={})
        caplog.set_level(logging.INFO)

        first = nightly.run(settings)
        engine = db.connect(settings.warehouse_url)
        expected["alerts"] = sorted(
            (tuple(_renamed(v, ids) for v in a) for a in expected["alerts"]), key=repr
        )
        assert mart_tables(engine) == expected
        # every file was placed with its school and downloaded once, but the one whose name
        # names no school (the demo's misnamed PAPI file), which is not fetched at all
        by_id = {o.source.location: o for o in first.outcomes}
        unplaced = {i for i in ids.values() if by_id[i].source.school_code == "*"}
        assert unplaced == {ids["submissions/TH02_PAPI_TH.csv"]}
        assert sorted(google.downloads()) == sorted(set(ids.values()) - unplaced)
        assert {loc: by_id[i].status for loc, i in ids.items()} == {
            loc: local_status[loc] for loc in ids
        }
        failed = {o.source.location for o in first.outcomes if o.status == "failed"} - unplaced

        # a second night with nothing changed downloads nothing but what failed
        google.requests.clear()
        second = nightly.run(settings)
        assert sorted(google.downloads()) == sorted(failed)
        loaded = {o.source.location for o in first.outcomes if o.status == "loaded"}
        assert {o.status for o in second.outcomes if o.source.location in loaded} == {"unchanged"}

        # one school uploads its file again, and another a file named for no school
        google.requests.clear()
        changed = ids["submissions/TH002_CMHS_TH.xlsx"]
        google.upload(changed, one_more_answer(google.drive_files[changed].content))
        google.add_file(
            "1Drive_misnamed",
            "truong tieu hoc_CMHS_TH.xlsx",
            google.drive_files[changed].content,
            FOLDER,
        )
        third = nightly.run(settings)
        assert sorted(google.downloads()) == sorted({changed, *failed})
        said = [o.message or "" for o in third.outcomes if o.source.school_code == "*"]
        assert any("tệp không khớp trường nào: " in m and "truong tieu hoc" in m for m in said)

    for secret in [*google.issued_tokens, private_key_pem.splitlines()[1]]:
        assert secret not in caplog.text
