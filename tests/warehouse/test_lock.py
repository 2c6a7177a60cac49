"""The run lock on SQLite and PostgreSQL: held, waited for, raced for, and taken over when stale.

Races use real concurrency (threads sharing an Engine, spawned processes with their own) and
the stale cases real dead processes (SIGKILLed, reaped or left as zombies), not mocks.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from warehouse import tables as t
from warehouse.db import connect
from warehouse.lock import LockHeld, LockInfo, RunLock, holder_of, process_gone, this_holder

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = "T-LOCK"


def lock_row(engine: Engine) -> dict[str, object] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.run_lock).where(t.run_lock.c.campaign_id == CAMPAIGN))
        first = row.first()
    return dict(first._mapping) if first else None


def put_lock(engine: Engine, run_id: str, holder: str, heartbeat_age: dt.timedelta) -> None:
    """A lock row as another (maybe dead) holder would have left it."""
    now = RunLock(engine, CAMPAIGN, "probe").now()
    with engine.begin() as conn:
        conn.execute(
            t.run_lock.insert().values(
                campaign_id=CAMPAIGN,
                run_id=run_id,
                holder=holder,
                acquired_at=now - heartbeat_age - dt.timedelta(minutes=1),
                heartbeat_at=now - heartbeat_age,
            )
        )


@pytest.mark.slow
def test_a_second_run_is_told_who_holds_the_campaign(engine: Engine) -> None:
    with RunLock(engine, CAMPAIGN, "run-a"):
        assert holder_of(engine, CAMPAIGN) is not None
        with pytest.raises(LockHeld) as held:
            RunLock(engine, CAMPAIGN, "run-b").acquire()
        message = str(held.value)
        assert message.startswith(
            f"campaign {CAMPAIGN} is being consolidated by run run-a on {this_holder()} since "
        )
        assert held.value.info.run_id == "run-a"
        # another campaign is not blocked
        with RunLock(engine, "OTHER", "run-c"):
            pass
    assert lock_row(engine) is None
    with RunLock(engine, CAMPAIGN, "run-b"):
        assert holder_of(engine, CAMPAIGN) == LockInfo(**lock_row(engine))  # type: ignore[arg-type]


def test_ctrl_c_right_after_the_lock_is_taken_leaves_no_lock(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C once the row is committed but before the block begins (as the heartbeat thread
    starts): the block's exit never runs, yet the row goes."""

    class Interrupted(threading.Thread):
        def start(self) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr("warehouse.lock.threading.Thread", Interrupted)
    with pytest.raises(KeyboardInterrupt), RunLock(engine, CAMPAIGN, "run-a"):
        pytest.fail("the block must not run")
    assert lock_row(engine) is None
    monkeypatch.undo()
    put_lock(engine, "run-b", "elsewhere:1", dt.timedelta(0))  # held by another run
    with pytest.raises(LockHeld), RunLock(engine, CAMPAIGN, "run-a"):
        pytest.fail("the block must not run")
    assert lock_row(engine) is not None  # someone else's row is left alone


@pytest.mark.slow
def test_a_waiting_run_gets_the_lock_once_it_is_released(engine: Engine) -> None:
    first = RunLock(engine, CAMPAIGN, "run-a")
    first.acquire()
    threading.Timer(1.0, first.release).start()
    started = time.monotonic()
    with RunLock(engine, CAMPAIGN, "run-b", wait_seconds=30, poll_seconds=0.05):
        waited = time.monotonic() - started
        assert lock_row(engine)["run_id"] == "run-b"  # type: ignore[index]
    assert 0.8 < waited < 20


@pytest.mark.slow
def test_waiting_gives_up_after_lock_wait_seconds(engine: Engine) -> None:
    with RunLock(engine, CAMPAIGN, "run-a"):
        started = time.monotonic()
        with pytest.raises(LockHeld, match="waited 1 s"):
            RunLock(engine, CAMPAIGN, "run-b", wait_seconds=1.0, poll_seconds=0.1).acquire()
        assert time.monotonic() - started >= 1.0


@pytest.mark.slow
def test_racing_threads_exactly_one_wins(engine: Engine) -> None:
    n = 8
    barrier = threading.Barrier(n)
    results: dict[int, str] = {}
    winners: list[RunLock] = []

    def contend(i: int) -> None:
        lock = RunLock(engine, CAMPAIGN, f"run-{i}")
        barrier.wait()
        try:
            lock.acquire()
        except LockHeld:
            results[i] = "held"
        else:
            results[i] = "won"
            winners.append(lock)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results.values()) == ["held"] * (n - 1) + ["won"]
    winner = next(i for i, r in results.items() if r == "won")
    assert lock_row(engine)["run_id"] == f"run-{winner}"  # type: ignore[index]
    winners[0].release()


@pytest.mark.slow
def test_waiting_threads_take_turns_never_overlapping(engine: Engine) -> None:
    intervals: list[tuple[float, float]] = []

    def work(i: int) -> None:
        with RunLock(engine, CAMPAIGN, f"run-{i}", wait_seconds=60, poll_seconds=0.02):
            start = time.monotonic()
            time.sleep(0.2)
            intervals.append((start, time.monotonic()))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(intervals) == 4
    ordered = sorted(intervals)
    assert all(
        a_end <= b_start for (_, a_end), (b_start, _) in zip(ordered, ordered[1:], strict=False)
    )


