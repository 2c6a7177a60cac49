"""The nightly consolidation flow: fetch → parse → validate → load → marts → workbooks.

One flow run per campaign, in batches of sources. Each source is ingested (fetched, archived,
parsed) by a task of its own, so one school's failure never stops the others; validation is one
task per questionnaire over a batch's staged sheets; loading is one transaction per source (one
task per batch on SQLite, one task per source on PostgreSQL). Retries sit on fetching only:
parsing and loading are deterministic.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
import importlib.metadata
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar, cast

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote
from sqlalchemy.engine import Engine

from flows.alerts import ThresholdError, Thresholds, evaluate_alerts
from flows.fetch.files import SourceAbsent, fetch_file, fingerprint_of, unchanged_file
from flows.fetch.gsheets import (
    GSheetsClient,
    fetch_gsheet,
    open_client,
    sheet_revision,
)
from flows.parse import ParseJob, parse_fetched, read_tables_ahead
from flows.pipeline import progress
from flows.pipeline.notify import notify_failed_sources, on_failure
from flows.pipeline.pools import in_processes, load_pool, parse_pool, parse_processes, task_runner
from flows.pipeline.processes import long_lived_imports
from flows.pipeline.workbook_pool import write_workbooks
from flows.publish.feedback import write_feedback
from flows.registry import read_schools, read_sources
from flows.settings import Settings, SettingsError, load_settings
from flows.validate import create_context, validate, warm_up
from schemas import Questionnaire, load_questionnaires
from schemas.questionnaire import SCHEMAS_DIR
from schemas.records import (
    Fetched,
    Parsed,
    RunSummary,
    School,
    Source,
    SourceError,
    SourceOutcome,
)
from warehouse import alerts as warehouse_alerts
from warehouse import db, load, marts
from warehouse.lock import RunLock


class Context:
    """What every task of one run needs, prepared once by the flow.

    Deliberately not a dataclass: Prefect walks every dataclass, list and dict a task receives
    (looking for futures) each time a task starts, and the Context holds the whole registry, so
    1,000 schools made a run O(sources²) and it did not get past parsing in 7.5 minutes
    (benchmarks/README.md). A plain object is passed through as it is, and pickles for Dask.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        questionnaires: dict[str, Questionnaire],
        schools: dict[str, School],
        sources: list[Source],
        engine: Engine,
        salt: str,
        run_id: str,
        gsheets: GSheetsClient | None = None,
    ) -> None:
        self.settings = settings
        self.questionnaires = questionnaires
        self.schools = schools
        self.sources = sources
        self.engine = engine
        self.salt = salt
        self.run_id = run_id
        #: the Google Sheets client, opened only when the registry has gsheet sources.
        self.gsheets = gsheets

    @property
    def campaign_id(self) -> str:
        return self.settings.campaign.id

    def __getstate__(self) -> dict[str, Any]:
        # Dask pickles task arguments. An Engine (pool, locks) and an open Sheets client do not
        # pickle: ship the warehouse URL and whether Sheets were open, reopen them on the worker.
        state = dict(self.__dict__)
        state["engine"] = self.engine.url.render_as_string(hide_password=False)
        state["gsheets"] = self.gsheets is not None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state["engine"] = db.shared_engine(state["engine"])
        state["gsheets"] = open_client(state["settings"].gsheets) if state["gsheets"] else None
        self.__dict__.update(state)


def prepare(settings: Settings, run_id: str) -> Context:
    """Read schemas and registry, open and upgrade the warehouse, sync the registry into it."""
    try:  # a typo in thresholds fails before anything is fetched
        Thresholds.from_mapping(settings.thresholds)
    except ThresholdError as exc:
        raise SettingsError(f"{settings.config_path}: {exc}") from exc
    questionnaires, school_list, sources = read_registry(settings)
    schools = {s.code: s for s in school_list}
    engine = db.connect(settings.warehouse_url)
    db.migrate(engine)
    load.sync_registry(engine, settings.campaign, school_list, questionnaires, sources=sources)
    return Context(
        settings=settings,
        questionnaires=questionnaires,
        schools=schools,
        sources=sources,
        engine=engine,
        salt=db.get_salt(engine),
        run_id=run_id,
        gsheets=open_client(settings.gsheets) if any(s.kind == "gsheet" for s in sources) else None,
    )


