"""Operating khaosat as its users do, through the ``khaosat`` command in a subprocess.

- a run SIGKILLed mid-load, then run again, gives exactly the marts of an undisturbed run;
- two runs give identical marts;
- after a corrupt upload is replaced, ``khaosat rerun --failed`` loads it and only it;
- ``khaosat status`` names the failed school and why;
- the same flow on a local Dask cluster (two worker processes) gives the marts of the threads run;
- ``khaosat serve`` registers the nightly deployment with its cron schedule in Asia/Ho_Chi_Minh
  and executes its runs; without PREFECT_API_URL it starts a server that does the scheduling.

The subprocesses talk to the session's Prefect test API (PREFECT_API_URL), so none of them
starts a temporary server of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from openpyxl import Workbook
from sqlalchemy.engine import Engine, make_url

from flows.cli.demo import generate_province
from flows.pipeline import pools
from flows.settings import SettingsError, load_settings
from schemas import load_questionnaires
from tests.factories import (
    KHAOSAT,
    ROOT,
    cli_env,
    ctrl_c,
    descendants,
    khaosat,
    make_province,
    mart_tables,
    process_running,
    wait_for,
)
from warehouse import tables as t
from warehouse.db import connect

#: Whole flows, servers and subprocesses: minutes, not seconds.
pytestmark = pytest.mark.slow


def count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar_one())


@pytest.fixture
def second_postgres_url(postgres_url: str) -> Iterator[str]:
    """Another empty database on the session's PostgreSQL server (for a side-by-side run)."""
    name = f"khaosat_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        make_url(postgres_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def two_warehouses(
    request: pytest.FixtureRequest, tmp_path: Path, prefect_harness: None
) -> tuple[str, str]:
    """URLs of two empty warehouses on one backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'killed.sqlite'}", f"sqlite:///{tmp_path / 'calm.sqlite'}"
    return (
        str(request.getfixturevalue("fresh_postgres_url")),
        str(request.getfixturevalue("second_postgres_url")),
    )


# -- a run killed mid-load ---------------------------------------------------------------------


def test_a_sigkilled_run_then_a_new_run_gives_the_marts_of_an_undisturbed_run(
    tmp_path: Path, two_warehouses: tuple[str, str]
) -> None:
    killed_url, calm_url = two_warehouses
    killed = generate_province(tmp_path / "killed")
    calm_dir = tmp_path / "calm"
    shutil.copytree(killed.parent, calm_dir)  # copy2: same bytes, same modified times
    calm = calm_dir / killed.name

    # The undisturbed province, run twice: a second night changes no figure.
    first = khaosat("run", "--config", str(calm), KHAOSAT_WAREHOUSE_URL=calm_url)
    assert first.returncode == 1, first.stdout + first.stderr  # the demo has broken files
    calm_engine = connect(calm_url)
    expected = mart_tables(calm_engine)
    assert expected["mart_school_dimension"] and expected["mart_completeness"]
    again = khaosat("run", "--config", str(calm), KHAOSAT_WAREHOUSE_URL=calm_url)
    assert again.returncode == 1, again.stdout + again.stderr
    assert mart_tables(calm_engine) == expected
    n_answers = count(calm_engine, "SELECT COUNT(*) FROM answer")

    # The same province, killed once some sources are loaded (two at a time, each pair after
    # the next pair is ingested, so the kill lands between loads with most still to do), then
    # run again.
    env = cli_env(
        KHAOSAT_WAREHOUSE_URL=killed_url,
        KHAOSAT_RUN__CONCURRENCY="1",
        KHAOSAT_RUN__BATCH_SOURCES="2",
    )
    proc = subprocess.Popen(
        [str(KHAOSAT), "run", "--config", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    engine = connect(killed_url)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                loaded = count(engine, "SELECT COUNT(*) FROM load_ledger WHERE status = 'loaded'")
            except sa.exc.DBAPIError:  # tables not created yet
                loaded = 0
            if loaded >= 3:
                break
            time.sleep(0.02)
        helpers = descendants(proc.pid)  # the forkserver, the parse and load processes
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    # Nothing the killed run started outlives it: its parse and load processes end by
    # themselves (the forkserver with them), not only when their pool is shut down.
    wait_for(
        lambda: not any(process_running(pid) for pid in helpers), 30, "the run's processes to end"
    )
    with engine.connect() as conn:
        status = conn.execute(sa.select(t.run.c.status)).scalar_one()
    n_loaded = count(engine, "SELECT COUNT(*) FROM load_ledger WHERE status = 'loaded'")
    assert status == "running" and 3 <= n_loaded < 32  # killed mid-run, most sources not loaded

    rerun = khaosat("run", "--config", str(killed), KHAOSAT_WAREHOUSE_URL=killed_url)
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr
    assert mart_tables(engine) == expected
    assert count(engine, "SELECT COUNT(*) FROM answer") == n_answers  # nothing twice
    with engine.connect() as conn:
        runs = dict(conn.execute(sa.select(t.run.c.run_id, t.run.c.status)).all())
    assert sorted(runs.values()) == ["failed", "partial"]  # the killed run is closed as failed
    assert count(engine, "SELECT COUNT(*) FROM run_lock") == 0
    engine.dispose()
    calm_engine.dispose()


# -- a data officer's morning: status, fix, rerun --failed -------------------------------------


def write_good_cmhs_thcs(path: Path) -> None:
    """A readable CMHS_THCS submission (three parents, every Likert item answered)."""
    q = load_questionnaires()["CMHS_THCS"]
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Câu trả lời"
    items = [i for i in q.items if i.kind in ("likert", "percent")]
    ws.append(["Dấu thời gian", *[i.text for i in items]])
    for n, score in enumerate((4, 5, 3)):
        answers = [80 if i.kind == "percent" else score for i in items]
        ws.append([dt.datetime(2024, 10, 10 + n, 9, 0), *answers])
    wb.save(path)
    stamp = dt.datetime(2024, 10, 24, 17, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    os.utime(path, (stamp.timestamp(), stamp.timestamp()))


def test_status_names_the_failure_and_rerun_failed_loads_the_fixed_file_only(
    tmp_path: Path, prefect_harness: None
) -> None:
    config = make_province(tmp_path)
    first = khaosat("run", "--config", str(config))
    assert first.returncode == 1, first.stdout + first.stderr

    shown = khaosat("status", "--config", str(config), COLUMNS="250")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    failed_line = next(line for line in shown.stdout.splitlines() if " S5 " in line)
    assert "failed" in failed_line and "Trường THCS E" in failed_line
    settings = load_settings(config, env={})
    engine = connect(settings.warehouse_url)
    with engine.connect() as conn:
        reason = conn.execute(
            sa.select(t.load_ledger.c.message).where(t.load_ledger.c.school_code == "S5")
        ).scalar_one()
    assert reason.removeprefix("S5 submissions/S5_cmhs.xlsx: ") in failed_line
    assert f"fix the file, then: khaosat rerun --failed --config {config}" in shown.stdout

    write_good_cmhs_thcs(tmp_path / "submissions" / "S5_cmhs.xlsx")
    rerun = khaosat("rerun", "--failed", "--config", str(config))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    with engine.connect() as conn:
        last = conn.execute(
            sa.select(t.run.c.run_id).order_by(t.run.c.started_at.desc()).limit(1)
        ).scalar_one()
        ledger = conn.execute(
            sa.select(t.load_ledger.c.school_code, t.load_ledger.c.status).where(
                t.load_ledger.c.run_id == last
            )
        ).all()
    assert [tuple(r) for r in ledger] == [("S5", "loaded")]
    assert (
        count(
            engine,
            "SELECT COUNT(*) FROM response r JOIN source s "
            "ON s.source_id = r.source_id WHERE s.school_code = 'S5'",
        )
        == 3
    )

    after = khaosat("status", "--config", str(config), "--json")
    states = {
        (s["school_code"], s["questionnaire"]): s["state"]
        for s in json.loads(after.stdout)["sources"]
    }
    assert states[("S5", "CMHS_THCS")] == "loaded" and "failed" not in states.values()
    engine.dispose()


# -- beyond one machine: a Dask cluster --------------------------------------------------------


def test_task_runner_from_settings(tmp_path: Path) -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    config = make_province(tmp_path)
    threads = pools.task_runner(load_settings(config, env={"KHAOSAT_RUN__CONCURRENCY": "7"}))
    assert isinstance(threads, ThreadPoolTaskRunner) and threads._max_workers == 7
    dask_env = {"KHAOSAT_RUN__TASK_RUNNER": "dask", "KHAOSAT_RUN__DASK_ADDRESS": "tcp://h:8786"}
    dask = pools.task_runner(load_settings(config, env=dask_env))
    assert isinstance(dask, DaskTaskRunner) and dask.address == "tcp://h:8786"
    with pytest.raises(SettingsError, match="run.dask_address"):
        pools.task_runner(load_settings(config, env={"KHAOSAT_RUN__TASK_RUNNER": "dask"}))


def test_a_local_dask_cluster_gives_the_marts_of_the_threads_run(
    tmp_path: Path, prefect_harness: None
) -> None:
    from distributed import LocalCluster

    on_threads = make_province(tmp_path / "threads")
    on_dask = make_province(tmp_path / "dask")
    done = khaosat("run", "--config", str(on_threads))
    assert done.returncode == 1, done.stdout + done.stderr

    # Worker processes, not threads: every task argument really crosses a process boundary.
    with LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
    ) as cluster:
        done = khaosat(
            "run",
            "--config",
            str(on_dask),
            KHAOSAT_RUN__TASK_RUNNER="dask",
            KHAOSAT_RUN__DASK_ADDRESS=cluster.scheduler_address,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert len(cluster.scheduler_info["workers"]) == 2
        # the tasks really went through this cluster's scheduler, not the default threads
        assert cluster.scheduler.transition_counter > 0  # type: ignore[union-attr]

    threads_engine = connect(load_settings(on_threads, env={}).warehouse_url)
    dask_engine = connect(load_settings(on_dask, env={}).warehouse_url)
    assert mart_tables(dask_engine) == mart_tables(threads_engine)
    assert count(dask_engine, "SELECT COUNT(*) FROM answer") == count(
        threads_engine, "SELECT COUNT(*) FROM answer"
    )
    threads_engine.dispose()
    dask_engine.dispose()


# -- khaosat serve -----------------------------------------------------------------------------


def test_build_deployment_schedules_the_nightly_flow_at_0130_in_vietnam(tmp_path: Path) -> None:
    from flows.pipeline.deploy import build_deployment

    config = make_province(tmp_path)
    deployment = build_deployment(load_settings(config, env={}))
    assert (deployment.flow_name, deployment.name) == ("khaosat-nightly", "T-2024")
    [schedule] = deployment.schedules
    assert schedule.schedule.cron == "30 1 * * *"
    assert schedule.schedule.timezone == "Asia/Ho_Chi_Minh"
    assert deployment.parameters == {"config": str(config)}
    assert deployment.concurrency_limit == 1
    assert {"khaosat", "T-2024", "TM"} <= set(deployment.tags)

    custom = load_settings(
        config, env={"KHAOSAT_RUN__CRON": "0 23 * * 1-5", "KHAOSAT_RUN__TIMEZONE": "Asia/Bangkok"}
    )
    [schedule] = build_deployment(custom).schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 23 * * 1-5", "Asia/Bangkok")
    # 01:30 in Vietnam is 18:30 UTC the day before
    [nightly] = build_deployment(load_settings(config, env={})).schedules
    when = next_runs(nightly.schedule, dt.datetime(2024, 11, 4, 12, 0, tzinfo=dt.UTC))
    assert when == dt.datetime(2024, 11, 4, 18, 30, tzinfo=dt.UTC)


def next_runs(schedule: Any, after: dt.datetime) -> dt.datetime:
    """The schedule's first run after ``after`` as the Prefect server computes it, in UTC."""
    import asyncio

    from prefect.server.schemas.schedules import CronSchedule

    server_side = CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
    [first] = asyncio.run(server_side.get_dates(n=1, start=after))
    return first.astimezone(dt.UTC)  # type: ignore[no-any-return]


