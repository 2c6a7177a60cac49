"""A worker process that dies takes no one with it.

A 150-source province is run while a thread SIGKILLs its parse and load processes at random
moments (as the out-of-memory killer would). Every source ends as in an undisturbed run, or
``stopped`` (the machine's fault: no ledger row, its previous state kept, not told to
resubmit); no source is ``failed`` that the undisturbed run did not fail; publishing is done
(the workbooks are this run's); and the next night gives the marts of the undisturbed run.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from flows.cli.demo import generate_province
from tests.factories import cli_env, descendants, khaosat, khaosat_running, mart_tables, rows
from warehouse.db import connect

pytestmark = pytest.mark.slow


def pool_workers(pid: int) -> list[int]:
    """The run's parse and load processes: the forkserver's children."""
    found = []
    for child in descendants(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            parent = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])
            parent_cmdline = Path(f"/proc/{parent}/cmdline").read_bytes()
        except (OSError, ValueError):  # ended while looked at
            continue
        if b"forkserver" in cmdline and b"forkserver" in parent_cmdline:
            found.append(child)
    return found


def kill_workers(proc: subprocess.Popen[str], kills: list[int], seed: int) -> None:
    """SIGKILL one of ``proc``'s worker processes every 1-4 s until it ends (at most 6)."""
    rng = random.Random(seed)  # noqa: S311 - a test's dice
    while proc.poll() is None and len(kills) < 6:
        time.sleep(rng.uniform(1.0, 4.0))
        workers = pool_workers(proc.pid)
        if workers:
            victim = rng.choice(workers)
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                continue
            kills.append(victim)


def _standing(marts: dict[str, list[tuple[object, ...]]]) -> dict[str, list[tuple[object, ...]]]:
    """The marts, and the alerts that stand (not resolved). A source stopped on its first night
    has no earlier state to keep, so that night's completeness calls it missing and raises an
    alert, resolved once the next night loads it: history, not a difference in the figures."""
    return {k: [r for r in v if k != "alerts" or "resolved" not in r] for k, v in marts.items()}


def latest(engine_url: str) -> dict[tuple[object, ...], object]:
    engine = connect(engine_url)
    got = {
        (r["school_code"], r["questionnaire"], r["location"]): r["status"]
        for r in rows(
            engine,
            "SELECT l.school_code, l.questionnaire, l.location, l.status FROM load_ledger l "
            "WHERE l.load_id = (SELECT MAX(m.load_id) FROM load_ledger m "
            "WHERE m.source_id = l.source_id)",
        )
    }
    engine.dispose()
    return got


@pytest.mark.parametrize("seed", [1, 2])
def test_killing_worker_processes_leaves_only_the_sources_in_hand_stopped(
    tmp_path: Path, prefect_harness: None, seed: int
) -> None:
    calm = generate_province(tmp_path / "calm", n_units=5, schools_per_unit=21, respondents=(8, 10))
    shutil.copytree(calm.parent, tmp_path / "killed")  # same bytes, same modified times
    killed = tmp_path / "killed" / calm.name
    n_files = len(list((calm.parent / "submissions").iterdir()))  # one source each
    assert n_files >= 150
    calm_url = f"sqlite:///{tmp_path / 'calm.sqlite'}"
    url = f"sqlite:///{tmp_path / 'killed.sqlite'}"

    first = khaosat("run", "--config", str(calm), KHAOSAT_WAREHOUSE_URL=calm_url)
    assert first.returncode == 1, first.stdout + first.stderr  # the demo has broken files
    calm_engine = connect(calm_url)
    expected = _standing(mart_tables(calm_engine))
    calm_engine.dispose()
    expected_states = latest(calm_url)

    env = cli_env(
        KHAOSAT_WAREHOUSE_URL=url,
        KHAOSAT_RUN__BATCH_SOURCES="20",
        KHAOSAT_RUN__PARSE_PROCESSES="1",
        KHAOSAT_RUN__LOAD_PROCESSES="1",
    )
    started = time.time()
    with khaosat_running("run", "--config", str(killed), env=env) as proc:
        kills: list[int] = []
        killer = threading.Thread(target=kill_workers, args=(proc, kills, seed))
        killer.start()
        try:
            out, _ = proc.communicate(timeout=900)
        finally:
            if proc.poll() is None:
                proc.kill()
            killer.join()
    assert kills, "no worker was killed"
    assert proc.returncode in (1, 5), out  # 5: a source was stopped; 1: every one retried
    assert "Traceback" not in out and "BrokenProcessPool" not in out, out

    states = latest(url)
    stopped = {key for key in expected_states if key not in states}
    assert len(stopped) <= len(kills), (stopped, kills)  # at most the ones in hand
    for key, status in states.items():
        assert status == expected_states[key], (key, status, out)  # no extra 'failed'
    if stopped:
        assert proc.returncode == 5 and "stopped by the machine" in out, out
        assert len(re.findall(r"\bstopped\b", out)) >= len(stopped)
    # publishing is done: every workbook is this run's
    workbooks = list((tmp_path / "killed" / "output").glob("*.xlsx"))
    assert workbooks and all(p.stat().st_mtime >= started for p in workbooks)

    night = khaosat("run", "--config", str(killed), KHAOSAT_WAREHOUSE_URL=url)
    assert night.returncode == 1, night.stdout + night.stderr
    # every source as in the undisturbed run (unchanged since its load, or loaded tonight)
    tonight = {k: "loaded" if v == "unchanged" else v for k, v in latest(url).items()}
    assert tonight == expected_states
    engine = connect(url)
    assert _standing(mart_tables(engine)) == expected
    engine.dispose()


