"""Issue #20, item 2: sources.csv reads only regular files inside the campaign's folders.

Each run is a real ``khaosat run`` of the test province with hostile rows added to sources.csv:
an absolute path outside, a ``../`` escape, a symbolic link out, a named pipe with a writer that
never writes, a folder, a device, and a file held under a lease that is never let go (what a
Samba or NFS share does while a client writes it: reading it stalls like a dead mount). Each
fails alone in one line; the rest load; nothing of the files outside reaches the archive, the
warehouse, the workbooks or the console; the run ends in time.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from tests.factories import cli_env, khaosat, make_province

pytestmark = pytest.mark.slow

#: In every byte of the file outside the campaign folder, and nowhere else.
MARKER = "OUTSIDE-SECRET-7f3a"
OUTSIDE_CSV = (
    f"Dấu thời gian,TC1,CHUNG,{MARKER}\n23/10/2024 09:00:00,3,5,{MARKER}\n"
    f"23/10/2024 09:30:00,2,4,{MARKER}\n"
)
PASSWD = "root:x:0:0"

#: A process holding a write lease on a file and ignoring the kernel's request to let go.
LEASE_HOLDER = """
import fcntl, os, signal, sys, time
signal.signal(signal.SIGIO, signal.SIG_IGN)
fd = os.open(sys.argv[1], os.O_WRONLY)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
print("leased", flush=True)
time.sleep(600)
"""
#: A process that opens a named pipe for writing and never writes.
PIPE_WRITER = "import sys, time; f = open(sys.argv[1], 'w'); time.sleep(600)"


def _add_sources(config: Path, rows: list[str]) -> None:
    sources = config.parent / "sources.csv"
    sources.write_text(sources.read_text(encoding="utf-8") + "\n".join(rows) + "\n", "utf-8")


@pytest.fixture
def helpers() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts (lease holders, pipe writers), ended by their ids."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait(timeout=10)


def _hold_lease(path: Path, helpers: list[subprocess.Popen[str]]) -> None:
    proc = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", LEASE_HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    helpers.append(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "leased", "the kernel refused a file lease"


def _texts(folder: Path) -> Iterator[tuple[Path, str]]:
    """Every text a run wrote under ``folder``: regular files' bytes, the warehouse's rows and
    the workbooks' cells (symbolic links, pipes and the outside folder are not looked into)."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not Path(root, d).is_symlink()]
        for name in files:
            path = Path(root, name)
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            yield path, data.decode("utf-8", "replace")
            if path.suffix == ".sqlite":
                with sqlite3.connect(path) as db:
                    yield path, "\n".join(db.iterdump())
            elif zipfile.is_zipfile(path) and path.suffix == ".xlsx":
                book = openpyxl.load_workbook(path, read_only=True)
                cells = (str(v) for ws in book for r in ws.iter_rows(values_only=True) for v in r)
                yield path, "\n".join(cells)


def _leaks(folder: Path, *texts: str) -> list[str]:
    return [
        f"{path}: {needle}"
        for path, text in _texts(folder)
        for needle in (MARKER, PASSWD)
        if needle in text
    ] + [f"console: {n}" for t in texts for n in (MARKER, PASSWD) if n in t]


def _status(config: Path) -> dict[str, dict[str, str]]:
    done = khaosat("status", "--json", "--config", str(config), timeout=120)
    assert done.returncode in (0, 1, 3), done.stderr
    return {f"{s['school_code']} {s['location']}": s for s in json.loads(done.stdout)["sources"]}


