"""The run ledger: runs, and one ledger row per source a run looked at.

A run row opens with ``start_run`` and closes with ``finish_run``, which counts its sources by
their last ledger status. ``replace_source`` (``warehouse.load``) appends the 'loaded' rows;
``record_failure`` / ``record_unchanged`` / ``record_absent`` append the other outcomes. A
failure KEEPS the source's previously loaded rows: a corrupt or unreadable re-upload never
erases last night's good data. The failure shows in the ledger, in one quarantine row, and as
status 'failed' in mart_completeness, and the next run reloads the source even if its bytes did
not change (see ``last_loads``). The queries here answer what a run and ``khaosat status`` ask
of the ledger.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from schemas.records import Fetched, Source
from warehouse import tables
from warehouse.bulk import writing
from warehouse.db import has_table, local_now
from warehouse.registry import ensure_source

#: quarantine.rule of the one row record_failure writes for a source that could not be used.
FAILURE_RULE = "source_unusable"


@dataclass(frozen=True)
class LedgerEntry:
    """The ledger fields that come from the fetched submission (all absent if none was)."""

    fingerprint: str | None = None
    archive_path: str | None = None
    filename: str | None = None
    modified_at: dt.datetime | None = None
    revision: str | None = None
    started_at: dt.datetime | None = None

    @classmethod
    def of(cls, fetched: Fetched | None, started_at: dt.datetime | None = None) -> LedgerEntry:
        """The entry of ``fetched`` (None: nothing was fetched), work having begun at
        ``started_at``."""
        if fetched is None:
            return cls(started_at=started_at)
        return cls(
            fingerprint=fetched.fingerprint,
            archive_path=str(fetched.archive_path),
            filename=fetched.filename,
            modified_at=fetched.modified_at,
            revision=fetched.revision,
            started_at=started_at,
        )


@dataclass(frozen=True)
class RunRecord:
    """A run's row of the run table: its status and its sources counted by ledger status."""

    run_id: str
    campaign_id: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    n_sources: int
    n_loaded: int
    n_unchanged: int
    n_failed: int
    n_absent: int
    #: why the run ended as 'error' or 'interrupted', in one line; "" otherwise.
    message: str = ""


@dataclass(frozen=True)
class SourceLedger:
    """One active registered source and its latest ledger row (status None if no run saw it).

    message: the latest row's message; checked_at: when that row was written; last_loaded_at:
    the source's last successful load; n_responses: its responses in the warehouse now.
    """

    school_code: str
    school_name: str | None
    questionnaire: str
    location: str
    status: str | None
    message: str | None
    checked_at: dt.datetime | None
    last_loaded_at: dt.datetime | None
    n_responses: int
    #: the folder or drive row of sources.csv the source was discovered in, if any.
    found_in: str | None = None


def record_failure(
    engine: Engine,
    campaign_id: str,
    run_id: str,
    source: Source,
    message: str,
    fetched: Fetched | None = None,
    *,
    started_at: dt.datetime | None = None,
) -> int:
    """Record that a source could not be used: a 'failed' ledger row and one quarantine row.

    ``message`` is the one-line reason for the data officer; ``fetched`` is the submission if
    it was fetched (its fingerprint and file name then go to the ledger and quarantine). The
    quarantine row has scope 'source', rule FAILURE_RULE and the message as its reason; it
    replaces the row of an earlier failure of the same source, so repeated nightly failures do
    not pile up.

    The source's previously loaded responses, answers and quarantine rows are KEPT: a corrupt
    or unreadable re-upload never erases last night's good data. The failure shows in the
    ledger, in quarantine and as status 'failed' in mart_completeness until a load succeeds.
    Returns the load_id.
    """
    entry = LedgerEntry.of(fetched, started_at)
    quarantine = tables.quarantine
    with writing(engine) as conn:
        now = local_now(conn, campaign_id)
        source_id = ensure_source(conn, campaign_id, source)
        conn.execute(
            sa.delete(quarantine).where(
                quarantine.c.campaign_id == campaign_id,
                quarantine.c.source_id == source_id,
                quarantine.c.rule == FAILURE_RULE,
            )
        )
        conn.execute(
            quarantine.insert().values(
                campaign_id=campaign_id,
                source_id=source_id,
                school_code=source.school_code,
                questionnaire=source.questionnaire,
                file=entry.filename or source.location,
                sheet=source.worksheet,
                rule=FAILURE_RULE,
                reason=message,
                scope="source",
            )
        )
        return append_ledger(
            conn,
            campaign_id=campaign_id,
            run_id=run_id,
            source=source,
            source_id=source_id,
            status="failed",
            entry=entry,
            now=now,
            message=message,
            n_rejected=1,
        )


