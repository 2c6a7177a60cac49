"""What a data officer sees of a night in Prefect's UI (``flows/pipeline/prefect_ui.py``).

The first tests check the names, states and pages a night gets, as plain values. The slow one
starts a real ``prefect server start`` (with its UI), runs a night of the test province against
it (S5's file is corrupt, S6's absent), and asks the API with Prefect's client what the
officer's pages would show: the run named for the campaign and night, Failed with the count,
the tasks named for school and questionnaire, the run's log lines, both artifacts. Then it
fixes S5's file and asks ``khaosat serve``'s deployment for a custom run with
``failed_only=true``, as the officer would click it: the fixed file is loaded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flows.settings import apply_prefect_defaults, load_settings

apply_prefect_defaults()

from flows.pipeline import prefect_ui  # noqa: E402 - Prefect is imported once its defaults are set
from schemas.records import RunSummary, SourceOutcome  # noqa: E402
from tests.factories import (  # noqa: E402
    KHAOSAT,
    ROOT,
    cli_env,
    ctrl_c,
    fetched,
    khaosat,
    make_province,
    src,
    wait_for,
)
from tests.pipeline.test_operations import write_good_cmhs_thcs  # noqa: E402
from warehouse import tables as t  # noqa: E402
from warehouse.db import connect  # noqa: E402

PREFECT = Path(sys.executable).with_name("prefect")


def night(*statuses: str) -> RunSummary:
    """A summary with one source per status, S1 onwards."""
    outcomes = [
        SourceOutcome(
            src(f"S{n}", "CMHS_TH"),
            status,
            message=f"S{n} S{n}_CMHS_TH.xlsx: why" if status in ("failed", "absent") else "",
            n_responses=7 if status == "loaded" else 0,
        )
        for n, status in enumerate(statuses, start=1)
    ]
    return RunSummary(run_id="r", campaign_id="T-2024", outcomes=outcomes)


# -- the names, states and pages, as values -----------------------------------------------------


def test_a_night_ends_in_the_state_its_sources_earned_and_still_gives_its_summary() -> None:
    failed = night("loaded", "failed", "absent", "unchanged")
    state = prefect_ui.verdict(failed, failed)
    assert state.is_failed() and state.message == "1/4 nguồn lỗi; 1/4 nguồn chưa nộp"
    assert prefect_ui.summary_of(state) is failed and prefect_ui.is_verdict(state)

    absent = night("loaded", "absent")
    state = prefect_ui.verdict(absent, absent.exit_code)
    assert state.is_completed() and state.name == "Thiếu bài nộp"
    assert state.message == "1/2 nguồn chưa nộp" and prefect_ui.summary_of(state) == 3

    stopped = night("loaded", "stopped")
    assert prefect_ui.verdict(stopped, 5).is_failed()

    clean = night("loaded", "unchanged")
    state = prefect_ui.verdict(clean, clean)
    assert state.is_completed() and state.name == "Completed"
    assert state.message == "2/2 nguồn đã nạp hoặc không đổi"


def test_a_failed_nights_result_raised_by_a_deployments_engine_is_the_verdict() -> None:
    """A served or worker run's engine asks for the result and raises a failed run's data: it
    must be an exception (not the summary, which Prefect cannot raise), and it logs quietly."""
    import logging

    failed = night("loaded", "failed")
    state = prefect_ui.verdict(failed, failed)
    with pytest.raises(prefect_ui.NightFailed) as raised:
        state.result()
    assert raised.value.value is failed and str(raised.value) == "1/2 nguồn lỗi"

    logger = logging.getLogger("prefect.flow_runs")
    prefect_ui.quiet_verdicts()
    installed = list(logger.filters)
    prefect_ui.quiet_verdicts()  # once is enough, twice changes nothing
    assert logger.filters == installed
    record = logger.makeRecord(
        logger.name, logging.ERROR, __file__, 1, "Engine execution exited", (), None
    )
    assert logger.filter(record)
    record.exc_info = (prefect_ui.NightFailed, raised.value, None)
    assert not logger.filter(record)


def test_a_run_that_stopped_is_not_a_verdict_and_its_exception_comes_back() -> None:
    from prefect.states import Failed

    state = Failed(message="Flow run encountered an exception: LockHeld: …", data=KeyError("x"))
    assert not prefect_ui.is_verdict(state)
    with pytest.raises(KeyError):
        prefect_ui.summary_of(state)


def test_runs_and_tasks_are_named_for_campaign_school_and_questionnaire(tmp_path: Path) -> None:
    settings = load_settings(make_province(tmp_path), env={})
    assert prefect_ui.night_name({"failed_only": True}, settings, "T-2024") == (
        "T-2024 · rerun failed"
    )
    assert prefect_ui.night_name({"school": "S5"}, settings, "T-2024") == "T-2024 · rerun S5"
    assert (
        prefect_ui.night_name({"school": "S3", "questionnaire": "HS_THPT"}, settings, "T-2024")
        == "T-2024 · rerun S3 HS_THPT"
    )
    # outside a flow run, "the night" is now, in the campaign's time zone
    before = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).replace(second=0, microsecond=0)
    named = prefect_ui.night_name({}, settings, "T-2024")
    after = dt.datetime.now(dt.timezone(dt.timedelta(hours=7)))
    assert re.fullmatch(r"T-2024 · \d{4}-\d\d-\d\d \d\d:\d\d", named), named
    when = dt.datetime.strptime(named[9:], "%Y-%m-%d %H:%M").replace(tzinfo=before.tzinfo)
    assert before <= when <= after

    s5 = src("S5", "CMHS_THCS")
    assert prefect_ui.ingest_name({"source": s5}) == "S5 · CMHS_THCS"
    assert prefect_ui.validate_name({"code": "CMHS_TH", "parsed": [1] * 37}) == (
        "validate CMHS_TH (37)"
    )

    got = fetched("f" * 64, s5)
    assert prefect_ui.load_batch_name({"checked": [(got, None)] * 2}) == "load CMHS_THCS (2)"
    assert prefect_ui.load_source_name({"fetched": got}) == "load S5 · CMHS_THCS"


def test_the_nights_pages_put_failed_sources_first_under_a_key_per_campaign(
    tmp_path: Path,
) -> None:
    assert prefect_ui.artifact_key("HN-2024", "sources") == "khaosat-hn-2024-sources"
    assert prefect_ui.artifact_key("HN.2024_b", "summary") == "khaosat-hn-2024-b-summary"

    summary = night("loaded", "absent", "failed", "unchanged")
    rows = prefect_ui.source_table(summary)
    assert [(r["school"], r["status"], r["responses"]) for r in rows] == [
        ("S3", "failed", None),
        ("S2", "absent", None),
        ("S1", "loaded", 7),
        ("S4", "unchanged", None),
    ]
    assert rows[0]["reason"] == "S3 S3_CMHS_TH.xlsx: why"

    # a file no school could be told from (school *) is not a Markdown bullet in the UI
    unplaced = RunSummary(
        run_id="r",
        campaign_id="T-2024",
        outcomes=[
            SourceOutcome(
                replace(summary.outcomes[0].source, school_code="*"),
                "failed",
                message="* submissions/X.csv: tệp không khớp trường nào: X.csv",
            )
        ],
    )
    [row] = prefect_ui.source_table(unplaced)
    assert row["school"] == "\\*" and row["reason"].startswith("\\* submissions/X.csv: ")

    settings = load_settings(make_province(tmp_path), env={})
    md = prefect_ui.summary_markdown(settings, summary)
    assert "**1/4 nguồn lỗi; 1/4 nguồn chưa nộp**" in md
    assert f"khaosat rerun --failed --config {settings.config_path}" in md
    assert "`failed_only` = true" in md and str(settings.output) in md


def test_the_run_page_gets_the_flow_runs_lines_the_console_what_it_got_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "PREFECT_LOGGING_LEVEL",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL",
        "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL",
    ):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    apply_prefect_defaults()
    assert os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] == "WARNING"
    assert os.environ["PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL"] == "INFO"
    assert "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL" not in os.environ  # none per source


# -- against a real Prefect server, with its UI --------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as got:  # noqa: S310 - local
            return bool(got.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``prefect server start`` (API, services and UI) on a free port; its API URL."""
    home = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    with (home / "server.log").open("w") as log:
        proc = subprocess.Popen(
            [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=cli_env(api=False, PREFECT_HOME=str(home)),
            cwd=home,
        )
        try:
            wait_for(lambda: _healthy(url) or proc.poll() is not None, 180, "prefect server")
            assert proc.poll() is None, (home / "server.log").read_text()[-4000:]
            yield url
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _task_run_names(client: Any, flow_run_id: uuid.UUID) -> set[str]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs = client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    )
    return {r.name for r in runs}