def read_registry(
    settings: Settings,
) -> tuple[dict[str, Questionnaire], list[School], list[Source]]:
    """The questionnaires, the registered schools and their sources; raises QuestionnaireError
    or RegistryError for files that cannot be used."""
    questionnaires = load_questionnaires(settings.schemas_dir or SCHEMAS_DIR)
    schools = read_schools(settings.registry.schools)
    sources = read_sources(settings.registry.sources, {s.code: s for s in schools}, questionnaires)
    return questionnaires, schools, sources


def select_sources(
    ctx: Context,
    *,
    school: str | None = None,
    questionnaire: str | None = None,
    failed_only: bool = False,
) -> list[Source]:
    """The sources a run (or a re-run) processes."""
    chosen = _of(ctx.sources, school, questionnaire)
    if failed_only:
        states = load.latest_statuses(ctx.engine, ctx.settings.campaign.id)
        chosen = [s for s in chosen if states.get(s.key) == "failed"]
    return chosen


def _of(sources: list[Source], school: str | None, questionnaire: str | None) -> list[Source]:
    """The sources of ``school`` and of ``questionnaire``, where given."""
    if school:
        sources = [s for s in sources if s.school_code == school]
    if questionnaire:
        sources = [s for s in sources if s.questionnaire == questionnaire]
    return sources


def read_ahead(settings: Settings, **params: Any) -> None:
    """Have the parse processes start reading the files of the run's first batch that changed
    since their last load, before the flow starts: a command that runs once waits seconds for
    its temporary Prefect API with a core idle (benchmarks/README.md). Takes the flow's
    parameters; returns once the reads are queued.

    Only the reading is done ahead, from the files as they are now: each source is still
    fetched, archived and parsed by its task, which uses what was read ahead only for the very
    same bytes. Anything in the way (a registry the flow will reject, a warehouse not made yet)
    just means less is read ahead; a re-run of failed sources reads nothing ahead. When there
    is something to read, GX is imported meanwhile too (``validate.create_context``), and
    frozen out of the garbage collector's way (``workers.long_lived_imports``): once the flow
    runs, its process is the busiest, and with a batch in flight freezing is no longer safe.
    """
    school, questionnaire = params.get("school"), params.get("questionnaire")
    pool = parse_pool(settings)
    if pool is None or params.get("failed_only"):
        return
    try:
        sources = read_registry(settings)[2]
    except Exception:  # noqa: BLE001 - the flow reads the registry again and says what is wrong
        return
    chosen = _of(sources, school, questionnaire)[: settings.run.batch_sources]
    known = {} if params.get("force") or school is not None else _known_loads(settings)
    reading = False
    for source in chosen:
        path = source.path
        if source.kind == "gsheet" or path is None:
            continue
        try:
            if path.stat().st_size > settings.limits.max_file_bytes:
                continue  # fetching refuses it
            content = path.read_bytes()
        except OSError:
            continue  # fetching reports it
        last = known.get(source.key)
        if last is not None and fingerprint_of(content) == last.fingerprint:
            continue  # the bytes of its last load (touched or not): not parsed again
        pool.submit(read_tables_ahead, content, path.name, settings.limits)
        reading = True
    if reading:  # something will need validating: GX is imported now, before any data
        with long_lived_imports():
            create_context()


def _known_loads(settings: Settings) -> dict[str, load.LastLoad]:
    """``load.last_loads`` of the campaign, or nothing if the warehouse cannot tell yet (not
    made, or not migrated); a SQLite file that does not exist is not created."""
    if not db.exists(settings.warehouse_url):
        return {}
    try:
        engine = db.connect(settings.warehouse_url)
        try:
            return load.last_loads(engine, settings.campaign.id)
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001 - no tables yet, no driver, no server: the flow reports it
        return {}


# Expected problems with a source (SourceError) come back as values, not raised: they are
# outcomes to report in one line, not crashes for Prefect to log with a traceback. Anything else
# raised is a transient IO error (fetch retries it) or a bug.


