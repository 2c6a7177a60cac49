"""Ctrl-C stops a run as SIGTERM does: within seconds, recorded as interrupted, lock released.

A real ``khaosat run`` on the demo province, slowed to two sources a batch, is sent SIGINT
once some sources are loaded: to its whole process group (what Ctrl-C in a terminal does) or
to its main process alone (what ``kill -INT`` does), and SIGTERM likewise. It exits within 15 s
with 128 + the signal's number, one line and no traceback, its run row says ``interrupted``,
the lock is free, and the next run finishes the night. A signal whose exception something
caught on the way still stops the run at the flow's next check.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from flows.cli.demo import generate_province
from flows.pipeline.faults import Interrupted, stop_if_signalled, stopped_by_signals
from tests.factories import cli_env, khaosat, khaosat_running, rows, under_way
from warehouse.db import connect


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_whose_exception_was_swallowed_still_stops_the_run(signum: int) -> None:
    """A library may catch the exception a signal raises wherever the main thread was and
    carry on: the flow's next check between batches or steps raises it again."""
    stop_if_signalled()  # nothing received: nothing raised
    before = signal.getsignal(signum)
    with stopped_by_signals():
        try:
            os.kill(os.getpid(), signum)
            time.sleep(1)  # the handler runs here, in this (the main) thread
            pytest.fail("the signal raised nothing")
        except Interrupted:
            pass  # swallowed, as a library might
        with pytest.raises(Interrupted) as again:
            stop_if_signalled()
        assert again.value.exit_code == 128 + signum
    stop_if_signalled()  # outside the block: forgotten
    assert signal.getsignal(signum) is before  # the handler restored, whatever it was


@pytest.mark.slow
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
    engine = connect(url)
    with khaosat_running("run", "--config", str(config), env=env) as proc:
        under_way(proc, engine)
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        sent = time.monotonic()
        out, _ = proc.communicate(timeout=60)
        took = time.monotonic() - sent
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


@pytest.mark.slow
def test_ctrl_c_stops_publish_and_releases_the_lock(tmp_path: Path, prefect_harness: None) -> None:
    config = generate_province(tmp_path / "province")
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    first = khaosat("run", "--config", str(config), KHAOSAT_WAREHOUSE_URL=url)
    assert first.returncode == 1, first.stdout + first.stderr  # the demo has broken files
    engine = connect(url)
    env = cli_env(KHAOSAT_WAREHOUSE_URL=url)
    with khaosat_running("publish", "--config", str(config), env=env) as proc:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if rows(engine, "SELECT run_id FROM run_lock"):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "publish ended before the signal"
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "Traceback" not in out, out
    [line] = [x for x in out.splitlines() if x.startswith("error:")]
    assert "SIGINT" in line, line
    assert rows(engine, "SELECT * FROM run_lock") == []
    engine.dispose()