def record_unchanged(
    engine: Engine,
    campaign_id: str,
    run_id: str,
    fetched: Fetched,
    *,
    started_at: dt.datetime | None = None,
) -> int:
    """Record that a source was skipped: its fingerprint matches its last successful load."""
    return record_unchanged_many(engine, campaign_id, run_id, [fetched], started_at=started_at)[0]


def record_unchanged_many(
    engine: Engine,
    campaign_id: str,
    run_id: str,
    fetched: Sequence[Fetched],
    *,
    started_at: dt.datetime | None = None,
) -> list[int]:
    """``record_unchanged`` for many sources in one transaction (a quiet night skips nearly
    every source: one commit, not one per source)."""
    entries = [(f.source, LedgerEntry.of(f, started_at), None) for f in fetched]
    return _record(engine, campaign_id, run_id, "unchanged", entries)


def record_absent(
    engine: Engine,
    campaign_id: str,
    run_id: str,
    source: Source,
    message: str | None = None,
    *,
    started_at: dt.datetime | None = None,
) -> int:
    """Record that a source had nothing to fetch yet (no file in the drop folder, say).

    Rows loaded earlier are kept: absence is no reason to forget answers already received.
    """
    entry = LedgerEntry.of(None, started_at)
    return _record(engine, campaign_id, run_id, "absent", [(source, entry, message)])[0]


def record_refused(
    engine: Engine, campaign_id: str, run_id: str, refused: Sequence[tuple[Source, str]]
) -> list[int]:
    """Record sources whose registry row could not be used (an unknown questionnaire, a folder
    that does not exist): a 'failed' ledger row each, with its (source, message), in one
    transaction. No quarantine row: the mistake is the registry's, not the school's file, and
    the rows of the source's last good load are kept."""
    entry = LedgerEntry()
    return _record(
        engine, campaign_id, run_id, "failed", [(source, entry, msg) for source, msg in refused]
    )


def latest_loads(campaign_id: str, *conditions: Any, name: str = "latest") -> sa.Subquery:
    """(source_id, load_id) of each source's latest ledger row in the campaign, among the rows
    matching ``conditions`` (for instance ``load_ledger.c.status == "loaded"``)."""
    ledger = tables.load_ledger
    return (
        sa.select(ledger.c.source_id, sa.func.max(ledger.c.load_id).label("load_id"))
        .where(ledger.c.campaign_id == campaign_id, *conditions)
        .group_by(ledger.c.source_id)
        .subquery(name)
    )


def latest_statuses(engine: Engine, campaign_id: str) -> dict[str, str]:
    """Source.key -> status of the source's latest ledger row (loaded, unchanged, failed,
    absent), for ``khaosat rerun --failed`` and ``khaosat status``."""
    ledger, source = tables.load_ledger, tables.source
    latest = latest_loads(campaign_id)
    stmt = (
        sa.select(source.c.school_code, source.c.questionnaire, source.c.location, ledger.c.status)
        .select_from(ledger)
        .join(latest, latest.c.load_id == ledger.c.load_id)
        .join(source, source.c.source_id == ledger.c.source_id)
    )
    with engine.connect() as conn:
        return {
            f"{row.school_code}|{row.questionnaire}|{row.location}": row.status
            for row in conn.execute(stmt)
        }