def _hold_in_process(url: str, run_id: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """In a spawned process: take the lock (waiting), hold it a moment, report when."""
    engine = connect(url)
    with RunLock(engine, CAMPAIGN, run_id, wait_seconds=120, poll_seconds=0.05):
        start = time.time()
        time.sleep(0.3)
        out.put((run_id, start, time.time()))
    engine.dispose()


@pytest.mark.slow
def test_racing_processes_take_turns_never_overlapping(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_hold_in_process, args=(url, f"run-{i}", out)) for i in range(4)]
    for p in procs:
        p.start()
    got = [out.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(r for r, _, _ in got) == [f"run-{i}" for i in range(4)]
    ordered = sorted((start, end) for _, start, end in got)
    assert all(
        a_end <= b_start for (_, a_end), (b_start, _) in zip(ordered, ordered[1:], strict=False)
    )
    assert lock_row(engine) is None


HOLDER = """
import sys, time
from warehouse.db import connect
from warehouse.lock import RunLock
lock = RunLock(connect(sys.argv[1]), sys.argv[2], "killed-run", heartbeat_seconds=0.2)
lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


def _start_holder(engine: Engine) -> subprocess.Popen[str]:
    url = engine.url.render_as_string(hide_password=False)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, CAMPAIGN],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def _add_running_run(engine: Engine, run_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            t.campaign.insert().values(
                campaign_id=CAMPAIGN,
                name="lock test",
                school_year="2024-2025",
                opens=dt.date(2024, 10, 1),
                closes=dt.date(2024, 10, 31),
                deadline=dt.date(2024, 10, 25),
                province_code="TM",
                timezone="Asia/Ho_Chi_Minh",
            )
        )
        conn.execute(
            t.run.insert().values(
                run_id=run_id,
                campaign_id=CAMPAIGN,
                started_at=dt.datetime(2024, 11, 5, 1, 30),
                status="running",
            )
        )


@pytest.mark.slow
def test_a_sigkilled_holder_never_blocks_the_next_run(engine: Engine) -> None:
    _add_running_run(engine, "killed-run")
    proc = _start_holder(engine)
    with pytest.raises(LockHeld):  # alive: held
        RunLock(engine, CAMPAIGN, "next-run").acquire()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert process_gone(proc.pid)

    with RunLock(engine, CAMPAIGN, "next-run") as lock:  # no waiting: the holder is gone
        assert lock.taken_over is not None
        assert lock.taken_over.run_id == "killed-run"
        assert lock_row(engine)["run_id"] == "next-run"  # type: ignore[index]
    with engine.connect() as conn:
        status = conn.execute(
            sa.select(t.run.c.status, t.run.c.finished_at).where(t.run.c.run_id == "killed-run")
        ).one()
    assert status.status == "failed" and status.finished_at is not None


@pytest.mark.slow
def test_a_killed_holder_not_yet_reaped_counts_as_gone(engine: Engine) -> None:
    proc = _start_holder(engine)
    os.kill(proc.pid, signal.SIGKILL)  # not waited for: a zombie until reaped
    deadline = time.monotonic() + 10
    while not process_gone(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        with RunLock(engine, CAMPAIGN, "next-run") as lock:
            assert lock.taken_over is not None
    finally:
        proc.wait(timeout=30)


def test_a_silent_holder_on_another_host_is_taken_over(engine: Engine) -> None:
    put_lock(engine, "far-run", "elsewhere.example:4242", dt.timedelta(minutes=6))
    with RunLock(engine, CAMPAIGN, "next-run", stale_after=300) as lock:
        assert lock.taken_over is not None and lock.taken_over.holder == "elsewhere.example:4242"


def test_a_live_holder_on_another_host_is_waited_for(engine: Engine) -> None:
    put_lock(engine, "far-run", "elsewhere.example:4242", dt.timedelta(seconds=10))
    with pytest.raises(LockHeld, match=r"by run far-run on elsewhere\.example:4242 since "):
        RunLock(engine, CAMPAIGN, "next-run", stale_after=300).acquire()


@pytest.mark.slow
def test_a_dead_pid_on_this_host_is_taken_over_however_fresh(engine: Engine) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = f"{socket.gethostname()}:{done.stdout.strip()}"
    put_lock(engine, "dead-run", dead, dt.timedelta(seconds=1))
    with RunLock(engine, CAMPAIGN, "next-run") as lock:
        assert lock.taken_over is not None and lock.taken_over.holder == dead


@pytest.mark.slow
def test_the_heartbeat_keeps_the_lock_fresh(engine: Engine) -> None:
    with RunLock(engine, CAMPAIGN, "run-a", heartbeat_seconds=0.1):
        first = lock_row(engine)
        time.sleep(0.6)
        later = lock_row(engine)
    assert first is not None and later is not None
    assert later["heartbeat_at"] > first["heartbeat_at"]  # type: ignore[operator]
    assert later["acquired_at"] == first["acquired_at"]


@pytest.mark.slow
def test_a_holder_whose_lock_was_taken_over_notices_and_leaves_it_alone(engine: Engine) -> None:
    old = RunLock(engine, CAMPAIGN, "old-run", heartbeat_seconds=0.1)
    old.acquire()
    # stale_after=0: anything not refreshed this very instant is stale
    with RunLock(engine, CAMPAIGN, "new-run", stale_after=0) as new:
        assert new.taken_over is not None and new.taken_over.run_id == "old-run"
        deadline = time.monotonic() + 10
        while not old.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert old.lost
        old.release()  # must not delete the new holder's row
        assert lock_row(engine)["run_id"] == "new-run"  # type: ignore[index]


def test_lock_held_survives_pickling(engine: Engine) -> None:
    import pickle

    with RunLock(engine, CAMPAIGN, "run-a"), pytest.raises(LockHeld) as held:
        RunLock(engine, CAMPAIGN, "run-b").acquire()
    again = pickle.loads(pickle.dumps(held.value))  # noqa: S301 - our own object
    assert str(again) == str(held.value)