def fetch_source(ctx: Context, source: Source, last: load.LastLoad | None = None) -> Fetched:
    """Fetch and archive one source (IO). Raises SourceError for a source that cannot be used,
    and any other exception for what may pass on a retry (network, file system).

    A Google Sheet whose Drive version equals that of its last load is not read again: the
    last load's fingerprint comes back, and the flow records the source unchanged.
    """
    s = ctx.settings
    if source.kind == "gsheet":
        assert ctx.gsheets is not None  # noqa: S101 - prepare opens it for gsheet sources
        if last is not None and last.revision is not None:
            modified_at, version = sheet_revision(ctx.gsheets, source, timezone=s.campaign.timezone)
            if version == last.revision:
                return Fetched(
                    source=source,
                    content=b"",
                    fingerprint=last.fingerprint,
                    archive_path=Path(last.archive_path or ""),
                    filename=last.filename or source.location,
                    modified_at=modified_at,
                    revision=version,
                )
        return fetch_gsheet(
            ctx.gsheets, source, s.archive_dir, s.campaign.timezone, limits=s.limits
        )
    return fetch_file(source, s.archive_dir, s.limits, s.campaign.timezone)


def parse_source(ctx: Context, fetched: Fetched) -> Parsed | SourceError:
    """Read the file's sheets and parse the right one against its questionnaire (in a parse
    process when ``run.parse_processes`` allows)."""
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
        return SourceError(
            f"{fetched.filename}: the parser process stopped while reading this file"
        )
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


# One task per source for fetch and parse together: a Prefect task run costs ~5-10 ms of the
# flow process's time (benchmarks/README.md), as much as the fetch itself, and a province has
# a thousand sources a night.
@task(name="ingest", retries=2, retry_delay_seconds=[2, 10], cache_policy=NONE)
def ingest_source(ctx: Context, source: Source, last: load.LastLoad | None = None) -> Ingested:
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
    got = _tried(parse_source, ctx, fetched)
    if isinstance(got, BaseException):
        return Ingested(source, fetched, error=got)
    return Ingested(source, fetched, got)


@task(name="validate", cache_policy=NONE)
def validate_questionnaire(ctx: Context, code: str, parsed: list[Parsed]) -> list[Parsed]:
    """One Great Expectations run over every staged sheet of one questionnaire."""
    return validate(ctx.questionnaires[code], parsed, ctx.settings.campaign.window)


def load_source(ctx: Context, fetched: Fetched, parsed: Parsed) -> None:
    """Replace the source's rows in the warehouse, in one transaction."""
    load.replace_source(ctx.engine, ctx.settings.campaign.id, ctx.run_id, fetched, parsed)


load_source_task = task(name="load", cache_policy=NONE)(load_source)


@task(name="marts", cache_policy=NONE)
def build_marts(ctx: Context, as_of: dt.datetime) -> None:
    """Rebuild the department-level marts from the facts."""
    c = ctx.settings.campaign
    marts.rebuild_marts(ctx.engine, c.id, as_of=as_of, deadline_at=c.deadline_at)


@task(name="alerts", cache_policy=NONE)
def raise_alerts(ctx: Context, now: dt.datetime) -> None:
    """Evaluate the alert rules on tonight's marts and upsert the alerts' lifecycle."""
    c = ctx.settings.campaign
    evaluate_alerts(
        ctx.engine, c.id, previous_id=c.previous, thresholds=ctx.settings.thresholds, now=now
    )


@task(name="feedback", cache_policy=NONE)
def publish_feedback(ctx: Context) -> list[Path]:
    """One feedback workbook per school with something to fix; stale ones removed."""
    return write_feedback(ctx.engine, ctx.campaign_id, ctx.settings.output)


@task(name="workbooks", cache_policy=NONE)
def publish_workbooks(ctx: Context) -> list[Path]:
    """Write the province's and each unit's workbook from the marts."""
    s = ctx.settings
    return write_workbooks(
        ctx.engine,
        s.campaign.id,
        s.output,
        ctx.questionnaires,
        run_id=ctx.run_id,
        thresholds=s.thresholds,
        actions=s.actions,
        pool=parse_pool(s),
        workers=parse_processes(s),
    )


def failure_message(source: Source, exc: BaseException) -> str:
    """One line for a data officer: school and file first, then what is wrong."""
    text = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
    text = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    for prefix in (f"{source.school_code}: ", f"{source.school_code} "):
        text = text.removeprefix(prefix)
    where = source.location
    name = source.path.name if source.path else where
    text = text.removeprefix(f"{where}: ").removeprefix(f"{name}: ")
    return f"{source.school_code} {where}: {text}"


