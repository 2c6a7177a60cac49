"""The nightly consolidation flow, read as prepare → consolidate → publish.

One flow run per campaign: ``prepare`` (context.py) reads the registry and syncs the warehouse,
``consolidate`` (batches.py) ingests, validates and loads the sources in batches, one source's
failure never stopping the others, and ``publish_all`` (publishing.py) rebuilds marts, alerts
and workbooks. The tasks are in tasks.py. Retries sit on fetching only: parsing and loading are
deterministic. ``publish`` and ``province_night`` (a work pool's deployment) are flows too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any, cast

from prefect import flow
from prefect.runtime import flow_run
from prefect.states import State

from flows.pipeline import prefect_ui, progress
from flows.pipeline.batches import Tracker, consolidate
from flows.pipeline.context import (
    forget_drive_listings,
    local_now,
    prepare,
    run_lock,
    select_refused,
    select_sources,
)
from flows.pipeline.faults import (
    check_output,
    close_stopped_run,
    faults_of_the_run,
    stopped_line,
    stops_on_record,
)
from flows.pipeline.notify import notify_failed_sources, notify_stopped_sources, on_failure
from flows.pipeline.pools import task_runner
from flows.pipeline.publishing import publish_all
from flows.registry import NotInRegistry
from flows.settings import Settings, load_settings
from schemas.records import RunSummary
from warehouse import db, ledger


@flow(
    name="khaosat-nightly",
    flow_run_name=prefect_ui.flow_run_name,
    log_prints=False,
    on_failure=[on_failure],
)
def nightly(
    config: str,
    school: str | None = None,
    questionnaire: str | None = None,
    failed_only: bool = False,
    force: bool = False,
    as_of: dt.datetime | None = None,
) -> State[RunSummary]:
    """Consolidate one campaign: every source (or a re-run's selection), then marts, workbooks.

    The run ends Failed when a source failed, Completed otherwise (named "Thiếu bài nộp" when
    files are absent); either way its result is the RunSummary (``prefect_ui.verdict``).

    Args:
        config: Path to the campaign's khaosat.yaml.
        school: Re-run one school's sources only, forced (its code, e.g. TH015), as
            `khaosat rerun --school` does. Leave empty for the whole campaign.
        questionnaire: With school: only this questionnaire of it (e.g. CMHS_TH).
        failed_only: Re-run only the sources whose last load failed, forced, as
            `khaosat rerun --failed` does (after the schools fixed their files).
        force: Re-process sources whose content is unchanged since their last load.
        as_of: The moment the night is judged at (pending or missing files); empty for now.
    """
    settings = load_settings(Path(config))
    try:
        with stops_on_record(settings, flow_run.id), faults_of_the_run(settings):
            summary = _night(settings, school, questionnaire, failed_only, force, as_of)
    finally:
        forget_drive_listings()  # the folders as this run saw them serve no later run
    progress.active().finish(summary)
    prefect_ui.report(settings, summary)
    notify_failed_sources(settings, summary)
    notify_stopped_sources(settings, summary)
    prefect_ui.quiet_verdicts()
    return prefect_ui.verdict(summary, summary)


def _night(
    settings: Settings,
    school: str | None,
    questionnaire: str | None,
    failed_only: bool,
    force: bool,
    as_of: dt.datetime | None,
) -> RunSummary:
    """The nightly flow's work, under the campaign's lock."""
    check_output(settings)
    ctx = prepare(settings, str(flow_run.id or uuid.uuid4()))
    chosen = select_sources(
        ctx, school=school, questionnaire=questionnaire, failed_only=failed_only
    )
    refused = select_refused(ctx, school=school, questionnaire=questionnaire)
    if (school or questionnaire) and not chosen and not refused:
        # a Custom run from Prefect's UI naming what the registry lacks (the CLI checks first)
        named = " ".join(
            f"{k} {v}" for k, v in (("school", school), ("questionnaire", questionnaire)) if v
        )
        raise NotInRegistry(f"{named}: no source in sources.csv; nothing was run")
    force = force or failed_only or school is not None
    known = {} if force else ledger.last_loads(ctx.engine, ctx.campaign_id)
    # one run of a campaign at a time: a second waits (run.lock_wait_seconds) or exits clearly
    with run_lock(ctx):
        ledger.start_run(ctx.engine, ctx.run_id, ctx.campaign_id)
        track = Tracker(ctx, [*(r.source for r in refused), *chosen])
        try:
            track.refused(refused)  # bad registry rows: failed, each with its line
            consolidate(ctx, chosen, known, track)
            published = publish_all(ctx, as_of or local_now(settings), skip_unchanged=not force)
        except BaseException as exc:
            # the run row says so, rather than 'running' until another run takes the lock
            close_stopped_run(ctx, exc)
            raise
        workbooks, feedback = published or ([], [])

        stopped = sum(o.status == "stopped" for o in track.outcomes.values())
        if stopped:
            ledger.finish_run(ctx.engine, ctx.run_id, status="error", message=stopped_line(stopped))
        else:
            ledger.finish_run(ctx.engine, ctx.run_id)
        if ctx.gsheets is not None:
            ctx.gsheets.close()
        return RunSummary(
            run_id=ctx.run_id,
            campaign_id=ctx.campaign_id,
            outcomes=[o for key in track.started if (o := track.outcomes.get(key))],
            workbooks=workbooks,
            feedback=feedback,
            published=published is not None,
            warehouse_url=db.safe_url(settings.warehouse_url),
        )


@flow(name="khaosat-publish", log_prints=False)
def publish(config: str, as_of: dt.datetime | None = None) -> tuple[list[Path], list[Path]]:
    """Rebuild marts, alerts and workbooks from the warehouse, without fetching anything."""
    settings = load_settings(Path(config))
    with faults_of_the_run(settings):
        check_output(settings)
        ctx = prepare(settings, str(flow_run.id or uuid.uuid4()))
        with run_lock(ctx):
            published = publish_all(ctx, as_of or local_now(settings))
            assert published is not None  # noqa: S101 - publish_all skips only when asked to
            return published


@flow(name="khaosat-province", flow_run_name=prefect_ui.flow_run_name, log_prints=False)
def province_night(config: str) -> State[int]:
    """One province's night on a work pool: the nightly flow (a subflow) with the task runner
    ``config`` asks for. Its result is the run's exit code (0 all loaded or unchanged, 1 a
    source failed, 3 only absent files), as ``khaosat run`` would exit with; its state is the
    night's.

    Args:
        config: Path to the province's khaosat.yaml.
    """
    summary = run(load_settings(Path(config)))
    prefect_ui.quiet_verdicts()
    return prefect_ui.verdict(summary, summary.exit_code)


def run(settings: Settings, **params: Any) -> RunSummary:
    """Run the nightly flow for ``settings`` on its configured task runner (threads or Dask)
    and give its summary, whatever state the night ended in; a run that stopped raises."""
    configured = nightly.with_options(task_runner=task_runner(settings))
    state = configured(config=str(settings.config_path), return_state=True, **params)
    return prefect_ui.summary_of(cast("State[RunSummary]", state))