def _log_lines(client: Any, flow_run_id: uuid.UUID) -> list[str]:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    logs = client.read_logs(
        log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
    )
    return [log.message for log in logs]


def _latest_artifact(client: Any, key: str) -> Any:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    [artifact] = client.read_latest_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
    )
    return artifact


def _last_run_id(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                sa.select(t.run.c.run_id).order_by(t.run.c.started_at.desc()).limit(1)
            ).scalar_one()
        )


@pytest.mark.slow
def test_a_night_with_a_corrupt_file_tells_the_truth_on_prefects_ui_and_a_custom_run_fixes_it(
    tmp_path: Path, prefect_server: str
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    config = make_province(tmp_path)
    done = khaosat("run", "--config", str(config), api=False, PREFECT_API_URL=prefect_server)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out  # as README's table says: S5's file is corrupt
    assert "Traceback" not in out and "Error logging to API" not in out, out
    assert "nguồn lỗi" not in out  # the run page's lines stay off the console

    engine = connect(load_settings(config, env={}).warehouse_url)
    run_id = uuid.UUID(_last_run_id(engine))
    with (
        temporary_settings({PREFECT_API_URL: prefect_server}),
        get_client(sync_client=True) as client,
    ):
        flow_run = client.read_flow_run(run_id)
        assert re.fullmatch(r"T-2024 · \d{4}-\d\d-\d\d \d\d:\d\d", flow_run.name), flow_run.name
        assert flow_run.state is not None and flow_run.state.is_failed()
        assert flow_run.state.message == "1/6 nguồn lỗi; 1/6 nguồn chưa nộp"

        # task runs arrive by events: the server records them a moment later
        expected = {"S1 · CMHS_TH", "S5 · CMHS_THCS", "S3 · HS_THPT", "marts", "workbooks"}
        names = wait_for(
            lambda: (n := _task_run_names(client, run_id)) >= expected and n,
            60,
            f"task runs {expected}",
        )
        assert {"validate CMHS_TH (2)", "load CMHS_TH (2)"} <= names, names  # S1 and S2
        assert not any(re.fullmatch(r"ingest-\w+", n) for n in names), names

        lines = _log_lines(client, run_id)
        [s5] = [line for line in lines if "S5 submissions/S5_cmhs.xlsx" in line]
        assert s5.startswith("failed CMHS_THCS: S5 submissions/S5_cmhs.xlsx: "), s5
        assert "T-2024: 1/6 nguồn lỗi; 1/6 nguồn chưa nộp" in lines, lines

        table = _latest_artifact(client, "khaosat-t-2024-sources")
        assert table.type == "table" and table.flow_run_id == run_id
        rows = json.loads(table.data)
        assert (rows[0]["school"], rows[0]["status"]) == ("S5", "failed")
        assert rows[0]["reason"] == s5.removeprefix("failed CMHS_THCS: ")
        assert {r["school"]: r["status"] for r in rows}["S6"] == "absent"
        markdown = _latest_artifact(client, "khaosat-t-2024-summary")
        assert markdown.type == "markdown"
        assert f"khaosat rerun --failed --config {config}" in markdown.data

    # The morning after: S5 sends a good file; the officer clicks "Custom run", failed_only.
    write_good_cmhs_thcs(tmp_path / "submissions" / "S5_cmhs.xlsx")
    serve = subprocess.Popen(
        [str(KHAOSAT), "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(api=False, PREFECT_API_URL=prefect_server),
        cwd=ROOT,
    )
    try:
        with (
            temporary_settings({PREFECT_API_URL: prefect_server}),
            get_client(sync_client=True) as client,
        ):

            def registered() -> Any:
                try:
                    return client.read_deployment_by_name("khaosat-nightly/T-2024")
                except Exception:  # noqa: BLE001 - not there yet
                    return None

            deployment = wait_for(registered, 180, "the deployment to be registered")
            schema = deployment.parameter_openapi_schema["properties"]
            assert schema["failed_only"]["type"] == "boolean"
            assert "khaosat rerun --failed" in schema["failed_only"]["description"]
            assert "khaosat rerun --school" in schema["school"]["description"]
            assert {"questionnaire", "force"} <= set(schema)

            custom = client.create_flow_run_from_deployment(
                deployment.id, parameters={"failed_only": True}
            )

            def finished() -> Any:
                state = client.read_flow_run(custom.id).state
                return state if state is not None and state.is_final() else None

            try:
                state = wait_for(finished, 300, "khaosat serve to run the custom run")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; serve said:\n{ctrl_c(serve)[-4000:]}") from None
            assert state.is_completed() and state.message == "1/1 nguồn đã nạp hoặc không đổi"
            assert client.read_flow_run(custom.id).name == "T-2024 · rerun failed"
    finally:
        output = ctrl_c(serve)
    assert "Traceback" not in output, output[-4000:]
    assert _last_run_id(engine) == str(custom.id)
    with engine.connect() as conn:
        ledger = conn.execute(
            sa.select(t.load_ledger.c.school_code, t.load_ledger.c.status).where(
                t.load_ledger.c.run_id == str(custom.id)
            )
        ).all()
        responses = conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM response r JOIN source s ON s.source_id = r.source_id "
                "WHERE s.school_code = 'S5'"
            )
        ).scalar_one()
    engine.dispose()
    assert [tuple(r) for r in ledger] == [("S5", "loaded")] and responses == 3