@dataclass(frozen=True)
class LastLoad:
    """What a source's last successful load fetched: enough to recognise it unchanged."""

    fingerprint: str
    archive_path: str | None
    filename: str | None
    revision: str | None
    #: the file's or sheet's modified time as that load saw it.
    modified_at: dt.datetime | None = None


def last_loads(engine: Engine, campaign_id: str) -> dict[str, LastLoad]:
    """Source.key -> its last successful load, for skipping unchanged sources.

    A source whose latest ledger row is 'failed' is left out, so it is reloaded even if its
    bytes did not change (the failure may have been ours, or transient). 'absent' does not
    exclude: the rows of the last good load are still there.
    """
    ledger = tables.load_ledger
    latest = latest_loads(campaign_id)
    good = latest_loads(campaign_id, ledger.c.status.in_(("loaded", "unchanged")), name="good")
    last = ledger.alias("last")
    ok = ledger.alias("ok")
    source = tables.source
    stmt = (
        sa.select(
            source.c.school_code,
            source.c.questionnaire,
            source.c.location,
            ok.c.fingerprint,
            ok.c.archive_path,
            ok.c.revision,
            ok.c.modified_at,
            ok.c.location.label("filename"),
        )
        .select_from(latest)
        .join(last, last.c.load_id == latest.c.load_id)
        .join(good, good.c.source_id == latest.c.source_id)
        .join(ok, ok.c.load_id == good.c.load_id)
        .join(source, source.c.source_id == latest.c.source_id)
        .where(last.c.status != "failed", ok.c.fingerprint.is_not(None))
    )
    with engine.connect() as conn:
        return {
            f"{row.school_code}|{row.questionnaire}|{row.location}": LastLoad(
                row.fingerprint, row.archive_path, row.filename, row.revision, row.modified_at
            )
            for row in conn.execute(stmt)
        }


def last_loaded_fingerprints(engine: Engine, campaign_id: str) -> dict[str, str]:
    """Source.key -> fingerprint of the source's last successful load (see last_loads)."""
    return {k: v.fingerprint for k, v in last_loads(engine, campaign_id).items()}


def start_run(
    engine: Engine, run_id: str, campaign_id: str, *, started_at: dt.datetime | None = None
) -> None:
    """Open a run row with status 'running'. Starting the same run_id again (a retried flow)
    marks it running again and keeps its ledger rows."""
    run = tables.run
    with engine.begin() as conn:
        when = started_at or local_now(conn, campaign_id)
        exists = conn.execute(sa.select(run.c.run_id).where(run.c.run_id == run_id)).first()
        if exists is None:
            conn.execute(
                run.insert().values(
                    run_id=run_id, campaign_id=campaign_id, started_at=when, status="running"
                )
            )
        else:
            conn.execute(
                sa.update(run)
                .where(run.c.run_id == run_id)
                .values(status="running", finished_at=None)
            )


def finish_run(
    engine: Engine,
    run_id: str,
    *,
    status: str | None = None,
    finished_at: dt.datetime | None = None,
    message: str = "",
) -> RunRecord:
    """Close a run: count its sources by their last ledger status in the run, set the status.

    ``status`` defaults to 'succeeded' when no source failed and 'partial' otherwise; pass
    'failed' for a run that aborted, 'error' for one the machine stopped and 'interrupted' for
    one a signal stopped, with ``message`` saying why. Returns the run's row.
    """
    run = tables.run
    with engine.begin() as conn:
        run_row = conn.execute(sa.select(run).where(run.c.run_id == run_id)).one()
        when = finished_at or local_now(conn, run_row.campaign_id)
        counts = _statuses_in_run(conn, run_id)
        values: dict[str, Any] = {
            "finished_at": when,
            "status": status or ("partial" if counts["failed"] else "succeeded"),
            "n_sources": sum(counts.values()),
            **{f"n_{name}": counts[name] for name in tables.LEDGER_STATUSES},
            "message": message or None,
        }
        conn.execute(sa.update(run).where(run.c.run_id == run_id).values(**values))
    return RunRecord(
        run_id=run_id,
        campaign_id=run_row.campaign_id,
        started_at=run_row.started_at,
        **{**values, "message": message},
    )


