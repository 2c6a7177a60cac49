"""The nightly consolidation flow: fetch → parse → validate → load → marts → workbooks.

One flow run per campaign. Each source is a task (fetch, parse, load), so one school's failure
never stops the others; validation is one task per questionnaire over every staged sheet.
Retries sit on fetching only: parsing and loading are deterministic.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from sqlalchemy.engine import Engine

from flows import report
from flows.fetch import SourceAbsent, fetch_file
from flows.parse import parse_table, pick_table
from flows.read import read_tables
from flows.records import Fetched, Parsed, School, Source, SourceError, SourceOutcome
from flows.registry import read_schools, read_sources
from flows.settings import Settings, load_settings
from flows.validate import validate
from flows.workbooks import write_unit_workbooks
from schemas import Questionnaire, load_questionnaires
from schemas.questionnaire import SCHEMAS_DIR
from warehouse import db, load, marts


@dataclass
class Context:
    """What every task of one run needs, prepared once by the flow."""

    settings: Settings
    questionnaires: dict[str, Questionnaire]
    schools: dict[str, School]
    sources: list[Source]
    engine: Engine
    salt: str
    run_id: str


@dataclass
class RunSummary:
    """What a run did: one outcome per source, and where its outputs are."""

    run_id: str
    campaign_id: str
    outcomes: list[SourceOutcome] = field(default_factory=list)
    workbooks: list[Path] = field(default_factory=list)
    warehouse_url: str = ""

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        """0: every source loaded or unchanged; 1: a source failed; 3: only absent files."""
        if self.count("failed"):
            return 1
        if self.count("absent"):
            return 3
        return 0


def prepare(settings: Settings, run_id: str) -> Context:
    """Read schemas and registry, open and upgrade the warehouse, sync the registry into it."""
    questionnaires = load_questionnaires(settings.schemas_dir or SCHEMAS_DIR)
    school_list = read_schools(settings.registry.schools)
    schools = {s.code: s for s in school_list}
    sources = read_sources(settings.registry.sources, schools, questionnaires)
    engine = db.connect(settings.warehouse_url)
    db.migrate(engine)
    load.sync_registry(engine, settings.campaign, school_list, questionnaires)
    return Context(
        settings=settings,
        questionnaires=questionnaires,
        schools=schools,
        sources=sources,
        engine=engine,
        salt=db.get_salt(engine),
        run_id=run_id,
    )


def select_sources(
    ctx: Context,
    *,
    school: str | None = None,
    questionnaire: str | None = None,
    failed_only: bool = False,
) -> list[Source]:
    """The sources a run (or a re-run) processes."""
    chosen = ctx.sources
    if school:
        chosen = [s for s in chosen if s.school_code == school]
    if questionnaire:
        chosen = [s for s in chosen if s.questionnaire == questionnaire]
    if failed_only:
        states = load.latest_statuses(ctx.engine, ctx.settings.campaign.id)
        chosen = [s for s in chosen if states.get(s.key) == "failed"]
    return chosen


@task(name="fetch", retries=2, retry_delay_seconds=[2, 10], cache_policy=NONE)
def fetch_source(ctx: Context, source: Source) -> Fetched:
    """Fetch and archive one source (IO: the only task with retries)."""
    if source.kind in ("excel", "csv"):
        s = ctx.settings
        return fetch_file(source, s.archive_dir, s.limits, s.campaign.timezone)
    raise SourceError(f"{source.school_code}: source kind {source.kind!r} is not supported yet")


@task(name="parse", cache_policy=NONE)
def parse_source(ctx: Context, fetched: Fetched) -> Parsed:
    """Read the file's sheets and parse the right one against its questionnaire."""
    source = fetched.source
    questionnaire = ctx.questionnaires[source.questionnaire]
    tables = read_tables(fetched.content, fetched.filename, ctx.settings.limits)
    table = pick_table(tables, questionnaire, source.worksheet)
    return parse_table(table, questionnaire, ctx.salt)


@task(name="validate", cache_policy=NONE)
def validate_questionnaire(ctx: Context, code: str, parsed: list[Parsed]) -> list[Parsed]:
    """One Great Expectations run over every staged sheet of one questionnaire."""
    return validate(ctx.questionnaires[code], parsed, ctx.settings.campaign.window)


@task(name="load", cache_policy=NONE)
def load_source(ctx: Context, fetched: Fetched, parsed: Parsed) -> None:
    """Replace the source's rows in the warehouse, in one transaction."""
    load.replace_source(ctx.engine, ctx.settings.campaign.id, ctx.run_id, fetched, parsed)


@task(name="marts", cache_policy=NONE)
def build_marts(ctx: Context, as_of: dt.datetime) -> None:
    """Rebuild the department-level marts from the facts."""
    c = ctx.settings.campaign
    marts.rebuild_marts(ctx.engine, c.id, as_of=as_of, deadline_at=c.deadline_at)


@task(name="workbooks", cache_policy=NONE)
def publish_workbooks(ctx: Context) -> list[Path]:
    """Write the summary workbooks from the marts."""
    s = ctx.settings
    return write_unit_workbooks(ctx.engine, s.campaign.id, s.output, ctx.questionnaires)


