"""Consolidating a run's sources in batches: ingest, validate, load, as a pipeline.

``consolidate`` keeps three batches in flight (one ingested, one validated, one loaded);
``Tracker`` records each source's outcome once, in the ledger, for the reporter and the
summary; ``unwalked`` hands a batch to a task without Prefect walking it.
"""

from __future__ import annotations

import contextvars
import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar, cast

from prefect import task
from prefect.cache_policies import NONE
from prefect.futures import PrefectFuture, as_completed
from prefect.utilities.annotations import quote

from flows.fetch import unchanged
from flows.fetch.files import SourceAbsent
from flows.pipeline import prefect_ui, progress
from flows.pipeline.context import Context, by_questionnaire
from flows.pipeline.faults import (
    RunFault,
    WorkerDied,
    run_fault,
    stop_if_signalled,
    worker_died,
)
from flows.pipeline.pools import discard_pools, in_processes, load_pool, tried
from flows.pipeline.tasks import (
    Ingested,
    failure_message,
    ingest_source,
    load_source,
    load_source_task,
    validate_questionnaire,
)
from flows.pipeline.warmup import warm_up
from flows.registry import Refused
from schemas.records import Fetched, Parsed, Source, SourceOutcome
from warehouse import ledger, load

T = TypeVar("T")


def unwalked(value: T) -> T:
    """``value`` as a task parameter that Prefect hands over without walking it.

    Prefect walks each parameter twice as a task starts, looking for futures and states to
    resolve, into every list, dict and dataclass: a batch's parsed sheets are large and hold no
    futures, so walking them is pure cost (benchmarks/README.md). The task receives ``value``
    itself.
    """
    return cast(T, quote(value))


def _settled(future: PrefectFuture[T]) -> T | BaseException:
    """A task's value, or the exception it ended with (a source's problem is its own)."""
    return tried(future.result)


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
        """``source``'s file is not there."""
        msg = failure_message(source, exc)
        ledger.record_absent(self.ctx.engine, self.ctx.campaign_id, self.ctx.run_id, source, msg)
        self._done(SourceOutcome(source, "absent", message=msg))

    def failed(self, source: Source, exc: BaseException, fetched: Fetched | None = None) -> None:
        """``source`` cannot be used, for the reason ``exc`` gives; a process that died left it
        ``stopped``, and the machine's fault (a full disk, a read-only warehouse) stops the run
        (RunFault): neither is the school's."""
        if isinstance(exc, WorkerDied):
            self.stopped(source, exc, fetched)
            return
        fault = run_fault(exc, self.ctx.settings)
        if fault is not None:
            raise RunFault(fault) from exc
        msg = failure_message(source, exc)
        ctx = self.ctx
        ledger.record_failure(ctx.engine, ctx.campaign_id, ctx.run_id, source, msg, fetched)
        name = fetched.filename if fetched else ""
        self._done(SourceOutcome(source, "failed", message=msg, filename=name))

    def refused(self, refused: list[Refused]) -> None:
        """These sources' registry rows could not be used: failed, each with its row's line
        (file, line, value, nearest valid one), before anything is fetched."""
        if not refused:
            return
        lines = [(r.source, f"{r.source.label}: {r.message}") for r in refused]
        ledger.record_refused(self.ctx.engine, self.ctx.campaign_id, self.ctx.run_id, lines)
        for source, msg in lines:
            self._done(SourceOutcome(source, "failed", message=msg))

    def stopped(self, source: Source, exc: BaseException, fetched: Fetched | None = None) -> None:
        """The process on ``source`` died: not judged, no ledger row (it keeps its previous
        state and rows), tried again on the next run."""
        name = fetched.filename if fetched else ""
        self._done(SourceOutcome(source, "stopped", failure_message(source, exc), filename=name))

    def unchanged(self, fetched: list[Fetched]) -> None:
        """These sources' content is that of their last load."""
        ctx = self.ctx
        ledger.record_unchanged_many(ctx.engine, ctx.campaign_id, ctx.run_id, fetched)
        for f in fetched:
            self._done(SourceOutcome(f.source, "unchanged", filename=f.filename))

    def loaded(self, fetched: Fetched, parsed: Parsed) -> None:
        """``fetched``'s source was loaded with ``parsed``."""
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
                likely_renamed=dict(parsed.likely_renamed),
            )
        )


