"""Builders the pipeline's tests share: the small test province, a ``khaosat`` subprocess as a
user runs it, and waiting for processes."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

FIXTURES = Path(__file__).parent / "fixtures" / "e2e" / "submissions"
AS_OF = dt.datetime(2024, 11, 5, 2, 0)  # after the deadline: absent means missing

CONFIG = """\
campaign:
  id: T-2024
  name: Khảo sát thử nghiệm
  school_year: 2024-2025
  opens: 2024-10-01
  closes: 2024-10-31
  deadline: 2024-10-25
  province_code: TM
registry:
  schools: schools.csv
  sources: sources.csv
output: output
"""

SCHOOLS = """\
school_code,school_name,level,unit_code,unit_name,enrollment
S1,Trường Tiểu học A,TH,U1,Phường Một,300
S2,Trường Tiểu học B,TH,U1,Phường Một,250
S3,Trường THPT C,THPT,U2,Sở GDĐT (THPT),900
S4,Trường Tiểu học D,TH,U1,Phường Một,
S5,Trường THCS E,THCS,U1,Phường Một,400
S6,Trường THCS G,THCS,U1,Phường Một,350
"""

SOURCES = """\
school_code,questionnaire,kind,location
S1,CMHS_TH,excel,submissions/S1_cmhs.xlsx
S2,CMHS_TH,excel,submissions/S2_cmhs.xls
S3,CMHS_THPT,excel,submissions/S3_cmhs.ods
S3,HS_THPT,csv,submissions/S3_hs.csv
S5,CMHS_THCS,excel,submissions/S5_cmhs.xlsx
S6,CMHS_THCS,excel,submissions/S6_missing.xlsx
"""


def stamp(path: Path, when: dt.datetime) -> None:
    """Give ``path`` the modified time ``when`` (campaign time, UTC+7).

    Git checkouts stamp files with the checkout time; fixing them makes "late" deterministic.
    """
    ts = when.replace(tzinfo=dt.timezone(dt.timedelta(hours=7))).timestamp()
    os.utime(path, (ts, ts))


def make_province(folder: Path, warehouse_url: str | None = None) -> Path:
    """Write the test province into ``folder``; return its config path."""
    shutil.copytree(FIXTURES, folder / "submissions")
    config = CONFIG + (f"warehouse:\n  url: {warehouse_url}\n" if warehouse_url else "")
    (folder / "khaosat.yaml").write_text(config, encoding="utf-8")
    (folder / "schools.csv").write_text(SCHOOLS, encoding="utf-8")
    (folder / "sources.csv").write_text(SOURCES, encoding="utf-8")
    for f in (folder / "submissions").iterdir():
        stamp(f, dt.datetime(2024, 10, 24, 17, 0))
    stamp(folder / "submissions" / "S3_cmhs.ods", dt.datetime(2024, 10, 27, 9, 0))  # late
    return folder / "khaosat.yaml"


def rows(engine: sa.Engine, sql: str, **params: object) -> list[dict[str, object]]:
    """The rows ``sql`` selects, as dicts."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


ROOT = Path(__file__).resolve().parents[1]
KHAOSAT = Path(sys.executable).with_name("khaosat")


def prefect_api_url() -> str:
    """The test Prefect API's URL (set by the ``prefect_harness`` fixture)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url, "needs the prefect_harness fixture"
    return str(url)


def cli_env(*, api: bool = True, **extra: str) -> dict[str, str]:
    """The environment of a ``khaosat`` subprocess: this checkout, the test Prefect API (unless
    ``api`` is false), and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KHAOSAT_", "PREFECT_API_"))}
    env.update(PYTHONPATH=str(ROOT), DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    if api:
        env["PREFECT_API_URL"] = prefect_api_url()
    env.update(extra)
    return env


def khaosat(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``khaosat ARGS`` as a user would; ``env`` adds KHAOSAT_* and other variables."""
    return subprocess.run(
        [str(KHAOSAT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(**env),
        cwd=ROOT,
    )


def process_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, ended but not yet reaped, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    """``predicate()``'s first true value, polled every half second for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
