"""One run's context: the settings, questionnaires, registry and warehouse every task needs.

``prepare`` reads and syncs them once per flow run (``check_inputs`` reads them without
syncing, for a command to reject them before its flow starts); ``select_sources`` picks what a
run (or a re-run) processes; ``run_lock`` is the campaign's lock; ``read_ahead`` lets the parse
processes start on the first batch before the flow does; ``local_now`` is the flow's clock.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from flows.alerts import ThresholdError, Thresholds
from flows.comments import CodebookError, load_codebook
from flows.fetch import GOOGLE_KINDS, discover, new_content
from flows.fetch.drive import list_drive_folder
from flows.fetch.google import GSheetsClient, open_client
from flows.pipeline.pools import parse_pool, submit
from flows.pipeline.processes import long_lived_imports
from flows.pipeline.read_ahead import read_tables_ahead
from flows.registry import FolderRow, Refused, Registry, enrollment_warning, is_folder_row
from flows.registry import read_registry as read_registry_files
from flows.settings import Settings, SettingsError
from flows.validate import create_context
from schemas import Questionnaire, load_questionnaires
from schemas.questionnaire import SCHEMAS_DIR
from schemas.records import Found, School, Source
from warehouse import db, ledger, registry
from warehouse.lock import RunLock

log = logging.getLogger(__name__)


class Context:
    """What every task of one run needs, prepared once by the flow.

    Deliberately not a dataclass: Prefect walks every dataclass, list and dict a task receives
    (looking for futures) each time a task starts, and the Context holds the whole registry,
    which made a run quadratic in its sources (benchmarks/README.md). A plain object is passed
    through as it is, and pickles for Dask.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        questionnaires: dict[str, Questionnaire],
        schools: dict[str, School],
        sources: list[Source],
        engine: Engine,
        refused: list[Refused] | None = None,
        salt: str,
        run_id: str,
        gsheets: GSheetsClient | None = None,
    ) -> None:
        self.settings = settings
        #: the folders file sources must resolve into (``Settings.source_folders``), resolved
        #: once a run rather than at each of a province's thousand fetches.
        self.source_folders = settings.source_folders
        self.questionnaires = questionnaires
        self.schools = schools
        self.sources = sources
        #: the sources bad registry rows fail, each with its row's line.
        self.refused = refused or []
        self.engine = engine
        self.salt = salt
        self.run_id = run_id
        #: the Google Sheets client, opened only when the registry has gsheet sources.
        self.gsheets = gsheets

    @property
    def campaign_id(self) -> str:
        """The id of the run's campaign."""
        return self.settings.campaign.id

    def __getstate__(self) -> dict[str, Any]:
        """What Dask pickles: an Engine (pool, locks) and an open Sheets client do not pickle,
        so the warehouse URL and whether Sheets were open go instead."""
        state = dict(self.__dict__)
        state["engine"] = self.engine.url.render_as_string(hide_password=False)
        state["gsheets"] = self.gsheets is not None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """On the worker: the warehouse and the Sheets client reopened."""
        state = dict(state)
        state["engine"] = db.shared_engine(state["engine"])
        state["gsheets"] = open_client(state["settings"].gsheets) if state["gsheets"] else None
        self.__dict__.update(state)


def prepare(settings: Settings, run_id: str) -> Context:
    """Read schemas and registry, open and upgrade the warehouse, sync the registry into it."""
    questionnaires, found = check_inputs(settings)
    sources = found.sources
    # said here, once a run: read_ahead reads the registry too
    for note in found.notes:
        log.warning(note)
    warning = enrollment_warning(settings.registry.schools, found.schools)
    if warning:
        log.warning(warning)
    engine = db.connect(settings.warehouse_url)
    db.migrate(engine)
    # a refused row's source is registered too: status lists it, failed, with its line
    listed = [*sources, *(r.source for r in found.refused)]
    # a folder row that could not be listed this time keeps the sources it found before
    unlisted = [
        r.source.location
        for r in found.refused
        if is_folder_row(r.source) and r.source.found_in is None  # a row, not a file
    ]
    registry.sync_registry(
        engine,
        settings.campaign,
        found.schools,
        questionnaires,
        sources=listed,
        unlisted_folders=unlisted,
    )
    registry.replace_superseded(engine, settings.campaign.id, run_id, found.superseded)
    return Context(
        settings=settings,
        questionnaires=questionnaires,
        schools={school.code: school for school in found.schools},
        sources=sources,
        refused=found.refused,
        engine=engine,
        salt=db.get_salt(engine),
        run_id=run_id,
        gsheets=(
            open_client(settings.gsheets) if any(s.kind in GOOGLE_KINDS for s in sources) else None
        ),
    )


def check_inputs(settings: Settings) -> tuple[dict[str, Questionnaire], Registry]:
    """The thresholds, questionnaires and registry checked, before anything is fetched: as
    ``read_registry``, and SettingsError for a threshold that cannot be used. The commands call
    it before starting a flow, so that a user's mistake is one line, not a failed flow run's
    traceback."""
    try:
        Thresholds.from_mapping(settings.thresholds)
        load_codebook(settings.codebook_dir)
    except (ThresholdError, CodebookError) as exc:
        raise SettingsError(f"{settings.config_path}: {exc}") from exc
    return read_registry(settings)