def _error_text(exc: BaseException) -> str:
    """One line for a data officer: the message of a SourceError, else type and message."""
    if isinstance(exc, SourceError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _now(settings: Settings) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(settings.campaign.timezone)).replace(tzinfo=None)


@flow(name="khaosat-nightly", log_prints=False)
def nightly(
    config: str,
    school: str | None = None,
    questionnaire: str | None = None,
    failed_only: bool = False,
    force: bool = False,
    as_of: dt.datetime | None = None,
) -> RunSummary:
    """Consolidate one campaign: every source (or the re-run's selection), then marts and workbooks.

    ``force`` re-processes sources whose content is unchanged since their last load; a re-run of
    a school or of failed sources forces them. ``as_of`` fixes "now" for pending/missing.
    """
    settings = load_settings(Path(config))
    run_id = str(flow_run.id or uuid.uuid4())
    ctx = prepare(settings, run_id)
    campaign = settings.campaign
    as_of = as_of or _now(settings)
    force = force or failed_only or school is not None
    chosen = select_sources(ctx, school=school, questionnaire=questionnaire, failed_only=failed_only)
    summary = RunSummary(run_id, campaign.id, warehouse_url=db.safe_url(settings.warehouse_url))
    load.start_run(ctx.engine, run_id, campaign.id)
    reporter = report.active()
    reporter.start(len(chosen))
    known = {} if force else load.last_loaded_fingerprints(ctx.engine, campaign.id)
    started: dict[str, float] = {s.key: time.monotonic() for s in chosen}
    outcomes: dict[str, SourceOutcome] = {}

    def finish(outcome: SourceOutcome) -> None:
        outcome.seconds = time.monotonic() - started[outcome.source.key]
        outcomes[outcome.source.key] = outcome
        reporter.advance(outcome)

    # fetch (with retries), skipping what is unchanged since its last successful load
    fetch_futures = {fetch_source.submit(ctx, s): s for s in chosen}
    fetched: dict[str, Fetched] = {}
    for fut in as_completed(list(fetch_futures)):
        source = fetch_futures[fut]
        try:
            got = fut.result()
        except SourceAbsent as exc:
            load.record_absent(ctx.engine, campaign.id, run_id, source, str(exc))
            finish(SourceOutcome(source, "absent", message=str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - any fetch failure is this source's alone
            load.record_failure(ctx.engine, campaign.id, run_id, source, _error_text(exc))
            finish(SourceOutcome(source, "failed", message=_error_text(exc)))
            continue
        if known.get(source.key) == got.fingerprint:
            load.record_unchanged(ctx.engine, campaign.id, run_id, got)
            finish(SourceOutcome(source, "unchanged", filename=got.filename))
            continue
        fetched[source.key] = got

    # parse each fetched source
    parse_futures = {parse_source.submit(ctx, f): f for f in fetched.values()}
    staged: dict[str, list[tuple[str, Parsed]]] = defaultdict(list)
    for fut in as_completed(list(parse_futures)):
        got = parse_futures[fut]
        try:
            staged[got.source.questionnaire].append((got.source.key, fut.result()))
        except Exception as exc:  # noqa: BLE001 - an unreadable file fails alone
            msg = _error_text(exc)
            load.record_failure(ctx.engine, campaign.id, run_id, got.source, msg, got)
            finish(SourceOutcome(got.source, "failed", message=msg, filename=got.filename))

    # validate once per questionnaire (in registry order, so runs are reproducible)
    order = {s.key: i for i, s in enumerate(chosen)}
    parsed_by_key: dict[str, Parsed] = {}
    for code, pairs in sorted(staged.items()):
        pairs.sort(key=lambda pair: order[pair[0]])
        checked = validate_questionnaire(ctx, code, [p for _, p in pairs])
        parsed_by_key.update({k: p for (k, _), p in zip(pairs, checked, strict=True)})

    load_futures = {
        load_source.submit(ctx, fetched[k], p): (fetched[k], p) for k, p in parsed_by_key.items()
    }
    for fut in as_completed(list(load_futures)):
        got, parsed = load_futures[fut]
        try:
            fut.result()
        except Exception as exc:  # noqa: BLE001 - the transaction rolled back; report it
            msg = _error_text(exc)
            load.record_failure(ctx.engine, campaign.id, run_id, got.source, msg, got)
            finish(SourceOutcome(got.source, "failed", message=msg, filename=got.filename))
            continue
        finish(
            SourceOutcome(
                got.source,
                "loaded",
                filename=got.filename,
                n_rows_read=parsed.n_rows_read,
                n_responses=len(parsed.responses),
                n_rejected=len(parsed.rejections),
                unknown_columns=list(parsed.unknown_columns),
                missing_questions=list(parsed.missing_questions),
            )
        )

    build_marts(ctx, as_of)
    summary.workbooks = publish_workbooks(ctx)
    summary.outcomes = [outcomes[s.key] for s in chosen if s.key in outcomes]
    load.finish_run(ctx.engine, run_id, summary.outcomes)
    reporter.finish(summary)
    return summary



def run(settings: Settings, **params: object) -> RunSummary:
    """Run the nightly flow for ``settings`` with its configured thread concurrency."""
    runner = ThreadPoolTaskRunner(max_workers=settings.run.concurrency)
    result = nightly.with_options(task_runner=runner)(
        config=str(settings.config_path),
        **params,  # type: ignore[arg-type]
    )
    return result
