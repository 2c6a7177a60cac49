"""The Prefect API a command talks to.

- ``PREFECT_API_URL`` (environment or Prefect profile): a server of one's own, used as it is.
- ``khaosat serve`` without one: ``local_server()``, a full ``prefect server start`` (scheduler,
  UI) for as long as it serves; a temporary API runs no scheduler, so no run would be created.
- A command that runs once (``run``, ``rerun``, ``publish``, ``demo``) without one:
  ``start_temporary_api()``, the API Prefect would start at the flow's first call, but started
  as a command line when the command begins, so that it boots on another core while the command
  imports its code, and this process never imports Prefect's server code (benchmarks/README.md).

Prefect is imported inside the functions, after ``apply_prefect_defaults``, as the CLI does.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flows.settings import apply_prefect_defaults

#: The port of a local Prefect server (Prefect's usual one) when it is free.
LOCAL_PORT = 4200
#: Seconds to wait for a local Prefect server to answer (it migrates its database first).
LOCAL_STARTUP_SECONDS = 120.0


def configured_url() -> str | None:
    """PREFECT_API_URL as Prefect reads it (environment, then the active profile), or None."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def events_recorded() -> bool:
    """Whether a temporary API would keep or act on Prefect's events: its task-run recorder,
    event persister or triggers are on (``TEMPORARY_API_DEFAULTS`` turns them off)."""
    from prefect.settings import get_current_settings

    services = get_current_settings().server.services
    return any(
        (
            services.task_run_recorder.enabled,
            services.event_persister.enabled,
            services.triggers.enabled,
        )
    )


@contextlib.contextmanager
def local_server() -> Iterator[str]:
    """The configured Prefect API, or a local ``prefect server start`` (with its UI) started and
    stopped around the block."""
    url = configured_url()
    if url:
        yield url
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = LOCAL_PORT if _port_free(LOCAL_PORT) else free_port()
    url = f"http://127.0.0.1:{port}/api"
    server = _start(
        ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
    )
    try:
        _wait_healthy(url, server, LOCAL_STARTUP_SECONDS)
        print(
            f"Started a local Prefect server (UI: http://127.0.0.1:{port}); set PREFECT_API_URL "
            "to use a shared one instead",
            flush=True,
        )
        with temporary_settings({PREFECT_API_URL: url}):
            yield url
    finally:
        _stop(server)


class TemporaryApi:
    """Prefect's temporary API for one command, booting in the background: ``serving()`` waits
    for it, points Prefect at it for the block and stops it afterwards.

    ``process`` is None when a Prefect server of one's own is configured, and then ``serving()``
    changes nothing.
    """

    def __init__(self, process: subprocess.Popen[bytes] | None, url: str | None) -> None:
        self.process = process
        self.url = url

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """The block's flows use this API. Without a server of one's own, nothing keeps their
        events once the temporary API stops, and unless its recording services were turned
        back on none is sent, nor the flow run's heartbeats: a task run's events cost both this
        process and the API CPU time for nothing (benchmarks/README.md).

        If the API does not come up, it is stopped and Prefect starts its own temporary API as
        it would have without this one (and says why, if that fails too).
        """
        if self.process is None:  # a Prefect server of one's own: everything as configured
            yield
            return
        from prefect.events.clients import NullEventsClient
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker
        from prefect.settings import (
            PREFECT_API_URL,
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
            temporary_settings,
        )

        mute = not events_recorded()
        try:
            updates: dict[Any, Any] = {}
            if self._ready():
                updates[PREFECT_API_URL] = self.url
            if mute:
                EventsWorker.set_client_override(NullEventsClient)
                # A heartbeat is an event too, and its thread made the flow's end wait for
                # its next one-second tick.
                updates[PREFECT_FLOWS_HEARTBEAT_FREQUENCY] = None
            with temporary_settings(updates):
                try:
                    yield
                finally:
                    # the run's log lines go before the API does, not at exit to nowhere
                    APILogWorker.drain_all(timeout=10, at_exit=False)
        finally:
            if mute:
                EventsWorker.set_client_override(None)
            _stop(self.process)

    def stop(self) -> None:
        """Stop the API unused: the command ends before running its flow."""
        if self.process is not None:
            _stop(self.process)

    def _ready(self) -> bool:
        assert self.process is not None and self.url is not None  # noqa: S101 - see serving()
        from prefect.settings import get_current_settings

        seconds = get_current_settings().server.ephemeral.startup_timeout_seconds
        try:
            _wait_healthy(self.url, self.process, seconds)
        except RuntimeError:
            _stop(self.process)
            return False
        return True


def start_temporary_api() -> TemporaryApi:
    """For a command that runs once: apply ``apply_prefect_defaults(one_run=True)``, and unless
    a Prefect server of one's own is configured, start the temporary API now without waiting
    for it. Call before importing the flow; run the flow inside ``serving()``."""
    apply_prefect_defaults(one_run=True)
    imported = "prefect.settings" in sys.modules
    if os.environ.get("PREFECT_API_URL") or (imported and configured_url()):
        return TemporaryApi(None, None)  # a server of one's own
    # Started before this process imports Prefect (its settings are slow to import) where it can be:
    # the server then reads the same environment, profile and settings files itself. Once
    # Prefect is imported, settings may have been changed in this process (temporary_settings),
    # so they are passed on, as Prefect's own temporary API does
    # (prefect.server.api.server.SubprocessASGIServer), whose command line this is: the server
    # application without its UI, in its temporary ("ephemeral") mode.
    env = {
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    if imported:
        from prefect.settings import get_current_settings

        env.update(get_current_settings().to_environment_variables(exclude_unset=True))
    port = free_port()
    spec = importlib.util.find_spec("prefect")
    prefect_root = Path(spec.origin if spec and spec.origin else "").parent.parent
    process = _start(
        [
            "uvicorn",
            "--app-dir",
            str(prefect_root),
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ],
        env,
    )
    atexit.register(_stop, process)  # should the command end before ``serving()``
    if not imported and configured_url():  # a profile names a server of one's own after all
        _stop(process)
        return TemporaryApi(None, None)
    return TemporaryApi(process, f"http://127.0.0.1:{port}/api")


def _start(module_args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``python -m MODULE_ARGS`` with this interpreter, the environment plus ``env``; it ends
    by itself should this process be killed (``flows.pipeline.processes``). It has a session
    of its own: Ctrl-C, sent to the terminal's process group, stops the command, which stops
    the server once the run has recorded how it ended (on a server already gone, it could not).
    """
    return subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-m", "flows.pipeline.processes", str(os.getpid()), *module_args],
        env={**os.environ, **env},
        start_new_session=True,
    )


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _wait_healthy(url: str, server: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the local Prefect server exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310 - our http://127.0.0.1 URL
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the local Prefect server did not answer at {url} within {seconds:.0f} s")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