def record_stopped_run(
    engine: Engine, run_id: str, campaign_id: str, *, status: str, message: str
) -> bool:
    """Record a run that stopped before it opened its run row (a registry file that cannot be
    read, another run holding the campaign): a closed row with ``status`` and ``message`` and
    no sources. Nothing is written when the run has a row already (it closed it itself), or
    when the warehouse does not know the campaign yet (nothing was ever recorded for it).
    Whether a row was written."""
    run, campaign = tables.run, tables.campaign
    with engine.begin() as conn:
        known = conn.execute(
            sa.select(campaign.c.campaign_id).where(campaign.c.campaign_id == campaign_id)
        ).first()
        if (
            known is None
            or conn.execute(sa.select(run.c.run_id).where(run.c.run_id == run_id)).first()
        ):
            return False
        now = local_now(conn, campaign_id)
        conn.execute(
            run.insert().values(
                run_id=run_id,
                campaign_id=campaign_id,
                started_at=now,
                finished_at=now,
                status=status,
                message=message or None,
                **{f"n_{name}": 0 for name in ("sources", *tables.LEDGER_STATUSES)},
            )
        )
    return True


def _statuses_in_run(conn: sa.Connection, run_id: str) -> dict[str, int]:
    """Ledger status -> how many sources of the run have it as their last status in the run."""
    ledger = tables.load_ledger
    latest = (
        sa.select(sa.func.max(ledger.c.load_id).label("load_id"))
        .where(ledger.c.run_id == run_id)
        .group_by(ledger.c.source_id)
        .subquery()
    )
    counts = {
        status: int(n)
        for status, n in conn.execute(
            sa.select(ledger.c.status, sa.func.count())
            .join(latest, latest.c.load_id == ledger.c.load_id)
            .group_by(ledger.c.status)
        )
    }
    return {name: counts.get(name, 0) for name in tables.LEDGER_STATUSES}


