"""``khaosat status``: where every source of a campaign stands, read from the warehouse.

What a data officer needs the morning after: which sources failed and why (first, since they
need a fix), which files are still absent, and when everything else was last loaded; plus the
last run and whether a run is going on right now. Everything comes from the run ledger
(``load_ledger``), ``run``, ``response`` and ``run_lock``: no Prefect, no files, no network, so
it answers in a second even while a run holds the campaign.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import Engine

from flows.cli.common import make_console, print_error
from flows.settings import SettingsError, load_settings
from schemas.campaign import DEFAULT_TIMEZONE
from warehouse import db
from warehouse.ledger import RunRecord, has_ledger, last_run, source_ledgers
from warehouse.lock import LockInfo, has_lock_table, holder_of
from warehouse.registry import SupersededFile, superseded_files

#: States of a source, in the order a data officer should look at them.
STATE_ORDER = {"failed": 0, "absent": 1, "loaded": 2, "unchanged": 3}
STATE_STYLE = {"failed": "bold red", "absent": "yellow", "loaded": "green", "unchanged": "dim"}
#: Reason shown for a registered source that no run has looked at yet.
NOT_RUN_YET = "no run has processed this source yet"


@dataclass(frozen=True)
class SourceState:
    """One registered source and where it stands.

    state: the latest ledger status (loaded | unchanged | failed | absent); a source no run
    has processed yet is ``absent`` with reason NOT_RUN_YET. reason: why it failed or is
    absent, one line. rows: responses from this source in the warehouse now (a failed
    source keeps the rows of its last good load). last_loaded_at: its last successful load.
    checked_at: when the latest run looked at it. All times campaign local time.
    """

    school_code: str
    school_name: str | None
    questionnaire: str
    location: str
    state: str
    reason: str | None
    rows: int
    last_loaded_at: dt.datetime | None
    checked_at: dt.datetime | None
    #: the folder or drive row of sources.csv that discovered it; None for a row of its own.
    found_in: str | None = None


@dataclass
class CampaignStatus:
    """Everything ``khaosat status`` shows for one campaign."""

    campaign_id: str
    sources: list[SourceState] = field(default_factory=list)
    last_run: RunRecord | None = None
    #: the run holding the campaign's lock right now, if any.
    running: LockInfo | None = None
    #: the campaign's IANA time zone, in which every time above is (naive) local time.
    timezone: str = DEFAULT_TIMEZONE
    #: files of folder sources not used, their school having a newer one, as last found.
    superseded: list[SupersededFile] = field(default_factory=list)

    def count(self, state: str) -> int:
        """How many sources are in ``state``."""
        return sum(s.state == state for s in self.sources)


def _reason(school_code: str, location: str, message: str | None) -> str | None:
    # The table has school and file columns: the reason need not repeat them.
    if not message:
        return None
    return message.removeprefix(f"{school_code} {location}: ")


def source_states(
    engine: Engine, campaign_id: str, registry_files: tuple[str, ...] = ()
) -> list[SourceState]:
    """Every active registered source of the campaign with its state, failed first (those a
    bad row of ``registry_files``, schools.csv and sources.csv, fails before the others: one
    fix of the registry clears them), then absent, then the rest (each group by school,
    questionnaire, location)."""
    states = [
        SourceState(
            school_code=r.school_code,
            school_name=r.school_name,
            questionnaire=r.questionnaire,
            location=r.location,
            state=r.status or "absent",
            reason=_reason(r.school_code, r.location, r.message) if r.status else NOT_RUN_YET,
            rows=r.n_responses,
            last_loaded_at=r.last_loaded_at,
            checked_at=r.checked_at,
            found_in=r.found_in,
        )
        for r in source_ledgers(engine, campaign_id)
    ]

    def registry_row(s: SourceState) -> bool:
        return bool(registry_files) and (s.reason or "").startswith(registry_files)

    return sorted(
        states,
        key=lambda s: (
            STATE_ORDER.get(s.state, 9),
            not registry_row(s),
            s.school_code,
            s.questionnaire,
            s.location,
        ),
    )


def campaign_status(
    engine: Engine,
    campaign_id: str,
    timezone: str = DEFAULT_TIMEZONE,
    registry_files: tuple[str, ...] = (),
) -> CampaignStatus:
    """Sources, last run and the run in progress (if any) of one campaign, whose times are in
    ``timezone`` (``campaign.timezone``); see ``source_states`` for ``registry_files``."""
    return CampaignStatus(
        campaign_id=campaign_id,
        sources=source_states(engine, campaign_id, registry_files),
        last_run=last_run(engine, campaign_id),
        running=holder_of(engine, campaign_id) if has_lock_table(engine) else None,
        timezone=timezone,
        superseded=superseded_files(engine, campaign_id),
    )


def _when(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else ""


#: Below this many columns ``render_status`` lays the table out for a narrow terminal.
NARROW = 120


def render_status(status: CampaignStatus, config: Path | None = None, width: int = 160) -> Table:
    """One table a data officer can act on: failed sources (with why) first, then absent ones,
    then the rest; the last run and the run in progress above, what to do next below.

    Narrower than NARROW columns (an 80-column terminal), the school name and last-loaded
    columns are left out and the file leads its reason in one wrapped column, so state, school,
    questionnaire and the whole reason still fit.
    """
    counts = ", ".join(f"{status.count(s)} {s}" for s in STATE_ORDER)
    header = [f"Campaign {status.campaign_id}: {len(status.sources)} sources ({counts})"]
    run = status.last_run
    if run is not None:
        header.append(
            f"Last run {run.run_id}: {run.status}, started {_when(run.started_at)}"
            + (f", finished {_when(run.finished_at)}" if run.finished_at else ", not finished")
            + f"; {run.n_loaded} loaded, {run.n_unchanged} unchanged, {run.n_failed} failed, "
            f"{run.n_absent} absent"
        )
        stopped = last_run_line(run)
        if stopped:  # the run stopped before its end: what the officer must see first
            header.append(f"[bold red]{escape(stopped)}[/]")
    if status.running is not None:
        r = status.running
        header.append(f"Running now: run {r.run_id} on {r.holder} since {_when(r.acquired_at)}")
    suffix = f" --config {config}" if config else ""
    hints = []
    if run is None:
        hints.append(f"No run yet: khaosat run{suffix}")
    if status.count("failed"):
        hints.append(f"fix the file, then: khaosat rerun --failed{suffix}")
    if run is not None and run.status == "failed":
        hints.append(f"fix what the last run says, then: khaosat run{suffix}")
    if run is not None and run.status == "error":
        hints.append(f"fix the machine as the last run says, then: khaosat run{suffix}")
    if status.superseded:  # not sources: the files the folders hold beside the ones used
        hints.append(f"Not used, the school has a newer file ({len(status.superseded)}):")
        hints += [
            escape(f"  {f.school_code} {f.questionnaire} {f.location}: {f.message}")
            for f in status.superseded
        ]

    table = Table(
        title="\n".join(header),
        title_justify="left",
        caption="\n".join(hints) or None,
        caption_justify="left",
        caption_style="bold",
        header_style="bold",
    )
    if width < NARROW:
        _narrow_rows(table, status.sources)
    else:
        _wide_rows(table, status.sources)
    return table


#: How ``status`` names a run that stopped before its end, in the officer's language.
STOPPED_RUN = {"failed": "thất bại", "error": "dừng vì lỗi máy", "interrupted": "bị dừng"}


def last_run_line(run: RunRecord) -> str | None:
    """ "Lần chạy cuối: thất bại lúc 2026-12-07 01:30 — lý do" for a run that stopped before
    its end (failed, error, interrupted); None for one that ran to its end."""
    said = STOPPED_RUN.get(run.status)
    if said is None:
        return None
    when = _when(run.finished_at or run.started_at)
    return f"Lần chạy cuối: {said} lúc {when}" + (f" — {run.message}" if run.message else "")


def _state(s: SourceState) -> str:
    style = STATE_STYLE.get(s.state, "")
    return f"[{style}]{s.state}[/]" if style else s.state


def _wide_rows(table: Table, sources: list[SourceState]) -> None:
    table.add_column("state", no_wrap=True)
    table.add_column("school", no_wrap=True)
    table.add_column("school name")
    table.add_column("questionnaire", no_wrap=True)
    # A path has no spaces to wrap at: fold it rather than cut it, the officer needs all of it.
    table.add_column("file", overflow="fold")
    table.add_column("reason", min_width=30, ratio=1)
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("last loaded", no_wrap=True)
    for s in sources:
        table.add_row(
            _state(s),
            s.school_code,
            # as plain text, not markup: a placeholder such as "[email]" is shown as it is
            Text(s.school_name or ""),
            s.questionnaire,
            Text(s.location + (f" (in {s.found_in})" if s.found_in else "")),
            Text(s.reason or ""),
            str(s.rows),
            _when(s.last_loaded_at),
        )


def _narrow_rows(table: Table, sources: list[SourceState]) -> None:
    table.add_column("state", no_wrap=True)
    table.add_column("school", no_wrap=True)
    table.add_column("questionnaire", no_wrap=True)
    table.add_column("file: reason", overflow="fold", ratio=1)
    table.add_column("rows", justify="right", no_wrap=True)
    for s in sources:
        reason = f"{s.location}: {s.reason}" if s.reason else s.location
        table.add_row(_state(s), s.school_code, s.questionnaire, Text(reason), str(s.rows))


def iso_local(value: dt.datetime, zone: ZoneInfo) -> str:
    """A stored time (naive, campaign local time) as ISO 8601 with the campaign's offset, e.g.
    ``2024-11-05T01:30:00+07:00``."""
    local = value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)
    return local.isoformat(timespec="seconds")


def _jsonable(value: Any, zone: ZoneInfo) -> Any:
    if isinstance(value, dt.datetime):
        return iso_local(value, zone)
    if isinstance(value, dict):
        return {k: _jsonable(v, zone) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v, zone) for v in value]
    return value


def _run_json(run: RunRecord) -> dict[str, Any]:
    # The JSON's last_run names no campaign: the document's campaign_id already does.
    data = asdict(run)
    del data["campaign_id"]
    return data


def status_json(status: CampaignStatus) -> str:
    """The status as JSON text for scripts and monitoring (``khaosat status --json``).

    ``{"campaign_id", "counts": {state: n}, "sources": [...], "last_run": {...} | null,
    "running": {...} | null, "superseded": [...]}``; times ISO 8601 in campaign local time
    with its UTC offset (``2024-11-05T01:30:00+07:00`` in Asia/Ho_Chi_Minh).
    """
    data = {
        "campaign_id": status.campaign_id,
        "counts": {s: status.count(s) for s in STATE_ORDER},
        "sources": [asdict(s) for s in status.sources],
        "last_run": _run_json(status.last_run) if status.last_run else None,
        "running": asdict(status.running) if status.running else None,
        "superseded": [asdict(f) for f in status.superseded],
    }
    return json.dumps(_jsonable(data, ZoneInfo(status.timezone)), ensure_ascii=False, indent=2)


def status(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Path to khaosat.yaml.", show_default=True)
    ] = Path("khaosat.yaml"),
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON (for scripts and monitoring).")
    ] = False,
) -> None:
    """Show where every source stands: failed (and why) first, then absent, then the rest.

    Reads the warehouse only; safe to run while a run is going on. Exit code 2 when the config
    is unusable or the warehouse has no khaosat tables yet.
    """
    # Made here, not at import: COLUMNS is read when the command runs.
    console = make_console()
    try:
        settings = load_settings(config)
    except SettingsError as exc:
        print_error(exc, console)
        raise typer.Exit(2) from None
    url = settings.warehouse_url
    if not db.exists(url):
        print_error(
            f"no warehouse at {db.safe_url(url)} yet: "
            f"run khaosat run --config {settings.config_path}",
            console,
        )
        raise typer.Exit(2)
    engine = db.connect(url)
    try:
        if not has_ledger(engine):
            print_error(
                f"the warehouse at {db.safe_url(url)} has no khaosat tables "
                f"yet: run khaosat run --config {settings.config_path}",
                console,
            )
            raise typer.Exit(2)
        files = (str(settings.registry.schools), str(settings.registry.sources))
        current = campaign_status(
            engine, settings.campaign.id, settings.campaign.timezone, registry_files=files
        )
    finally:
        engine.dispose()
    if json_output:
        sys.stdout.write(status_json(current) + "\n")
    else:
        console.print(render_status(current, settings.config_path, console.width))
