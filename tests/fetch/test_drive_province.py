"""The test province with its files in Google Drive, through the whole nightly flow.

The same submissions (tests/fixtures/e2e: xlsx, xls, ods and CSV files, a damaged one among
them) are loaded once from the drop folder and once from the fake Google Drive, one ``drive``
source per file in sources.csv: the marts must be the same. Then a night with nothing changed
downloads nothing, and a re-uploaded file is the only one downloaded.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from flows.pipeline import nightly
from flows.settings import load_settings
from tests.factories import (
    AS_OF,
    PROVINCE_SOURCES,
    make_province,
    mart_tables,
    one_more_answer,
    rows,
    write_key,
)
from tests.fake_google import FakeGoogle
from warehouse import db

#: Whole flows: minutes, not seconds.
pytestmark = pytest.mark.slow

FOLDER = "1ProvinceFolder_TM"


def _drive_time(path: Path) -> str:
    """A file's modified time as Drive writes it (RFC 3339, UTC)."""
    moment = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _to_drive(google: FakeGoogle, folder: Path) -> dict[str, str]:
    """Upload the province's submissions to the fake Drive and point sources.csv at them:
    every row whose file exists becomes a ``drive`` row; the file id of each school's file."""
    google.add_folder(FOLDER, "Khảo sát TM 2024")
    ids: dict[str, str] = {}
    lines = PROVINCE_SOURCES.splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        school, questionnaire, _, location = line.split(",")
        path = folder / location
        if not path.exists():
            out.append(line)  # a file nobody uploaded stays as it is: missing
            continue
        file_id = f"1Drive_{path.stem}"
        google.add_file(
            file_id, path.name, path.read_bytes(), FOLDER, modified_time=_drive_time(path)
        )
        path.unlink()  # only Drive has it now
        ids[path.name] = file_id
        out.append(f"{school},{questionnaire},drive,{file_id}")
    (folder / "sources.csv").write_text("\n".join(out) + "\n", encoding="utf-8")
    return ids


def _renamed(value: object, ids: dict[str, str]) -> object:
    """``value`` with each local file's location replaced by its Drive file id."""
    if not isinstance(value, str):
        return value
    for name, file_id in ids.items():
        value = value.replace(f"submissions/{name}", file_id)
    return value


def test_drive_province_loads_as_the_same_files_read_locally(
    tmp_path: Path,
    prefect_harness: None,
    private_key_pem: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    local = load_settings(make_province(tmp_path / "local"), env={})
    local_run = nightly.run(local, as_of=AS_OF)
    local_status = {
        Path(o.source.location).name: o.status
        for o in local_run.outcomes
        if (tmp_path / "local" / o.source.location).exists()
    }
    expected = mart_tables(db.connect(local.warehouse_url))
    alerts = expected["alerts"]
    assert "submissions/S1_cmhs.xlsx" in repr(alerts)  # so the renaming below is needed

    with FakeGoogle() as google:
        config = make_province(tmp_path / "drive")
        ids = _to_drive(google, tmp_path / "drive")
        key = write_key(tmp_path / "sa.json", google.token_uri, private_key_pem)
        with config.open("a", encoding="utf-8") as f:
            f.write(f'gsheets: {{credentials: {key}, endpoint: "{google.url}"}}\n')
        settings = load_settings(config, env={})
        caplog.set_level(logging.INFO)

        first = nightly.run(settings, as_of=AS_OF)

        engine = db.connect(settings.warehouse_url)
        # an alert about a source names it by its location: the file's id in Drive
        expected["alerts"] = sorted((tuple(_renamed(v, ids) for v in a) for a in alerts), key=repr)
        assert mart_tables(engine) == expected
        assert sorted(google.downloads()) == sorted(ids.values())
        # each source ends as its local file did (the damaged one fails, in one line)
        by_id = {o.source.location: o for o in first.outcomes}
        assert {name: by_id[i].status for name, i in ids.items()} == local_status
        failed = {i for i in ids.values() if by_id[i].status == "failed"}
        assert failed and all("\n" not in str(by_id[i].message) for i in failed)
        ledger = rows(engine, "SELECT location, revision FROM load_ledger WHERE status = 'loaded'")
        assert {r["location"] for r in ledger} == set(ids.values()) - failed
        assert all(len(str(r["revision"])) == 32 for r in ledger)  # md5Checksum

        # a second night with nothing changed downloads nothing but the file that failed (only
        # a successful load is a reason not to look at a file again)
        google.requests.clear()
        second = nightly.run(settings, as_of=AS_OF + dt.timedelta(days=1))
        assert sorted(google.downloads()) == sorted(failed)
        statuses = {o.source.location: o.status for o in second.outcomes}
        loaded = set(ids.values()) - failed
        assert {statuses[i] for i in loaded} == {"unchanged"}

        # one school uploads its file again, changed: it is the only one downloaded
        google.requests.clear()
        changed = ids["S1_cmhs.xlsx"]
        google.upload(changed, one_more_answer(google.drive_files[changed].content))
        third = nightly.run(settings, as_of=AS_OF + dt.timedelta(days=2))
        assert sorted(google.downloads()) == sorted({changed, *failed})
        statuses = {o.source.location: o.status for o in third.outcomes}
        assert statuses[changed] == "loaded"
        assert {statuses[i] for i in loaded - {changed}} == {"unchanged"}

    secrets = [*google.issued_tokens, private_key_pem.splitlines()[1]]
    for secret in secrets:
        assert secret not in caplog.text