def _now(settings: Settings) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(settings.campaign.timezone)).replace(tzinfo=None)


T = TypeVar("T")


def unwalked(value: T) -> T:
    """``value`` as a task parameter that Prefect hands over without walking it.

    Prefect walks each parameter twice as a task starts, looking for futures and states to
    resolve, into every list, dict and dataclass: for a batch's 150 parsed sheets that took
    ~70 ms a task, ~1.5 s of a 1,000-school run. Parsed sheets hold no futures. The task
    receives ``value`` itself.
    """
    return cast(T, quote(value))


def _settled(future: PrefectFuture[T]) -> T | BaseException:
    """A task's value, or the exception it ended with (a source's problem is its own)."""
    return _tried(future.result)


def _tried(call: Callable[..., T], *args: Any) -> T | BaseException:
    """``call(*args)``'s value, or the exception it raised (reported per source by the caller)."""
    try:
        return call(*args)
    except Exception as exc:  # noqa: BLE001 - reported per source by the caller
        return exc


class Tracker:
    """Records each source's outcome once: in the ledger, for the reporter, for the summary."""

    def __init__(self, ctx: Context, chosen: list[Source]) -> None:
        self.ctx = ctx
        self.reporter = progress.active()
        self.started = {s.key: time.monotonic() for s in chosen}
        self.outcomes: dict[str, SourceOutcome] = {}
        self.reporter.start(len(chosen))

    def _done(self, outcome: SourceOutcome) -> None:
        outcome.seconds = time.monotonic() - self.started[outcome.source.key]
        self.outcomes[outcome.source.key] = outcome
        self.reporter.advance(outcome)

    def absent(self, source: Source, exc: BaseException) -> None:
        msg = failure_message(source, exc)
        load.record_absent(self.ctx.engine, self.ctx.campaign_id, self.ctx.run_id, source, msg)
        self._done(SourceOutcome(source, "absent", message=msg))

    def failed(self, source: Source, exc: BaseException, fetched: Fetched | None = None) -> None:
        msg = failure_message(source, exc)
        c = self.ctx
        load.record_failure(c.engine, c.campaign_id, c.run_id, source, msg, fetched)
        name = fetched.filename if fetched else ""
        self._done(SourceOutcome(source, "failed", message=msg, filename=name))

    def unchanged(self, fetched: list[Fetched]) -> None:
        c = self.ctx
        load.record_unchanged_many(c.engine, c.campaign_id, c.run_id, fetched)
        for f in fetched:
            self._done(SourceOutcome(f.source, "unchanged", filename=f.filename))

    def loaded(self, fetched: Fetched, parsed: Parsed) -> None:
        self._done(
            SourceOutcome(
                fetched.source,
                "loaded",
                filename=fetched.filename,
                n_rows_read=parsed.n_rows_read,
                n_responses=len(parsed.responses),
                n_rejected=len(parsed.rejections),
                unknown_columns=list(parsed.unknown_columns),
                missing_questions=list(parsed.missing_questions),
                renamed_questions=dict(parsed.renamed_questions),
            )
        )


@task(name="load", cache_policy=NONE)
def load_batch(ctx: Context, checked: list[tuple[Fetched, Parsed]]) -> list[Any]:
    """Load a batch's sources, each in its own transaction, in the load processes (or in this
    thread): each source's LoadResult, or the exception its load ended with (it rolled back)."""
    if load_pool(ctx.settings, ctx.engine) is None:  # in this thread, on the flow's Engine
        return [_tried(load_source, ctx, f, p) for f, p in checked]
    url = ctx.engine.url.render_as_string(hide_password=False)
    # the archived content stays here: loading needs the parse, not the bytes
    jobs = [
        (url, ctx.campaign_id, ctx.run_id, dataclasses.replace(f, content=b""), p)
        for f, p in checked
    ]
    return in_processes(lambda: load_pool(ctx.settings, ctx.engine), load.replace_source_at, jobs)


