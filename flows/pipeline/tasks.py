"""The nightly flow's Prefect tasks: ingest (fetch and parse) a source, validate a
questionnaire, load a source, build the marts, raise alerts, write workbooks and feedback.

``failure_message`` is the one line a data officer reads about a source that failed.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NONE

from flows.alerts import evaluate_alerts
from flows.comments import (
    Codebook,
    Tally,
    load_codebook,
    split_units,
    tally_comments,
    write_comment_mart,
)
from flows.fetch import fetch
from flows.pipeline import prefect_ui
from flows.pipeline.context import Context
from flows.pipeline.faults import WorkerDied, worker_died
from flows.pipeline.pools import (
    Beside,
    in_processes,
    load_pool,
    parse_pool,
    parse_processes,
    tried,
)
from flows.pipeline.read_ahead import ParseJob, parse_fetched
from flows.pipeline.workbook_pool import write_workbooks
from flows.privacy import mask_personal
from flows.publish.feedback import write_feedback
from flows.validate import validate
from schemas.records import Fetched, Parsed, Source, SourceError
from warehouse import ledger, load, marts
from warehouse.comments import Respondents, respondent_counts

# Expected problems with a source (SourceError) come back as values, not raised: they are
# outcomes to report in one line, not crashes for Prefect to log with a traceback. Anything else
# raised is a transient IO error (fetch retries it) or a bug.


def fetch_source(ctx: Context, source: Source, last: ledger.LastLoad | None = None) -> Fetched:
    """Fetch and archive one source (IO). Raises SourceError for a source that cannot be used,
    and any other exception for what may pass on a retry (network, file system).

    A Google Sheet whose Drive version equals that of its last load is not read again: the
    last load's fingerprint comes back, and the flow records the source unchanged.
    """
    s = ctx.settings
    return fetch(
        source,
        s.archive_dir,
        s.limits,
        s.campaign.timezone,
        folders=ctx.source_folders,
        gsheets=ctx.gsheets,
        last=last,
    )


def parse_source(ctx: Context, fetched: Fetched) -> Parsed | SourceError:
    """Read the file's sheets and parse the right one against its questionnaire (in a parse
    process when ``run.parse_processes`` allows). Raises WorkerDied if the parse process died
    on it (and again on a fresh process): the machine's fault, not the file's."""
    source, s = fetched.source, ctx.settings
    job = ParseJob(
        content=fetched.content,
        filename=fetched.filename,
        kind=source.kind,
        worksheet=source.worksheet,
        questionnaire=ctx.questionnaires[source.questionnaire],
        salt=ctx.salt,
        limits=s.limits,
        timezone=s.campaign.timezone,
    )
    [got] = in_processes(lambda: parse_pool(s), parse_fetched, [(job,)])
    if isinstance(got, BrokenProcessPool):
        raise worker_died("parse", fetched.filename)
    if isinstance(got, BaseException):
        raise got
    return got


class Ingested:
    """What ingesting one source gave: its content parsed, unchanged, or why it cannot be used.

    ``error`` is a SourceError (SourceAbsent for a file not there), or the exception parsing
    raised; ``fetched`` is set whenever the content was fetched (and archived).
    """

    def __init__(
        self,
        source: Source,
        fetched: Fetched | None = None,
        parsed: Parsed | None = None,
        error: BaseException | None = None,
    ) -> None:
        self.source = source
        self.fetched = fetched
        self.parsed = parsed
        self.error = error


# One task per source for fetch and parse together: a Prefect task run costs the flow's process
# about as much as the fetch itself (benchmarks/README.md), and a province has a thousand
# sources a night.
@task(
    name="ingest",
    task_run_name=prefect_ui.ingest_name,
    retries=2,
    retry_delay_seconds=[2, 10],
    cache_policy=NONE,
)
def ingest_source(ctx: Context, source: Source, last: ledger.LastLoad | None = None) -> Ingested:
    """Fetch and archive one source, then parse it unless its content is that of its last load.

    Only fetching is retried (an exception it raises may pass); a problem with the content
    comes back in ``error`` without a retry, since parsing is deterministic.
    """
    try:
        fetched = fetch_source(ctx, source, last)
    except SourceError as exc:
        return Ingested(source, error=exc)
    if last is not None and last.fingerprint == fetched.fingerprint:
        return Ingested(source, fetched)
    got = tried(parse_source, ctx, fetched)
    if isinstance(got, BaseException):
        return Ingested(source, fetched, error=got)
    return Ingested(source, fetched, got)


@task(name="validate", task_run_name=prefect_ui.validate_name, cache_policy=NONE)
def validate_questionnaire(ctx: Context, code: str, parsed: list[Parsed]) -> list[Parsed]:
    """One Great Expectations run over every staged sheet of one questionnaire."""
    return validate(ctx.questionnaires[code], parsed, ctx.settings.campaign.window)


def load_source(ctx: Context, fetched: Fetched, parsed: Parsed) -> None:
    """Replace the source's rows in the warehouse, in one transaction."""
    load.replace_source(ctx.engine, ctx.settings.campaign.id, ctx.run_id, fetched, parsed)