def _square_or_die(n: int) -> int:
    """A pool job: ``n * n``, or for 13 the death of its process (as the OOM killer does)."""
    if n == 13:
        os.kill(os.getpid(), signal.SIGKILL)
    return n * n


def test_a_job_whose_process_dies_fails_alone_and_the_others_are_retried() -> None:
    from concurrent.futures.process import BrokenProcessPool

    from flows.pipeline.pools import in_processes, new_pool

    pool = new_pool(2)
    try:
        got = in_processes(lambda: pool, _square_or_die, [(n,) for n in range(10, 17)])
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    assert isinstance(got[3], BrokenProcessPool)
    assert got[:3] + got[4:] == [100, 121, 144, 196, 225, 256]


class _KilledWhileSent(bytes):
    """A large value whose process is killed (as the OOM killer does) while it sends it back:
    once its main thread waits to write to a pipe (pipe_write, anon_pipe_write), or after five
    seconds."""

    def __reduce__(self) -> tuple[type, tuple[bytes]]:  # pickled on its way back
        threading.Thread(target=self._kill_while_sent, daemon=True).start()
        return (bytes, (bytes(self),))

    @staticmethod
    def _kill_while_sent() -> None:
        main = Path(f"/proc/self/task/{os.getpid()}/wchan")
        deadline = time.monotonic() + 5
        while "pipe" not in main.read_text() and time.monotonic() < deadline:
            time.sleep(0.0005)
        os.kill(os.getpid(), signal.SIGKILL)


def _killed_while_reporting(size: int) -> bytes:
    """A pool job: ``size`` bytes, its process killed while it sends them back."""
    return _KilledWhileSent(size)


def test_a_process_killed_while_it_reports_breaks_its_job_instead_of_the_run() -> None:
    # Killed halfway through sending a large value back, a worker used to leave half a message
    # in the pipe its pool reads results from: the pool waited forever for the rest, and the
    # night with it.
    from concurrent.futures.process import BrokenProcessPool

    from flows.pipeline.pools import in_processes, new_pool

    pool = new_pool(2)
    got: list[object] = []
    job = threading.Thread(
        target=lambda: got.extend(
            in_processes(lambda: pool, _killed_while_reporting, [(256 * 2**20,)])
        ),
        daemon=True,
    )
    try:
        job.start()
        job.join(timeout=120)
        assert not job.is_alive(), "the pool waits forever for the killed worker's value"
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    [outcome] = got  # killed mid-value: the job failed; or the value came whole
    assert isinstance(outcome, BrokenProcessPool) or outcome == bytes(256 * 2**20)


def test_a_source_whose_process_died_is_stopped_by_the_machine_not_failed() -> None:
    from flows.pipeline.faults import worker_died
    from flows.pipeline.tasks import failure_message
    from schemas.records import RunSummary, Source, SourceOutcome

    source = Source("TH001", "CMHS_TH", "excel", "submissions/TH001.xlsx")
    message = failure_message(source, worker_died("parse", "TH001.xlsx"))
    assert message.startswith("TH001 submissions/TH001.xlsx: TH001.xlsx: the machine stopped")
    assert "not judged" in message and "next run" in message
    summary = RunSummary(
        run_id="r",
        campaign_id="T-2024",
        outcomes=[SourceOutcome(source, "stopped", message), SourceOutcome(source, "failed")],
    )
    assert summary.exit_code == 5  # the machine's fault first: the officer looks at it