class Loads:
    """A batch's loads under way: ``results()`` waits for them and gives one per source."""

    def __init__(
        self, checked: list[tuple[Fetched, Parsed]], results: Callable[[], list[Any]]
    ) -> None:
        self.checked = checked
        self.results = results


def unchanged_files(
    ctx: Context, batch: list[Source], known: dict[str, load.LastLoad], track: Tracker
) -> list[Source]:
    """The sources of ``batch`` to ingest: a local file whose modified time and bytes are those
    of its last load is recognised here with a stat and a hash, and recorded unchanged without
    a task."""
    tz = ctx.settings.campaign.timezone
    same: list[Fetched] = []
    rest: list[Source] = []
    for source in batch:
        last = known.get(source.key)
        seen = None
        if last is not None and source.kind != "gsheet":
            seen = unchanged_file(source, last.fingerprint, last.modified_at, last.archive_path, tz)
        if seen is None:
            rest.append(source)
        else:
            same.append(seen)
    if same:
        track.unchanged(same)
    return rest


def collect_ingested(
    ingesting: dict[PrefectFuture[Ingested], Source], track: Tracker
) -> list[tuple[Fetched, Parsed]]:
    """Wait for a batch's ingest tasks; track what is absent, failed or unchanged, and return
    what was parsed."""
    staged: list[tuple[Fetched, Parsed]] = []
    same: list[Fetched] = []
    for future in as_completed(list(ingesting)):
        got = _settled(future)
        if isinstance(got, BaseException):  # fetching raised, retries included
            track.failed(ingesting[future], got)
        elif isinstance(got.error, SourceAbsent):
            track.absent(got.source, got.error)
        elif got.error is not None:
            track.failed(got.source, got.error, got.fetched)
        elif got.parsed is None:
            assert got.fetched is not None  # noqa: S101 - Ingested without parse: unchanged
            same.append(got.fetched)
        else:
            assert got.fetched is not None  # noqa: S101 - parsed content was fetched
            staged.append((got.fetched, got.parsed))
    if same:
        track.unchanged(same)
    return staged


def validate_all(
    ctx: Context,
    staged: list[tuple[Fetched, Parsed]],
    order: dict[str, int],
    then: Callable[[list[tuple[Fetched, Parsed]]], object],
) -> None:
    """Validate once per questionnaire, in registry order so a run is reproducible; each
    questionnaire's checked sources go to ``then`` as soon as they are (to start loading them
    while the next questionnaire is validated)."""
    by_code: dict[str, list[tuple[Fetched, Parsed]]] = defaultdict(list)
    for pair in sorted(staged, key=lambda pair: order[pair[0].source.key]):
        by_code[pair[0].source.questionnaire].append(pair)
    for code, pairs in sorted(by_code.items()):
        result = validate_questionnaire(ctx, code, unwalked([p for _, p in pairs]))
        then(list(zip([f for f, _ in pairs], result, strict=True)))


def load_all(ctx: Context, checked: list[tuple[Fetched, Parsed]], loader: Executor) -> Loads:
    """Start loading a batch, each source in its own transaction; ``finish_loads`` waits.

    With the threads runner the batch is one load task, on the ``loader`` thread, whose
    sources go to the load processes (``run.load_processes``: one on SQLite, which takes one
    writer at a time, several on PostgreSQL): the flow's thread meanwhile validates the next
    batch. Without them (the Dask runner, or ``load_processes: 0``), SQLite loads the batch
    now, in the flow's thread, and PostgreSQL loads each source in a task of its own.
    """
    if not checked:
        return Loads(checked, list)
    if load_pool(ctx.settings, ctx.engine) is not None:
        # A thread of its own, not the task runner's: there the load task would queue behind
        # the next batch's ingest tasks. The copied context makes it a task of this flow run.
        context = contextvars.copy_context()
        future = loader.submit(context.run, _tried, load_batch, ctx, unwalked(checked))

        def batch_results() -> list[Any]:
            got = future.result()  # the task itself failing fails each of its sources
            return [got] * len(checked) if isinstance(got, BaseException) else got

        return Loads(checked, batch_results)
    if ctx.engine.dialect.name == "sqlite":
        done = load_batch(ctx, unwalked(checked))
        return Loads(checked, lambda: done)
    futures = [load_source_task.submit(ctx, f, p) for f, p in checked]
    return Loads(checked, lambda: [_settled(f) for f in futures])


