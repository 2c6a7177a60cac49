"""The machine's faults are the run's, not the schools': a read-only warehouse, a full or
unwritable archive, an output folder that cannot be written, an unreachable PostgreSQL.

Each is reproduced for real on a ``khaosat run`` subprocess: the run ends with exit code 5 and
one line naming what to fix (no traceback), the sources it could not finish keep their
previous state and rows (no ledger row says ``failed``, so no school is told to resubmit), and
where the warehouse can still take it, the run row says ``error`` with that line, which
``khaosat status`` shows. ``output:`` naming a file is a config error: exit 2, one line.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.cli.demo import generate_province
from flows.pipeline.prefect_api import free_port
from tests.factories import (
    cli_env,
    khaosat,
    khaosat_running,
    make_province,
    rows,
    under_way,
)
from tests.pipeline.test_notify import SMTPServer, notify_yaml
from tests.postgres_cluster import PostgresCluster
from warehouse.db import connect

pytestmark = pytest.mark.slow

ROOT_USER = os.geteuid() == 0


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The run's error line, asserting it is the only one and no traceback was printed."""
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
    return errors[0]


def ledger_states(engine: sa.Engine) -> list[tuple[object, ...]]:
    """Each source's latest ledger status and the warehouse's answers per source."""
    latest = rows(
        engine,
        "SELECT l.source_id, l.status FROM load_ledger l WHERE l.load_id = "
        "(SELECT MAX(m.load_id) FROM load_ledger m WHERE m.source_id = l.source_id)",
    )
    answers = rows(engine, "SELECT source_id, COUNT(*) AS n FROM answer GROUP BY source_id")
    return sorted((r["source_id"], r["status"]) for r in latest) + sorted(
        (r["source_id"], r["n"]) for r in answers
    )


