"""``khaosat serve``: the nightly flow as a Prefect deployment on a cron schedule.

``build_deployment(settings)`` makes the deployment: the nightly flow with the configured task
runner, one deployment per campaign (named after the campaign id), a Cron schedule
(``run.cron``, default ``30 1 * * *``) in ``run.timezone`` (default Asia/Ho_Chi_Minh, so 01:30
is 01:30 in Vietnam whatever the server's clock zone), and the config path as its parameter.
``serve(settings)`` registers it with a Prefect API and executes its runs in this process's
children until interrupted.

The API is ``PREFECT_API_URL`` if set (a shared ``prefect server start``, the production
setup). Otherwise a local Prefect server is started for as long as ``khaosat serve`` runs:
Prefect's own temporary API would not do, because it runs without the scheduler service and
a schedule on it would never create a run.

Prefect is imported inside the functions, after ``apply_prefect_defaults``, as the CLI does.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from flows.settings import Settings, SettingsError, apply_prefect_defaults, load_settings

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

#: The port of a local Prefect server (Prefect's usual one) when it is free.
LOCAL_PORT = 4200
#: Seconds to wait for a local Prefect server to answer (it migrates its database first).
LOCAL_STARTUP_SECONDS = 120.0


def deployment_name(settings: Settings) -> str:
    """The deployment's name: the campaign id (``khaosat-nightly/<campaign id>`` in Prefect)."""
    return settings.campaign.id


def build_deployment(settings: Settings) -> RunnerDeployment:
    """The nightly deployment of ``settings``'s campaign, not yet registered anywhere.

    Runs ``nightly(config=<settings.config_path>)`` on ``Cron(run.cron, timezone=run.timezone)``
    with the task runner ``run.task_runner`` asks for. At most one run of it at a time
    (``concurrency_limit=1``): a night that overruns makes the next scheduled run wait rather
    than meet the run lock.
    """
    apply_prefect_defaults()
    from prefect.schedules import Cron

    from flows import nightly, runners

    c = settings.campaign
    flow = nightly.nightly.with_options(task_runner=runners.task_runner(settings))
    # to_deployment dispatches on the caller being async; called from sync code it returns the
    # deployment itself, which its annotation cannot say.
    return cast(
        "RunnerDeployment",
        flow.to_deployment(
            name=deployment_name(settings),
            schedules=[Cron(settings.run.cron, timezone=settings.run.timezone)],
            parameters={"config": str(settings.config_path)},
            description=f"Nightly consolidation of campaign {c.id} ({c.name}), {c.school_year}.",
            tags=["khaosat", c.id, c.province_code],
            concurrency_limit=1,
        ),
    )


def serve(settings: Settings) -> None:
    """Register the nightly deployment and run it on schedule until interrupted (Ctrl-C).

    Uses the Prefect API at PREFECT_API_URL, or starts a local Prefect server (with its UI on
    127.0.0.1) for as long as this runs. On shutdown Prefect pauses the schedule (its default),
    so no runs pile up while nothing is there to execute them.
    """
    apply_prefect_defaults()
    deployment = build_deployment(settings)
    with _prefect_api() as url:
        from prefect import serve as prefect_serve

        print(
            f"Serving {deployment.flow_name}/{deployment.name} on {settings.run.cron} "
            f"({settings.run.timezone}) against the Prefect API at {url}",
            flush=True,
        )
        prefect_serve(deployment)


def _configured_api_url() -> str | None:
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


@contextlib.contextmanager
def _prefect_api() -> Iterator[str]:
    """The configured Prefect API, or a local server started (and stopped) around the block."""
    url = _configured_api_url()
    if url:
        yield url
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = LOCAL_PORT if _port_free(LOCAL_PORT) else _free_port()
    url = f"http://127.0.0.1:{port}/api"
    server = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
    )
    try:
        _wait_healthy(url, server)
        print(
            f"Started a local Prefect server (UI: http://127.0.0.1:{port}); set PREFECT_API_URL "
            "to use a shared one instead",
            flush=True,
        )
        with temporary_settings({PREFECT_API_URL: url}):
            yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + LOCAL_STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the local Prefect server exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310 - our http://127.0.0.1 URL
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(
        f"the local Prefect server did not answer at {url} within {LOCAL_STARTUP_SECONDS:.0f} s"
    )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Path to khaosat.yaml.", show_default=True)
    ] = Path("khaosat.yaml"),
) -> None:
    """Serve the nightly deployment: run the campaign on its cron schedule until Ctrl-C.

    Schedule from run.cron and run.timezone (default 01:30, Asia/Ho_Chi_Minh). Uses the Prefect
    server at PREFECT_API_URL, or starts a local one (UI on http://127.0.0.1:4200).
    """
    try:
        settings = load_settings(config)
        apply_prefect_defaults()
        serve(settings)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