def validate_and_load(
    ctx: Context, staged: list[tuple[Fetched, Parsed]], order: dict[str, int], loader: Executor
) -> list[Loads]:
    """Validate a batch (``validate_all``) and start loading each questionnaire's sources as soon
    as they are checked, behind the loads under way: the load processes need not wait for the
    whole batch."""
    loads: list[Loads] = []
    validate_all(ctx, staged, order, lambda checked: loads.append(load_all(ctx, checked, loader)))
    return loads


def finish_loads(loads: Loads, track: Tracker) -> None:
    """Wait for a batch's loads and track each source's outcome; a failed load rolled back
    alone, keeping the source's earlier rows."""
    for (fetched, parsed), result in zip(loads.checked, loads.results(), strict=True):
        if isinstance(result, BrokenProcessPool):
            track.failed(fetched.source, SourceError("the load process stopped"), fetched)
        elif isinstance(result, BaseException):
            track.failed(fetched.source, result, fetched)
        else:
            track.loaded(fetched, parsed)


def consolidate(
    ctx: Context, chosen: list[Source], known: dict[str, load.LastLoad], track: Tracker
) -> None:
    """Ingest (fetch and parse), validate and load ``chosen`` in batches of
    ``run.batch_sources``, as a pipeline.

    While batch k is validated (the flow's thread), batch k+1 is ingested (the task runner's
    threads and the parse processes) and batch k-1 loaded (the load processes); each
    questionnaire of batch k queues its loads as soon as it is validated, behind k-1's. At
    most three batches are held in memory, whatever the size of the province.
    """
    order = {s.key: i for i, s in enumerate(chosen)}
    size = ctx.settings.run.batch_sources
    warming = None
    in_flight: dict[PrefectFuture[Ingested], Source] = {}
    loading: list[Loads] = []
    with ThreadPoolExecutor(1, thread_name_prefix="khaosat-load") as loader:
        # One round past the end, with no batch to ingest, validates and loads the last one.
        for start in range(0, len(chosen) + size, size):
            batch = unchanged_files(ctx, chosen[start : start + size], known, track)
            ingesting = {ingest_source.submit(ctx, s, known.get(s.key)): s for s in batch}
            if batch and warming is None:  # something may need validating: GX is needed soon
                warming = warm_up()
            loads = validate_and_load(ctx, collect_ingested(in_flight, track), order, loader)
            for done in loading:
                finish_loads(done, track)
            loading, in_flight = loads, ingesting
        for done in loading:
            finish_loads(done, track)
    if warming is not None:  # nothing outlives the step, even when nothing was validated
        warming.join()


@flow(name="khaosat-nightly", log_prints=False, on_failure=[on_failure])
def nightly(
    config: str,
    school: str | None = None,
    questionnaire: str | None = None,
    failed_only: bool = False,
    force: bool = False,
    as_of: dt.datetime | None = None,
) -> RunSummary:
    """Consolidate one campaign: every source (or a re-run's selection), then marts, workbooks.

    ``force`` re-processes sources whose content is unchanged since their last load; a re-run of
    a school or of failed sources forces them. ``as_of`` fixes "now" for pending/missing.
    """
    settings = load_settings(Path(config))
    ctx = prepare(settings, str(flow_run.id or uuid.uuid4()))
    chosen = select_sources(
        ctx, school=school, questionnaire=questionnaire, failed_only=failed_only
    )
    force = force or failed_only or school is not None
    known = {} if force else load.last_loads(ctx.engine, ctx.campaign_id)
    # one run of a campaign at a time: a second waits (run.lock_wait_seconds) or exits clearly
    with run_lock(ctx):
        load.start_run(ctx.engine, ctx.run_id, ctx.campaign_id)
        track = Tracker(ctx, chosen)
        try:
            consolidate(ctx, chosen, known, track)
            published = publish_all(ctx, as_of or _now(settings), skip_unchanged=not force)
        except BaseException:
            # the run row says so, rather than 'running' until another run takes the lock
            load.finish_run(ctx.engine, ctx.run_id, status="failed")
            raise
        workbooks, feedback = published or ([], [])

        load.finish_run(ctx.engine, ctx.run_id)
        if ctx.gsheets is not None:
            ctx.gsheets.close()
        summary = RunSummary(
            run_id=ctx.run_id,
            campaign_id=ctx.campaign_id,
            outcomes=[track.outcomes[s.key] for s in chosen if s.key in track.outcomes],
            workbooks=workbooks,
            feedback=feedback,
            published=published is not None,
            warehouse_url=db.safe_url(settings.warehouse_url),
        )
    track.reporter.finish(summary)
    notify_failed_sources(settings, summary)
    return summary