load_source_task = task(name="load", task_run_name=prefect_ui.load_source_name, cache_policy=NONE)(
    load_source
)


@task(name="marts", task_run_name="marts", cache_policy=NONE)
def build_marts(ctx: Context, as_of: dt.datetime) -> None:
    """Rebuild the department-level marts from the facts."""
    campaign = ctx.settings.campaign
    marts.rebuild_marts(ctx.engine, campaign.id, as_of=as_of, deadline_at=campaign.deadline_at)


class CommentTallies:
    """The comment mart under way (``start_comment_mart``): the codebook, the respondents, and
    the tallies being made. A plain object, as the Context is, for Prefect not to walk it."""

    def __init__(
        self, codebook: Codebook, respondents: list[Respondents], jobs: list[Beside[Tally]]
    ) -> None:
        self.codebook, self.respondents, self.jobs = codebook, respondents, jobs


def start_comment_mart(ctx: Context) -> CommentTallies:
    """Start tallying the stored comments with the codebook, the units split between a parse
    process and a load process, while this thread builds the other marts and raises alerts
    (the comment mart reads neither)."""
    s, engine = ctx.settings, ctx.engine
    codebook = load_codebook(s.codebook_dir)
    respondents = respondent_counts(engine, ctx.campaign_id)
    pools = (parse_pool(s), load_pool(s, engine))
    jobs = [
        Beside(
            pool,
            engine,
            tally_comments,
            ctx.campaign_id,
            codebook,
            [r for r in respondents if r.unit_code in units],
            units,
        )
        for pool, units in zip(pools, split_units(respondents, len(pools)), strict=False)
    ]
    return CommentTallies(codebook, respondents, jobs)


@task(name="comments", task_run_name="comments", cache_policy=NONE)
def finish_comment_mart(ctx: Context, started: CommentTallies) -> int:
    """Write the comment mart ``start_comment_mart`` started once its tallies are done; the
    theme rows written."""
    tallies = [job.result() for job in started.jobs]
    return write_comment_mart(
        ctx.engine, ctx.campaign_id, started.codebook, started.respondents, tallies
    )


@task(name="alerts", task_run_name="alerts", cache_policy=NONE)
def raise_alerts(ctx: Context, now: dt.datetime) -> None:
    """Evaluate the alert rules on tonight's marts and upsert the alerts' lifecycle."""
    campaign = ctx.settings.campaign
    evaluate_alerts(
        ctx.engine,
        campaign.id,
        previous_id=campaign.previous,
        thresholds=ctx.settings.thresholds,
        now=now,
    )


@task(name="feedback", task_run_name="feedback", cache_policy=NONE)
def publish_feedback(ctx: Context) -> list[Path]:
    """One feedback workbook per school with something to fix; stale ones removed."""
    return write_feedback(ctx.engine, ctx.campaign_id, ctx.settings.output)


def leadership_outputs(ctx: Context) -> dict[str, Any]:
    """What the workbooks and the report are written with, after the engine (the keyword
    arguments of ``flows.publish.workbooks.plan_workbooks`` and ``write_report``)."""
    s = ctx.settings
    return {
        "campaign_id": s.campaign.id,
        "output_dir": s.output,
        "questionnaires": ctx.questionnaires,
        "run_id": ctx.run_id,
        "thresholds": s.thresholds,
        "actions": s.actions,
    }


@task(name="workbooks", task_run_name="workbooks", cache_policy=NONE)
def publish_workbooks(ctx: Context) -> list[Path]:
    """Write the province's and each unit's workbook from the marts."""
    s = ctx.settings
    return write_workbooks(
        ctx.engine, **leadership_outputs(ctx), pool=parse_pool(s), workers=parse_processes(s)
    )


def failure_message(source: Source, exc: BaseException) -> str:
    """One line for a data officer: school and file first, then what is wrong.

    A SourceError's text is masked where it quotes the file (``parse_fetched``, the header
    messages), so that fetching can name the service account's e-mail a sheet must be shared
    with; a WorkerDied names the machine; any other exception may quote a value it choked on,
    and is masked here.
    """
    plain = isinstance(exc, SourceError | WorkerDied)
    text = str(exc) if plain else mask_personal(f"{type(exc).__name__}: {exc}")
    text = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    for prefix in (f"{source.school_code}: ", f"{source.school_code} "):
        text = text.removeprefix(prefix)
    where = source.location
    name = source.path.name if source.path else where
    text = text.removeprefix(f"{where}: ").removeprefix(f"{name}: ")
    return f"{source.school_code} {where}: {text}"