def last_run(engine: Engine, campaign_id: str) -> RunRecord | None:
    """The campaign's most recently started run, or None if it never ran."""
    run = tables.run
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(run)
            .where(run.c.campaign_id == campaign_id)
            .order_by(run.c.started_at.desc(), run.c.run_id.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    return RunRecord(
        run_id=row.run_id,
        campaign_id=row.campaign_id,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        n_sources=row.n_sources,
        n_loaded=row.n_loaded,
        n_unchanged=row.n_unchanged,
        n_failed=row.n_failed,
        n_absent=row.n_absent,
        message=row.message or "",
    )


def has_ledger(engine: Engine) -> bool:
    """Whether the warehouse has khaosat's tables yet (the run ledger among them)."""
    return has_table(engine, tables.load_ledger.name)


def source_ledgers(engine: Engine, campaign_id: str) -> list[SourceLedger]:
    """Every active registered source of the campaign with its latest ledger row, its last
    successful load and its responses now, in no particular order."""
    source, ledger, school = tables.source, tables.load_ledger, tables.school
    latest = latest_loads(campaign_id)
    last = ledger.alias("last")
    loaded, counts = _last_loaded_at(campaign_id), _responses_by_source(campaign_id)
    with engine.connect() as conn:
        # a warehouse not yet upgraded by a run (status reads, it never migrates)
        known = {c["name"] for c in sa.inspect(conn).get_columns(source.name)}
    found_in = source.c.found_in if "found_in" in known else sa.null()
    stmt = (
        sa.select(
            found_in.label("found_in"),
            source.c.school_code,
            school.c.school_name,
            source.c.questionnaire,
            source.c.location,
            last.c.status,
            last.c.message,
            last.c.finished_at,
            loaded.c.at,
            counts.c.n,
        )
        .select_from(source)
        .outerjoin(latest, latest.c.source_id == source.c.source_id)
        .outerjoin(last, last.c.load_id == latest.c.load_id)
        .outerjoin(loaded, loaded.c.source_id == source.c.source_id)
        .outerjoin(counts, counts.c.source_id == source.c.source_id)
        .outerjoin(
            school,
            sa.and_(
                school.c.campaign_id == source.c.campaign_id,
                school.c.school_code == source.c.school_code,
            ),
        )
        .where(source.c.campaign_id == campaign_id, source.c.is_active.is_(True))
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [
        SourceLedger(
            school_code=row.school_code,
            school_name=row.school_name,
            questionnaire=row.questionnaire,
            location=row.location,
            status=row.status,
            message=row.message,
            checked_at=row.finished_at,
            last_loaded_at=row.at,
            n_responses=int(row.n or 0),
            found_in=row.found_in,
        )
        for row in rows
    ]


def _last_loaded_at(campaign_id: str) -> sa.Subquery:
    """(source_id, at): when each source of the campaign was last loaded."""
    ledger = tables.load_ledger
    return (
        sa.select(ledger.c.source_id, sa.func.max(ledger.c.finished_at).label("at"))
        .where(ledger.c.campaign_id == campaign_id, ledger.c.status == "loaded")
        .group_by(ledger.c.source_id)
        .subquery("loaded")
    )


def _responses_by_source(campaign_id: str) -> sa.Subquery:
    """(source_id, n): each source's responses in the warehouse now."""
    response = tables.response
    return (
        sa.select(response.c.source_id, sa.func.count().label("n"))
        .where(response.c.campaign_id == campaign_id)
        .group_by(response.c.source_id)
        .subquery("counts")
    )


def _record(
    engine: Engine,
    campaign_id: str,
    run_id: str,
    status: str,
    entries: Sequence[tuple[Source, LedgerEntry, str | None]],
) -> list[int]:
    """One ledger row of ``status`` per (source, entry, message), all in one transaction."""
    with writing(engine) as conn:
        now = local_now(conn, campaign_id)
        return [
            append_ledger(
                conn,
                campaign_id=campaign_id,
                run_id=run_id,
                source=source,
                source_id=ensure_source(conn, campaign_id, source),
                status=status,
                entry=entry,
                now=now,
                message=message,
            )
            for source, entry, message in entries
        ]


def append_ledger(
    conn: sa.Connection,
    *,
    campaign_id: str,
    run_id: str,
    source: Source,
    source_id: int,
    status: str,
    entry: LedgerEntry,
    now: dt.datetime,
    message: str | None = None,
    n_rows_read: int = 0,
    n_responses: int = 0,
    n_answers: int = 0,
    n_rejected: int = 0,
    unknown_columns: Iterable[str] = (),
    missing_questions: Iterable[str] = (),
    renamed_questions: Mapping[str, str] | None = None,
) -> int:
    """Append one ledger row on the caller's transaction; its load_id.

    ``now`` is when the row is written (its finished_at, and its started_at unless the entry
    has one); the counts and the header findings are those of a 'loaded' row.
    """
    result = conn.execute(
        tables.load_ledger.insert(),
        dict(
            run_id=run_id,
            campaign_id=campaign_id,
            source_id=source_id,
            school_code=source.school_code,
            questionnaire=source.questionnaire,
            location=source.location,
            status=status,
            fingerprint=entry.fingerprint,
            archive_path=entry.archive_path,
            modified_at=entry.modified_at,
            n_rows_read=n_rows_read,
            n_responses=n_responses,
            n_answers=n_answers,
            n_rejected=n_rejected,
            unknown_columns=json.dumps(list(unknown_columns), ensure_ascii=False),
            missing_questions=json.dumps(list(missing_questions), ensure_ascii=False),
            renamed_questions=json.dumps(dict(renamed_questions or {}), ensure_ascii=False),
            revision=entry.revision,
            message=message,
            started_at=entry.started_at or now,
            finished_at=now,
        ),
    )
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - a single-row INSERT always reports its key
        raise RuntimeError("the ledger insert reported no load_id")
    return int(key[0])