def read_registry(settings: Settings) -> tuple[dict[str, Questionnaire], Registry]:
    """The questionnaires and the registry (``flows.registry.read_registry``: bad rows are
    refused sources, not errors), each folder row of sources.csv listed and expanded into the
    sources it discovers (``flows.fetch.discover.expand``); raises QuestionnaireError or
    RegistryError for files that cannot be used at all."""
    questionnaires = load_questionnaires(settings.schemas_dir or SCHEMAS_DIR)
    found = read_registry_files(
        settings.registry.schools, settings.registry.sources, questionnaires
    )
    return questionnaires, discover.expand(
        found,
        {code: q.levels for code, q in questionnaires.items()},
        folder_listers(settings),
        settings.registry.sources.parent,
    )


def folder_listers(settings: Settings) -> dict[str, discover.Lister]:
    """How each kind of folder row of sources.csv is listed: ``folder`` rows from the file
    system, confined to the campaign's folders; ``drive`` rows with Drive's ``files.list``
    (``drive_lister``)."""
    base = settings.registry.sources.parent
    return {
        "folder": discover.local_lister(base, settings.source_folders),
        "drive": drive_lister(settings),
    }


#: Drive folders listed for the run under way, by endpoint and location. A command reads the
#: registry up to three times within seconds (its checks, the read-ahead, the flow), and one
#: listing of a large folder costs a page per 100 files: each folder is listed once a run.
_drive_listings: dict[tuple[str, str], list[Found]] = {}


def drive_lister(settings: Settings) -> discover.Lister:
    """The lister of ``drive`` folder rows: ``list_drive_folder`` with a client opened on first
    use, each folder listed once until ``forget_drive_listings``."""
    client: list[GSheetsClient] = []

    def lister(row: FolderRow) -> list[Found]:
        key = (settings.gsheets.endpoint, row.target)
        if key not in _drive_listings:
            if not client:
                client.append(open_client(settings.gsheets))
            _drive_listings[key] = list_drive_folder(row.target, client[0])
        return _drive_listings[key]

    return lister


def forget_drive_listings() -> None:
    """Forget the Drive folders listed: the next run (``khaosat serve`` keeps one process for
    every night) lists them afresh."""
    _drive_listings.clear()


def select_sources(
    ctx: Context,
    *,
    school: str | None = None,
    questionnaire: str | None = None,
    failed_only: bool = False,
) -> list[Source]:
    """The sources a run (or a re-run) processes. A re-run of failed sources takes those whose
    last load failed and those no run has processed yet: a registry row fixed since the last
    run (a questionnaire or a path corrected) is a new source to the ledger."""
    chosen = _of(ctx.sources, school, questionnaire)
    if failed_only:
        states = ledger.latest_statuses(ctx.engine, ctx.settings.campaign.id)
        chosen = [s for s in chosen if states.get(s.key, "failed") == "failed"]
    return chosen


def select_refused(
    ctx: Context, *, school: str | None = None, questionnaire: str | None = None
) -> list[Refused]:
    """The sources bad registry rows fail that a run (or a re-run) records: all of them, or
    those of ``school`` and ``questionnaire``, where given (a re-run of failed sources takes
    them all: they failed, and fail again until their row is fixed)."""
    keep = {s.key for s in _of([r.source for r in ctx.refused], school, questionnaire)}
    return [r for r in ctx.refused if r.source.key in keep]


def _of(sources: list[Source], school: str | None, questionnaire: str | None) -> list[Source]:
    """The sources of ``school`` and of ``questionnaire``, where given, in any letter case."""
    if school:
        sources = [s for s in sources if s.school_code.upper() == school.upper()]
    if questionnaire:
        sources = [s for s in sources if s.questionnaire.upper() == questionnaire.upper()]
    return sources


def by_questionnaire(batch: list[Source]) -> list[Source]:
    """A batch in the order its sources are ingested: one questionnaire after another (by
    code, the order they are validated in), each in registry order."""
    return sorted(batch, key=lambda source: source.questionnaire)


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
        sources = read_registry(settings)[1].sources
    except Exception:  # noqa: BLE001 - the flow reads the registry again and says what is wrong
        return
    chosen = _of(sources, school, questionnaire)[: settings.run.batch_sources]
    known = {} if params.get("force") or school is not None else _known_loads(settings)
    reading = False
    folders = settings.source_folders
    for source in by_questionnaire(chosen):  # in the order the flow will ask for them
        content = new_content(source, settings.limits, known.get(source.key), folders)
        if content is not None and source.path is not None:
            submit(pool, read_tables_ahead, content, source.path.name, settings.limits)
            reading = True
    if reading:  # something will need validating: GX is imported now, before any data
        with long_lived_imports():
            create_context()


def _known_loads(settings: Settings) -> dict[str, ledger.LastLoad]:
    """``ledger.last_loads`` of the campaign, or nothing if the warehouse cannot tell yet (not
    made, or not migrated); a SQLite file that does not exist is not created."""
    if not db.exists(settings.warehouse_url):
        return {}
    try:
        engine = db.connect(settings.warehouse_url)
        try:
            return ledger.last_loads(engine, settings.campaign.id)
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001 - no tables yet, no driver, no server: the flow reports it
        return {}


def run_lock(ctx: Context) -> RunLock:
    """The campaign's lock for this run: one run or publish per campaign at a time."""
    return RunLock(
        ctx.engine,
        ctx.campaign_id,
        ctx.run_id,
        wait_seconds=ctx.settings.run.lock_wait_seconds,
        timezone=ctx.settings.campaign.timezone,
    )


def local_now(settings: Settings) -> dt.datetime:
    """The flow's clock: now in the campaign's time zone, naive as the warehouse stores it."""
    return dt.datetime.now(ZoneInfo(settings.campaign.timezone)).replace(tzinfo=None)