@task(name="load", task_run_name=prefect_ui.load_batch_name, cache_policy=NONE)
def load_batch(ctx: Context, checked: list[tuple[Fetched, Parsed]]) -> list[Any]:
    """Load a batch's sources, each in its own transaction, in the load processes (or in this
    thread): each source's LoadResult, or the exception its load ended with (it rolled back)."""
    if load_pool(ctx.settings, ctx.engine) is None:  # in this thread, on the flow's Engine
        return [tried(load_source, ctx, f, p) for f, p in checked]
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
    ctx: Context, batch: list[Source], known: dict[str, ledger.LastLoad], track: Tracker
) -> list[Source]:
    """The sources of ``batch`` to ingest: a local file whose modified time and bytes are those
    of its last load is recognised here with a stat and a hash, and recorded unchanged without
    a task."""
    s = ctx.settings
    tz, folders = s.campaign.timezone, ctx.source_folders
    same: list[Fetched] = []
    rest: list[Source] = []
    for source in batch:
        seen = unchanged(source, known.get(source.key), tz, folders, s.limits)
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
        stop_if_signalled()
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


def validate_staged(
    ctx: Context, code: str, staged: list[tuple[Fetched, Parsed]], order: dict[str, int]
) -> list[tuple[Fetched, Parsed]]:
    """One questionnaire's parsed sources of a batch, validated in one run, in registry order so
    a run is reproducible: each with its checked sheet."""
    pairs = sorted(staged, key=lambda pair: order[pair[0].source.key])
    result = validate_questionnaire(ctx, code, unwalked([p for _, p in pairs]))
    return list(zip([f for f, _ in pairs], result, strict=True))


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
        future = loader.submit(context.run, tried, load_batch, ctx, unwalked(checked))

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
    ctx: Context,
    ingesting: dict[PrefectFuture[Ingested], Source],
    order: dict[str, int],
    loader: Executor,
    track: Tracker,
) -> list[Loads]:
    """Take a batch's ingested sources one questionnaire at a time, as ``by_questionnaire``
    submitted them; validate each questionnaire's sources once they are all parsed and start
    loading them, behind the loads under way. The load processes need not wait for the whole
    batch to be parsed: when the last batch is, only its last questionnaire is left to load."""
    by_code: dict[str, dict[PrefectFuture[Ingested], Source]] = defaultdict(dict)
    for future, source in ingesting.items():
        by_code[source.questionnaire][future] = source
    loads: list[Loads] = []
    for code, futures in sorted(by_code.items()):
        staged = collect_ingested(futures, track)
        if staged:
            loads.append(load_all(ctx, validate_staged(ctx, code, staged, order), loader))
    return loads


def finish_loads(loads: Loads, track: Tracker) -> None:
    """Wait for a batch's loads and track each source's outcome; a failed load rolled back
    alone, keeping the source's earlier rows."""
    for (fetched, parsed), result in zip(loads.checked, loads.results(), strict=True):
        if isinstance(result, BrokenProcessPool):
            track.stopped(fetched.source, worker_died("load", fetched.filename), fetched)
        elif isinstance(result, BaseException):
            track.failed(fetched.source, result, fetched)
        else:
            track.loaded(fetched, parsed)


def consolidate(
    ctx: Context, chosen: list[Source], known: dict[str, ledger.LastLoad], track: Tracker
) -> None:
    """Ingest (fetch and parse), validate and load ``chosen`` in batches of
    ``run.batch_sources``, as a pipeline.

    While batch k is validated (the flow's thread), batch k+1 is ingested (the task runner's
    threads and the parse processes) and batch k-1 loaded (the load processes). A batch is
    ingested one questionnaire after another, and each questionnaire of batch k is validated
    as soon as its sources are parsed and queues its loads, behind k-1's. At most three
    batches are held in memory, whatever the size of the province.
    """
    order = {s.key: i for i, s in enumerate(chosen)}
    size = ctx.settings.run.batch_sources
    warming = None
    in_flight: dict[PrefectFuture[Ingested], Source] = {}
    loading: list[Loads] = []
    with ThreadPoolExecutor(1, thread_name_prefix="khaosat-load") as loader:
        try:
            # One round past the end, with no batch to ingest, validates and loads the last one.
            for start in range(0, len(chosen) + size, size):
                stop_if_signalled()
                batch = unchanged_files(ctx, chosen[start : start + size], known, track)
                ingesting = {
                    ingest_source.submit(ctx, s, known.get(s.key)): s
                    for s in by_questionnaire(batch)
                }
                if batch and warming is None:  # something may need validating: GX soon
                    warming = warm_up()
                loads = validate_and_load(ctx, in_flight, order, loader, track)
                for done in loading:
                    finish_loads(done, track)
                loading, in_flight = loads, ingesting
            for done in loading:
                finish_loads(done, track)
        except BaseException:
            # A signal or the machine's fault stops the run: the loads queued behind it are
            # cancelled rather than waited for (each source is its own transaction).
            discard_pools()
            raise
    if warming is not None:  # nothing outlives the step, even when nothing was validated
        warming.join()
