"""The Prefect API of a command that runs once: a server of one's own, or the temporary API
khaosat starts in the background (real uvicorn subprocesses, real flows against them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.pipeline import prefect_api
from flows.pipeline.prefect_api import TemporaryApi, start_temporary_api
from tests.factories import process_running, wait_for

#: Whole flows, servers and subprocesses: minutes, not seconds.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def one_run_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment ``start_temporary_api`` gives a command that runs once, set before the
    test's Prefect settings are made, and restored after it (the command's process keeps it;
    the test session must not)."""
    from flows.settings import TEMPORARY_API_DEFAULTS

    for name, value in TEMPORARY_API_DEFAULTS.items():
        monkeypatch.setenv(name, os.environ.get(name, value))


@pytest.fixture
def no_prefect_server(tmp_path: Path) -> Iterator[None]:
    """No PREFECT_API_URL (not even the session's test API), and a Prefect home of its own so
    the temporary API's database is fresh (not the session test API's database either)."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_SERVER_DATABASE_CONNECTION_URL,
        temporary_settings,
    )

    with temporary_settings(
        {PREFECT_HOME: tmp_path / "prefect-home"},
        restore_defaults={PREFECT_API_URL, PREFECT_SERVER_DATABASE_CONNECTION_URL},
    ):
        yield


def _override() -> object:
    from prefect.events.worker import EventsWorker

    return EventsWorker._client_override  # noqa: SLF001 - what emit_event consults


def _one_flow_run() -> str:
    """Run a flow with a task on the current API; its final state as the API recorded it."""
    from prefect import flow, get_client, task
    from prefect.cache_policies import NONE

    @task(cache_policy=NONE)
    def double(x: int) -> int:
        return 2 * x

    @flow
    def tiny() -> int:
        return double.submit(21).result()

    state = tiny(return_state=True)
    assert state.result() == 42
    assert state.state_details.flow_run_id is not None
    with get_client(sync_client=True) as client:
        stored = client.read_flow_run(state.state_details.flow_run_id)
    assert stored.state is not None
    return stored.state.type.value


def test_a_prefect_server_of_ones_own_is_used_as_it_is(prefect_harness: None) -> None:
    from prefect.settings import get_current_settings

    configured = get_current_settings().api.url
    api = start_temporary_api()
    assert api.process is None
    with api.serving():
        assert get_current_settings().api.url == configured
        assert _override() is None  # its events are recorded: they are sent


def test_a_server_named_by_a_profile_is_used_and_the_early_api_stopped(tmp_path: Path) -> None:
    # The temporary API starts before Prefect is imported, so a server named only by the active
    # profile is known after the start: the command uses it and stops what it started.
    home = tmp_path / "prefect-home"
    home.mkdir()
    (home / "profiles.toml").write_text(
        'active = "own"\n[profiles.own]\nPREFECT_API_URL = "http://127.0.0.1:9/api"\n',
        encoding="utf-8",
    )
    env = _command_env(home)
    code = (
        "from flows.pipeline import prefect_api\n"
        "started = []\n"
        "real = prefect_api._start\n"
        "prefect_api._start = lambda *a: started.append(real(*a)) or started[-1]\n"
        "api = prefect_api.start_temporary_api()\n"
        "print(api.process is None, [p.poll() is not None for p in started])\n"
    )
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert out.stdout.split("\n")[0] == "True [True]", out.stderr


def test_the_temporary_api_boots_in_the_background_serves_the_block_and_stops(
    no_prefect_server: None,
) -> None:
    from prefect.events.clients import NullEventsClient
    from prefect.settings import get_current_settings

    api = start_temporary_api()
    assert api.process is not None and api.url is not None
    assert api.process.poll() is None  # started, not waited for
    with api.serving():
        assert get_current_settings().api.url == api.url
        with urllib.request.urlopen(f"{api.url}/health", timeout=5) as response:  # noqa: S310
            assert response.status == 200
        # nothing on a temporary API keeps events: none is built or sent, heartbeats included
        assert _override() == (NullEventsClient, ())
        assert get_current_settings().flows.heartbeat_frequency is None
        assert _one_flow_run() == "COMPLETED"
    assert api.process.poll() is not None  # stopped with the block
    assert _override() is None
    assert get_current_settings().api.url is None


def test_events_are_sent_when_the_temporary_api_records_task_runs(
    no_prefect_server: None,
) -> None:
    from prefect.settings import (
        PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED,
        get_current_settings,
        temporary_settings,
    )

    with temporary_settings({PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED: True}):
        api = start_temporary_api()
        assert api.process is not None
        with api.serving():
            assert _override() is None
            assert get_current_settings().flows.heartbeat_frequency == 180  # Prefect's default
            assert _one_flow_run() == "COMPLETED"
    assert api.process.poll() is not None


def test_a_temporary_api_that_does_not_come_up_leaves_prefect_to_start_its_own(
    no_prefect_server: None,
) -> None:
    from prefect.settings import get_current_settings

    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])  # noqa: S603
    api = TemporaryApi(dead, f"http://127.0.0.1:{prefect_api.free_port()}/api")
    with api.serving():
        # as without khaosat's: no URL, so Prefect starts its temporary API at the first call
        assert get_current_settings().api.url is None
    assert dead.poll() == 1


def _command_env(prefect_home: Path) -> dict[str, str]:
    """The environment of a command run by a test: no Prefect API of the session's, a Prefect
    home of its own, and this checkout importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
    env.update(PREFECT_HOME=str(prefect_home), PYTHONPATH=str(ROOT))
    return env


def _command_with_a_temporary_api(tmp_path: Path, then: str) -> tuple[subprocess.Popen[str], int]:
    """A command (``python -c``) that starts the temporary API, then runs ``then``; and the
    server's process id."""
    env = _command_env(tmp_path / "prefect-home")
    code = (
        "from flows.pipeline.prefect_api import start_temporary_api\n"
        "api = start_temporary_api()\n"
        "print(api.process.pid, flush=True)\n"
    ) + then
    command = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert command.stdout is not None
    return command, int(command.stdout.readline())


def test_a_command_that_ends_before_serving_stops_its_api_first(tmp_path: Path) -> None:
    command, server = _command_with_a_temporary_api(
        tmp_path, "raise SystemExit(2)  # as a command failing before its flow would\n"
    )
    assert command.wait(timeout=120) == 2
    assert not process_running(server)  # stopped (and waited for) before the command ended


def test_a_killed_command_leaves_no_api_behind(tmp_path: Path) -> None:
    command, server = _command_with_a_temporary_api(tmp_path, "import time; time.sleep(600)\n")
    time.sleep(2)  # well into its boot
    command.send_signal(signal.SIGKILL)  # no atexit, no finally
    command.wait(timeout=30)
    wait_for(lambda: not process_running(server), 30, "the killed command's API to end")