def test_paths_outside_the_folder_or_not_files_fail_alone(
    tmp_path: Path, prefect_harness: None, helpers: list[subprocess.Popen[str]]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.csv"
    secret.write_text(OUTSIDE_CSV, encoding="utf-8")
    campaign = tmp_path / "campaign"
    campaign.mkdir()
    config = make_province(campaign)
    subs = campaign / "submissions"
    (subs / "out.csv").symlink_to(secret)
    (subs / "in.xlsx").symlink_to(subs / "S1_cmhs.xlsx")
    (subs / "folder.xlsx").mkdir()
    os.mkfifo(subs / "pipe.csv")
    writer = subprocess.Popen([sys.executable, "-c", PIPE_WRITER, str(subs / "pipe.csv")])  # noqa: S603
    helpers.append(writer)
    leased = subs / "leased.csv"
    shutil.copy(subs / "S3_hs.csv", leased)
    _hold_lease(leased, helpers)
    bad = {
        f"S4 {secret}": "is outside the campaign folder",
        "S4 ../outside/secret.csv": "is outside the campaign folder",
        "S4 ../../../../../../../../../../etc/passwd": "is outside the campaign folder",
        "S4 submissions/out.csv": "is outside the campaign folder",
        "S4 /dev/zero": "is outside the campaign folder",
        "S4 submissions/pipe.csv": "is a named pipe, not a file",
        "S4 submissions/folder.xlsx": "is a folder, not a file",
        "S3 submissions/leased.csv": "could not be read within 3 s: the folder's disk or "
        "network mount is not answering",
    }
    _add_sources(
        config,
        [
            f"S4,CMHS_TH,{'excel' if k.endswith('xlsx') else 'csv'},{k.split(' ', 1)[1]}"
            for k in bad
            if k.startswith("S4")
        ]
        + ["S3,HS_THPT,csv,submissions/leased.csv", "S4,CMHS_TH,excel,submissions/in.xlsx"],
    )

    done = khaosat("run", "--config", str(config), timeout=240, KHAOSAT_LIMITS__READ_SECONDS="3")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    status = _status(config)
    for key, why in bad.items():
        got = status[key]
        assert got["state"] == "failed", (key, got)
        assert why in got["reason"] and "\n" not in got["reason"], (key, got["reason"])
    # The night went on: the link inside the folder and the province's good files loaded.
    assert status["S4 submissions/in.xlsx"]["state"] == "loaded"
    for key in ("S1 submissions/S1_cmhs.xlsx", "S3 submissions/S3_hs.csv"):
        assert status[key]["state"] == "loaded", status[key]
    assert writer.poll() is None, "the pipe was opened: its writer went on"
    assert _leaks(campaign, done.stdout, done.stderr) == []


def test_allowed_folders_let_an_outside_folder_in(tmp_path: Path, prefect_harness: None) -> None:
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "hs.csv").write_text(OUTSIDE_CSV, encoding="utf-8")
    campaign = tmp_path / "campaign"
    campaign.mkdir()
    config = make_province(campaign)
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "  sources: sources.csv\n",
            "  sources: sources.csv\n  allowed_folders: [../shared, /dev]\n",
        ),
        encoding="utf-8",
    )
    _add_sources(config, ["S3,HS_THPT,csv,../shared/hs.csv", "S4,CMHS_TH,csv,/dev/zero"])

    done = khaosat("run", "--config", str(config), timeout=240)

    status = _status(config)
    assert status["S3 ../shared/hs.csv"]["state"] == "loaded", status["S3 ../shared/hs.csv"]
    zero = status["S4 /dev/zero"]
    assert zero["state"] == "failed"
    assert zero["reason"] == "is a device, not a file; give a regular file's path in sources.csv"
    assert "Traceback" not in done.stdout + done.stderr


def test_a_lease_blocks_a_plain_open(tmp_path: Path, helpers: list[subprocess.Popen[str]]) -> None:
    """The stall the time limit is tested with is real: without O_NONBLOCK, an open waits."""
    path = tmp_path / "held.csv"
    path.write_text("a,b\n", encoding="utf-8")
    _hold_lease(path, helpers)
    probe = "import os, sys; os.open(sys.argv[1], os.O_RDONLY)"
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", probe, str(path)], timeout=2, env=cli_env(api=False))  # noqa: S603