def test_khaosat_serve_registers_the_deployment_and_runs_it(
    tmp_path: Path, prefect_harness: None
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    config = make_province(tmp_path)
    proc = subprocess.Popen(
        [str(KHAOSAT), "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(),
        cwd=ROOT,
    )
    try:

        def registered() -> Any:
            with get_client(sync_client=True) as client:
                try:
                    return client.read_deployment_by_name("khaosat-nightly/T-2024")
                except Exception:  # noqa: BLE001 - not there yet
                    return None

        deployment = wait_for(registered, 120, "the deployment to be registered")
        [schedule] = deployment.schedules
        assert schedule.schedule.cron == "30 1 * * *"
        assert schedule.schedule.timezone == "Asia/Ho_Chi_Minh"
        assert deployment.parameters == {"config": str(config)}

        # What the scheduler would do at 01:30: create a run; the served process executes it.
        flow_run = run_deployment("khaosat-nightly/T-2024", timeout=300)
        assert flow_run.state is not None and flow_run.state.is_failed(), flow_run.state
        assert flow_run.state.message == "1/6 nguồn lỗi; 1/6 nguồn chưa nộp"  # S5, S6
    finally:
        output = ctrl_c(proc)
    engine = connect(load_settings(config, env={}).warehouse_url)
    assert count(engine, "SELECT COUNT(*) FROM load_ledger WHERE status = 'loaded'") == 4
    with engine.connect() as conn:
        assert conn.execute(sa.select(t.run.c.run_id)).scalar_one() == str(flow_run.id)
    engine.dispose()
    assert "Serving khaosat-nightly/T-2024 on 30 1 * * * (Asia/Ho_Chi_Minh)" in output


def _runs_a_night(pid: int) -> bool:
    """Whether a process below ``pid`` is a flow run's engine (Prefect's runner spawns one)."""
    for child in descendants(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                return True
        except OSError:  # ended while listed
            continue
    return False


def test_khaosat_serve_without_a_prefect_api_starts_a_server_that_schedules(
    tmp_path: Path,
) -> None:
    """The default, embedded path: no PREFECT_API_URL. A run every minute must really happen,
    and its Failed night (S5's file is corrupt) ends its process with no traceback."""
    config = make_province(tmp_path)
    env = cli_env(
        api=False, KHAOSAT_RUN__CRON="* * * * *", PREFECT_HOME=str(tmp_path / "prefect-home")
    )
    said = tmp_path / "serve.out"
    with said.open("w") as out:
        proc = subprocess.Popen(
            [str(KHAOSAT), "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
    engine = connect(load_settings(config, env={}).warehouse_url)

    def night_over() -> bool:
        # the run row is finished before the engine hands the run's result to Prefect, where
        # a traceback would come from: wait for the engine's process to be gone too
        try:
            done = count(engine, "SELECT COUNT(*) FROM run WHERE finished_at IS NOT NULL")
        except sa.exc.DBAPIError:
            return False
        return bool(done) and not _runs_a_night(proc.pid)

    try:
        wait_for(night_over, 240, "a scheduled run to finish and its process to end")
    except AssertionError as exc:
        ctrl_c(proc)
        raise AssertionError(f"{exc}; khaosat serve said:\n{said.read_text()[-4000:]}") from None
    finally:
        engine.dispose()
    ctrl_c(proc)
    output = said.read_text()
    assert "Started a local Prefect server" in output
    assert "T-2024: 1/6 nguồn lỗi" in output  # the night's own line, on the runner's console
    assert "Traceback" not in output, output[-4000:]


def test_khaosat_run_without_a_prefect_api_records_the_flow_run_on_its_temporary_api(
    tmp_path: Path,
) -> None:
    """The default for one run: no PREFECT_API_URL. The temporary API khaosat starts serves the
    whole run, records it, and is gone when the command returns (its output pipe closes)."""
    config = make_province(tmp_path)
    home = tmp_path / "prefect-home"
    done = khaosat("run", "--config", str(config), api=False, PREFECT_HOME=str(home))
    assert done.returncode == 1, done.stdout + done.stderr  # S2's file is corrupt
    assert "Traceback" not in done.stdout + done.stderr
    engine = connect(load_settings(config, env={}).warehouse_url)
    assert count(engine, "SELECT COUNT(*) FROM load_ledger WHERE status = 'loaded'") == 4
    with engine.connect() as conn:
        run_id = conn.execute(sa.select(t.run.c.run_id)).scalar_one()
    engine.dispose()
    prefect_db = sa.create_engine(f"sqlite:///{home / 'prefect.db'}")
    with prefect_db.connect() as conn:
        flow_run = conn.execute(
            sa.text("SELECT state_type FROM flow_run WHERE id = :id"), {"id": run_id}
        ).one()
    prefect_db.dispose()
    assert flow_run.state_type == "FAILED"  # the night's verdict: S5 failed


# -- production: prefect.yaml on a work pool, a worker runs a province -------------------------


def prefect_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``prefect ARGS`` from this venv against the test API."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("prefect")), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(**env),
        cwd=ROOT,
    )


def test_prefect_yaml_deploys_every_province_to_the_work_pool_and_a_worker_runs_one(
    tmp_path: Path, prefect_harness: None
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    provinces = tmp_path / "provinces"
    configs = {name: make_province(provinces / name) for name in ("ha-noi", "hai-phong")}
    env = {"KHAOSAT_APP_DIR": str(ROOT), "KHAOSAT_PROVINCES": str(provinces)}

    created = prefect_cli("work-pool", "create", "khaosat", "--type", "process")
    assert created.returncode == 0, created.stdout + created.stderr
    deployed = prefect_cli(
        "--no-prompt", "deploy", "--all", "--prefect-file", str(ROOT / "prefect.yaml"), **env
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    with get_client(sync_client=True) as client:
        for name, config in configs.items():
            d = client.read_deployment_by_name(f"khaosat-province/{name}")
            [schedule] = d.schedules
            assert (schedule.schedule.cron, schedule.schedule.timezone) == (
                "30 1 * * *",
                "Asia/Ho_Chi_Minh",
            )
            assert d.parameters == {"config": str(config)}
            assert d.work_pool_name == "khaosat" and d.entrypoint == (
                "flows/pipeline/nightly.py:province_night"
            )

    flow_run = run_deployment("khaosat-province/ha-noi", timeout=0)
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("prefect")),
            "worker",
            "start",
            "--pool",
            "khaosat",
            "--type",
            "process",
            "--install-policy",
            "never",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(**env),
        cwd=tmp_path,  # the pull step, not the worker's directory, finds the code
    )
    try:

        def finished() -> Any:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(flow_run.id).state
            return state if state is not None and state.is_final() else None

        try:
            state = wait_for(finished, 300, "the worker to run the province")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the worker said:\n{ctrl_c(worker)[-4000:]}") from None
    finally:
        output = ctrl_c(worker)
    assert state.is_failed(), f"{state}\n{output[-4000:]}"
    assert state.message == "1/6 nguồn lỗi; 1/6 nguồn chưa nộp"  # the night's, not a crash
    hanoi = connect(load_settings(configs["ha-noi"], env={}).warehouse_url)
    assert count(hanoi, "SELECT COUNT(*) FROM load_ledger WHERE status = 'loaded'") == 4
    hanoi.dispose()
    assert not (provinces / "hai-phong" / "khaosat.sqlite").exists()  # only the one asked for


def test_one_run_leaves_task_run_recording_to_a_prefect_server_of_ones_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.settings import TEMPORARY_API_DEFAULTS, apply_prefect_defaults

    for name in TEMPORARY_API_DEFAULTS:  # set then delete: monkeypatch restores the original
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    apply_prefect_defaults()  # khaosat serve: its local server keeps every service
    assert not any(name in os.environ for name in TEMPORARY_API_DEFAULTS)

    recorder = "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED"
    monkeypatch.setenv(recorder, "true")  # the officer's own choice wins
    apply_prefect_defaults(one_run=True)
    assert os.environ[recorder] == "true"
    assert os.environ["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED"] == "false"
    assert os.environ["PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED"] == "false"


#: A command's last moments: a pool with a live process, an atexit handler, buffered output.
LEAVING = """
import atexit, multiprocessing, os, sys
from concurrent.futures import ProcessPoolExecutor
from flows.pipeline.processes import leave

if __name__ == "__main__":
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"))
    print(pool.submit(os.getpid).result())
    atexit.register(print, "atexit handler ran")
    sys.stdout.write("buffered, no newline")
    leave(sys.argv[1] if sys.argv[1].isalpha() else int(sys.argv[1]))
"""


@pytest.mark.parametrize(("code", "returncode"), [("0", 0), ("4", 4), ("message", 1)])
def test_leaving_skips_only_the_teardown(tmp_path: Path, code: str, returncode: int) -> None:
    """``flows.cli.leave``, how the ``khaosat`` command exits: its code, every byte of its
    output, its atexit handlers, and no pool process left behind."""
    script = tmp_path / "leaving.py"
    script.write_text(LEAVING, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), code],
        capture_output=True,
        text=True,
        env=cli_env(api=False),
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == returncode, done.stderr
    worker, rest = done.stdout.split("\n", 1)
    assert rest == "buffered, no newline" + "atexit handler ran\n"
    assert not process_running(int(worker))  # the pool was shut down, not abandoned
    assert done.stderr == ("message\n" if code == "message" else "")