@pytest.fixture
def province(tmp_path: Path, prefect_harness: None) -> Path:
    """The test province, run once: every source has a state and rows to keep."""
    config = make_province(tmp_path / "province")
    first = khaosat("run", "--config", str(config))
    assert first.returncode == 1, first.stdout + first.stderr  # it holds a broken file
    return config


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` (a file) cannot be written, even by root: immutable (chattr +i) as root,
    without write permission otherwise."""
    if ROOT_USER:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        path.chmod(stat.S_IRUSR)
        path.parent.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        yield
    finally:
        if ROOT_USER:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.parent.chmod(stat.S_IRWXU)
            path.chmod(stat.S_IRUSR | stat.S_IWUSR)


@contextlib.contextmanager
def full_folder(path: Path) -> Iterator[None]:
    """``path`` (an empty folder) has no room: a 64 KiB tmpfs mounted on it as root, a folder
    without write permission otherwise (what a full disk and a wrong owner share: nothing
    can be written there)."""
    if ROOT_USER:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)], check=True)
        (path / "filler").write_bytes(b"\0" * 60 * 1024)
    else:
        path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        yield
    finally:
        if ROOT_USER:
            subprocess.run(["umount", str(path)], check=True)
        else:
            path.chmod(stat.S_IRWXU)


def test_a_read_only_warehouse_ends_the_run_as_error_and_no_source_failed(
    province: Path,
) -> None:
    engine = connect(f"sqlite:///{province.parent / 'khaosat.sqlite'}")
    before = ledger_states(engine)
    engine.dispose()
    with read_only(province.parent / "khaosat.sqlite"):
        proc = khaosat("run", "--force", "--config", str(province))
    assert proc.returncode == 5, proc.stdout + proc.stderr
    line = one_line_error(proc)
    assert "khaosat.sqlite" in line and "readonly" in line, line
    engine = connect(f"sqlite:///{province.parent / 'khaosat.sqlite'}")
    assert ledger_states(engine) == before  # nothing the school did is recorded as failed
    assert "error" not in {r["status"] for r in rows(engine, "SELECT status FROM run")}
    engine.dispose()


def test_an_archive_that_cannot_be_written_stops_the_run_and_status_says_so(
    province: Path,
) -> None:
    archive = province.parent / "full-archive"
    archive.mkdir()
    engine = connect(f"sqlite:///{province.parent / 'khaosat.sqlite'}")
    before = ledger_states(engine)
    with full_folder(archive):
        proc = khaosat(
            "run", "--force", "--config", str(province), KHAOSAT_RUN__ARCHIVE=str(archive)
        )
    assert proc.returncode == 5, proc.stdout + proc.stderr
    line = one_line_error(proc)
    assert str(archive) in line, line
    assert ledger_states(engine) == before
    [last] = rows(engine, "SELECT status, message FROM run ORDER BY started_at DESC LIMIT 1")
    assert last["status"] == "error" and str(archive) in str(last["message"])
    status = khaosat("status", "--config", str(province))
    assert "Traceback" not in status.stdout + status.stderr
    assert str(archive) in status.stdout.replace("\n", "")
    assert "fix the machine" in status.stdout
    engine.dispose()
    # Once there is room, the next night loads what was left.
    again = khaosat("run", "--force", "--config", str(province), KHAOSAT_RUN__ARCHIVE=str(archive))
    assert again.returncode == 1, again.stdout + again.stderr


def test_an_output_folder_that_cannot_be_made_stops_the_run_after_the_loads(
    province: Path,
) -> None:
    blocker = province.parent / "not-a-folder"
    blocker.write_text("a file where the output folder's parent should be\n")
    text = province.read_text().replace("output: output", f"output: {blocker / 'output'}")
    province.write_text(text)
    proc = khaosat("run", "--force", "--config", str(province))
    assert proc.returncode == 5, proc.stdout + proc.stderr
    line = one_line_error(proc)
    assert str(blocker) in line and "not a folder" in line, line
    engine = connect(f"sqlite:///{province.parent / 'khaosat.sqlite'}")
    [last] = rows(engine, "SELECT status, message FROM run ORDER BY started_at DESC LIMIT 1")
    assert last["status"] == "error" and str(blocker) in str(last["message"])
    statuses = {r["status"] for r in rows(engine, "SELECT status FROM load_ledger")}
    assert "failed" in statuses  # the province's broken file, judged the school's as before
    bad = rows(engine, "SELECT message FROM load_ledger WHERE status = 'failed'")
    assert all(str(blocker) not in str(r["message"]) for r in bad)
    engine.dispose()


def test_output_naming_a_file_is_a_config_error(province: Path) -> None:
    (province.parent / "report.xlsx").write_bytes(b"not a folder")
    province.write_text(province.read_text().replace("output: output", "output: report.xlsx"))
    proc = khaosat("run", "--config", str(province))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = one_line_error(proc)
    assert "output" in line and "report.xlsx" in line and "not a folder" in line, line


def test_an_unreachable_postgresql_ends_the_run_as_error_in_one_line(
    tmp_path: Path, prefect_harness: None
) -> None:
    url = f"postgresql://khaosat:s3cret@127.0.0.1:{free_port()}/warehouse"
    config = make_province(tmp_path / "province", warehouse_url=url)
    with SMTPServer() as server:
        with config.open("a", encoding="utf-8") as f:
            f.write(notify_yaml(server, user=None))
        proc = khaosat("run", "--config", str(config))
    assert proc.returncode == 5, proc.stdout + proc.stderr
    line = one_line_error(proc)
    assert "the warehouse postgresql://khaosat:***@127.0.0.1" in line, line
    assert "s3cret" not in proc.stdout + proc.stderr
    [mail] = server.messages  # the officer is told why, as for any run that fails outright
    assert mail.message["Subject"] == "[khaosat] T-2024: run failed"
    assert "the warehouse postgresql://khaosat:***@127.0.0.1" in mail.body
    assert "s3cret" not in mail.body


def test_postgresql_stopped_mid_run_ends_the_run_as_error_in_one_line(
    tmp_path: Path, prefect_harness: None
) -> None:
    cluster = PostgresCluster()
    config = generate_province(tmp_path / "province")
    env = cli_env(
        KHAOSAT_WAREHOUSE_URL=cluster.url,
        KHAOSAT_RUN__CONCURRENCY="1",
        KHAOSAT_RUN__BATCH_SOURCES="2",
    )
    engine = connect(cluster.url)
    stopped = False
    try:
        with khaosat_running("run", "--config", str(config), env=env) as proc:
            under_way(proc, engine)
            engine.dispose()
            stopped = True
            cluster.stop()  # an immediate shutdown, as a crashed or rebooted server
            out, _ = proc.communicate(timeout=300)
    finally:
        if not stopped:
            cluster.stop()
    assert proc.returncode == 5, out
    assert "Traceback" not in out, out
    [line] = [x for x in out.splitlines() if x.startswith("error:")]
    assert "the warehouse postgresql://postgres@127.0.0.1" in line, line