def run_lock(ctx: Context) -> RunLock:
    """The campaign's lock for this run: one run or publish per campaign at a time."""
    return RunLock(
        ctx.engine,
        ctx.campaign_id,
        ctx.run_id,
        wait_seconds=ctx.settings.run.lock_wait_seconds,
        timezone=ctx.settings.campaign.timezone,
    )


def publish_all(
    ctx: Context, now: dt.datetime, *, skip_unchanged: bool = False
) -> tuple[list[Path], list[Path]] | None:
    """Marts, then alerts on them, then the workbooks and the schools' feedback.

    With ``skip_unchanged`` nothing is rebuilt when the warehouse, the settings and the side of
    the deadline are what the last publish saw and its files are still there: a quiet night
    then costs seconds instead of minutes. Returns None when it skipped.
    """
    key = f"published:{ctx.campaign_id}"
    if skip_unchanged:
        with ctx.engine.connect() as conn:
            stored = json.loads(db.get_meta(conn, key) or "{}")
        files = [Path(p) for p in stored.get("workbooks", []) + stored.get("feedback", [])]
        if stored.get("inputs") == _publish_inputs(ctx, now) and all(p.exists() for p in files):
            warehouse_alerts.mark_seen(ctx.engine, ctx.campaign_id, now)
            return None
    build_marts(ctx, now)
    raise_alerts(ctx, now)
    workbooks, feedback = publish_workbooks(ctx), publish_feedback(ctx)
    state = {
        "inputs": _publish_inputs(ctx, now),
        "workbooks": [str(p) for p in workbooks],
        "feedback": [str(p) for p in feedback],
    }
    with ctx.engine.begin() as conn:
        db.set_meta(conn, key, json.dumps(state, ensure_ascii=False))
    return workbooks, feedback


def _publish_inputs(ctx: Context, now: dt.datetime) -> str:
    """What the published outputs depend on: the warehouse's inputs (``published_inputs``),
    the settings, the side of the deadline ``now`` is on, and the previous campaign's publish
    (year-on-year figures)."""
    c = ctx.settings.campaign
    previous = ""
    if c.previous:
        with ctx.engine.connect() as conn:
            previous = db.get_meta(conn, f"published:{c.previous}") or ""
    return marts.published_inputs(
        ctx.engine,
        ctx.campaign_id,
        ctx.settings.model_dump(mode="json"),
        now > c.deadline_at,
        previous,
        importlib.metadata.version("khaosat"),
    )


@flow(name="khaosat-publish", log_prints=False)
def publish(config: str, as_of: dt.datetime | None = None) -> tuple[list[Path], list[Path]]:
    """Rebuild marts, alerts and workbooks from the warehouse, without fetching anything."""
    settings = load_settings(Path(config))
    ctx = prepare(settings, str(flow_run.id or uuid.uuid4()))
    with run_lock(ctx):
        published = publish_all(ctx, as_of or _now(settings))
        assert published is not None  # noqa: S101 - publish_all skips only when asked to
        return published


@flow(name="khaosat-province", log_prints=False)
def province_night(config: str) -> int:
    """One province's night on a work pool: the nightly flow (a subflow) with the task runner
    ``config`` asks for. Returns the run's exit code (0 all loaded or unchanged, 1 a source
    failed, 3 only absent files), as ``khaosat run`` would exit with."""
    settings = load_settings(Path(config))
    configured = nightly.with_options(task_runner=task_runner(settings))
    return configured(config=str(settings.config_path)).exit_code


def run(settings: Settings, **params: Any) -> RunSummary:
    """Run the nightly flow for ``settings`` on its configured task runner (threads or Dask)."""
    configured = nightly.with_options(task_runner=task_runner(settings))
    return configured(config=str(settings.config_path), **params)
