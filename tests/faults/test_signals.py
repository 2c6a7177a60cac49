"""Ctrl-C stops a run as SIGTERM does: within seconds, recorded as interrupted, lock released.

A real ``khaosat run`` on the demo province, slowed to two sources a batch, is sent SIGINT
once some sources are loaded: to its whole process group (what Ctrl-C in a terminal does) or
to its main process alone (what ``kill -INT`` does), and SIGTERM likewise. It exits within 15 s
with 128 + the signal's number, one line and no traceback, its run row says ``interrupted``,
the lock is free, and the next run finishes the night.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.cli.demo import generate_province
from tests.factories import KHAOSAT, ROOT, cli_env, khaosat, rows
from warehouse.db import connect

pytestmark = pytest.mark.slow


def loaded(engine: sa.Engine) -> int:
    try:
        return len(rows(engine, "SELECT load_id FROM load_ledger WHERE status = 'loaded'"))
    except sa.exc.DBAPIError:  # tables not made yet
        return 0


@pytest.mark.parametrize(
    ("signum", "group"),
    [(signal.SIGINT, True), (signal.SIGINT, False), (signal.SIGTERM, False)],
    ids=["sigint-group", "sigint-main", "sigterm-main"],
)
def test_a_signal_stops_the_run_within_seconds_as_interrupted(
    tmp_path: Path, prefect_harness: None, signum: int, group: bool
) -> None:
    config = generate_province(tmp_path / "province")
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    env = cli_env(
        KHAOSAT_WAREHOUSE_URL=url, KHAOSAT_RUN__CONCURRENCY="1", KHAOSAT_RUN__BATCH_SOURCES="2"
    )
    proc = subprocess.Popen(
        [str(KHAOSAT), "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,  # its own process group, as a terminal's job has
    )
    engine = connect(url)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and loaded(engine) < 3:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before the signal"
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        sent = time.monotonic()
        out, _ = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + signum, out
    assert took < 15, f"{took:.1f} s to stop\n{out}"
    assert "Traceback" not in out, out
    [line] = [x for x in out.splitlines() if x.startswith("error:")]
    assert signal.Signals(signum).name in line and "interrupted" in line
    [run] = rows(engine, "SELECT status, message, finished_at FROM run")
    assert run["status"] == "interrupted" and run["finished_at"] is not None
    assert signal.Signals(signum).name in str(run["message"])
    assert rows(engine, "SELECT * FROM run_lock") == []
    assert not [r for r in rows(engine, "SELECT message FROM load_ledger") if "Interrupt" in str(r)]

    again = khaosat("run", "--config", str(config), KHAOSAT_WAREHOUSE_URL=url)
    assert again.returncode == 1, again.stdout + again.stderr  # the demo has broken files
    statuses = [r["status"] for r in rows(engine, "SELECT status FROM run ORDER BY started_at")]
    assert statuses == ["interrupted", "partial"]
    engine.dispose()
