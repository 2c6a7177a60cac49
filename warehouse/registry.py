"""The registry dimensions: campaign, questionnaires and questions, units, schools, sources.

``sync_registry`` writes the registry as it is now in one transaction keyed by natural keys, so
a re-run gives the same warehouse; ``ensure_source`` registers one source on the caller's
transaction. ``reset_stale_figures`` drops every stored figure when the items they were
computed with changed kind or dimension.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from schemas.campaign import Campaign
from schemas.questionnaire import Questionnaire
from schemas.records import School, Source
from warehouse import tables
from warehouse.db import digest, get_meta, insert_ignore, set_meta

#: meta key holding the digest of the items the stored figures were computed with.
FIGURES_ITEMS_KEY = "figures_items_digest"


def sync_registry(
    engine: Engine,
    campaign: Campaign,
    schools: Sequence[School],
    questionnaires: Mapping[str, Questionnaire],
    *,
    sources: Sequence[Source] | None = None,
    unlisted_folders: Sequence[str] = (),
) -> None:
    """Write the campaign, its units and schools, and its questionnaires, in one transaction.

    The campaign row is upserted and its units and schools replaced, so the warehouse holds the
    registry as it is now. Questionnaires and their questions are shared by campaigns (keyed by
    code): each given one is upserted and its questions replaced; campaign_questionnaire records
    which ones this campaign uses. A unit's name is taken from its first school.

    With ``sources`` (the rows of sources.csv), every source is registered and any source of
    the campaign no longer listed is retired (``is_active`` false): its rows stay in the
    warehouse but count in no mart, and putting it back in sources.csv restores it. A source
    found in a folder row of ``unlisted_folders`` (the locations of the folder rows that could
    not be listed this time) is not retired: it keeps its state until its folder can be read.
    """
    with engine.begin() as conn:
        _write_campaign(conn, campaign)
        _write_questionnaires(conn, questionnaires)
        reset_stale_figures(conn)
        _write_campaign_questionnaires(conn, campaign.id, questionnaires)
        _write_schools(conn, campaign.id, schools)
        if sources is not None:
            active = _ensure_sources(conn, campaign.id, sources)
            _retire_unlisted(conn, campaign.id, active, unlisted_folders)


def _write_campaign(conn: sa.Connection, campaign: Campaign) -> None:
    """Upsert the campaign's row."""
    row = {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "school_year": campaign.school_year,
        "opens": campaign.opens,
        "closes": campaign.closes,
        "deadline": campaign.deadline,
        "previous_id": campaign.previous,
        "province_code": campaign.province_code,
        "timezone": campaign.timezone,
    }
    _upsert(conn, tables.campaign, [row], ["campaign_id"])


def _write_questionnaires(conn: sa.Connection, questionnaires: Mapping[str, Questionnaire]) -> None:
    """Upsert each questionnaire and replace its questions (shared by every campaign)."""
    rows = [
        {
            "questionnaire_code": questionnaire.code,
            "version": questionnaire.version,
            "name": questionnaire.name,
            "kind": questionnaire.kind,
            "levels": ",".join(questionnaire.levels),
            "required": questionnaire.required,
        }
        for questionnaire in questionnaires.values()
    ]
    _upsert(conn, tables.questionnaire, rows, ["questionnaire_code"])
    codes = [questionnaire.code for questionnaire in questionnaires.values()]
    question = tables.question
    if codes:
        conn.execute(sa.delete(question).where(question.c.questionnaire_code.in_(codes)))
    _insert_many(
        conn,
        question,
        [
            {
                "questionnaire_code": questionnaire.code,
                "question_code": item.code,
                "dimension": item.dimension,
                "kind": item.kind,
                "text": item.text,
                "position": position,
            }
            for questionnaire in questionnaires.values()
            for position, item in enumerate(questionnaire.items, start=1)
        ],
    )


def _write_campaign_questionnaires(
    conn: sa.Connection, campaign_id: str, questionnaires: Mapping[str, Questionnaire]
) -> None:
    """Replace the list of questionnaires the campaign uses."""
    used = tables.campaign_questionnaire
    conn.execute(sa.delete(used).where(used.c.campaign_id == campaign_id))
    _insert_many(
        conn,
        used,
        [
            {
                "campaign_id": campaign_id,
                "questionnaire_code": questionnaire.code,
                "version": questionnaire.version,
            }
            for questionnaire in questionnaires.values()
        ],
    )


def _write_schools(conn: sa.Connection, campaign_id: str, schools: Sequence[School]) -> None:
    """Replace the campaign's units and schools; a unit is named after its first school's."""
    # Schools reference units: delete schools first, insert units first.
    conn.execute(sa.delete(tables.school).where(tables.school.c.campaign_id == campaign_id))
    conn.execute(sa.delete(tables.unit).where(tables.unit.c.campaign_id == campaign_id))
    units: dict[str, str] = {}
    for school in schools:
        units.setdefault(school.unit_code, school.unit_name)
    _insert_many(
        conn,
        tables.unit,
        [
            {"campaign_id": campaign_id, "unit_code": code, "unit_name": name}
            for code, name in units.items()
        ],
    )
    _insert_many(
        conn,
        tables.school,
        [
            {
                "campaign_id": campaign_id,
                "school_code": school.code,
                "school_name": school.name,
                "level": school.level,
                "unit_code": school.unit_code,
                "enrollment": school.enrollment,
            }
            for school in schools
        ],
    )


def _retire_unlisted(
    conn: sa.Connection, campaign_id: str, active: list[int], unlisted_folders: Sequence[str]
) -> None:
    """Mark every source of the campaign not in ``active`` (source ids) inactive, but those
    found in one of ``unlisted_folders``."""
    source = tables.source
    retire = sa.update(source).where(source.c.campaign_id == campaign_id)
    if active:
        retire = retire.where(source.c.source_id.not_in(active))
    if unlisted_folders:
        retire = retire.where(
            sa.or_(source.c.found_in.is_(None), source.c.found_in.not_in(list(unlisted_folders)))
        )
    conn.execute(retire.values(is_active=False))


def _ensure_sources(conn: sa.Connection, campaign_id: str, sources: Sequence[Source]) -> list[int]:
    """``ensure_source`` for every source of a registry, in a few statements: one read of the
    campaign's sources, one insert of those not registered yet (a province has a thousand,
    and three statements each made the flow's start wait), and an update for each source
    whose kind changed or that comes back."""
    keys = [_natural_key(campaign_id, source) for source in sources]
    ids = [tuple(k[c] for c in _SOURCE_KEY) for k in keys]

    def registered() -> dict[tuple[str, ...], Any]:
        rows = conn.execute(_SOURCES_OF_CAMPAIGN, {"campaign_id": campaign_id})
        return {tuple(r._mapping[c] for c in _SOURCE_KEY): r for r in rows}

    known = registered()
    new = {
        i: {**key, "kind": source.kind, "found_in": source.found_in, "is_active": True}
        for i, key, source in zip(ids, keys, sources, strict=True)
        if i not in known
    }
    if new:
        # a source registered meanwhile by a concurrent run is skipped, then read back
        conn.execute(insert_ignore(conn, tables.source), list(new.values()))
        known = registered()
    return [_active_id(conn, known[i], source) for i, source in zip(ids, sources, strict=True)]


def ensure_source(conn: sa.Connection, campaign_id: str, source: Source) -> int:
    """The source_id of ``source`` in the campaign, registering it (or reactivating it) if needed.

    Runs on the caller's connection and transaction. Safe against a concurrent registration of
    the same source: the insert is skipped on conflict and the row read back.
    """
    key = _natural_key(campaign_id, source)
    row = conn.execute(_SOURCE_BY_KEY, key).first()
    if row is None:
        conn.execute(
            insert_ignore(conn, tables.source).values(
                **key, kind=source.kind, found_in=source.found_in, is_active=True
            ),
        )
        return int(conn.execute(_SOURCE_BY_KEY, key).one().source_id)
    return _active_id(conn, row, source)


def _natural_key(campaign_id: str, source: Source) -> dict[str, str]:
    """``source``'s natural key in the campaign, by ``_SOURCE_KEY`` column."""
    return {
        "campaign_id": campaign_id,
        "school_code": source.school_code,
        "questionnaire": source.questionnaire,
        "location": source.location,
    }


def _active_id(conn: sa.Connection, row: Any, source: Source) -> int:
    """The source_id of ``source``'s registered ``row``, its kind and the folder row it was
    found in updated and the source reactivated where they differ."""
    if row.kind != source.kind or row.found_in != source.found_in or not row.is_active:
        conn.execute(
            sa.update(tables.source)
            .where(tables.source.c.source_id == row.source_id)
            .values(kind=source.kind, found_in=source.found_in, is_active=True)
        )
    return int(row.source_id)


# Statements run for every source are built once, with bound parameters: building one costs
# more Python than executing it (SQLAlchemy's compiled cache then serves the SQL).
#: source's natural key: its columns, which are also the parameters of _SOURCE_BY_KEY.
_SOURCE_KEY = ("campaign_id", "school_code", "questionnaire", "location")
_SOURCE_BY_KEY = sa.select(
    tables.source.c.source_id,
    tables.source.c.kind,
    tables.source.c.found_in,
    tables.source.c.is_active,
).where(*(tables.source.c[c] == sa.bindparam(c) for c in _SOURCE_KEY))
#: every source of a campaign, with its natural key (parameter campaign_id).
_SOURCES_OF_CAMPAIGN = sa.select(
    tables.source.c.source_id,
    tables.source.c.kind,
    tables.source.c.found_in,
    tables.source.c.is_active,
    *(tables.source.c[c] for c in _SOURCE_KEY),
).where(tables.source.c.campaign_id == sa.bindparam("campaign_id"))


@dataclass(frozen=True)
class SupersededFile:
    """A file of a folder source not used: its school has a newer one for the questionnaire
    (a row of ``superseded_file``)."""

    school_code: str
    questionnaire: str
    location: str
    found_in: str
    used_location: str
    message: str


def replace_superseded(
    engine: Engine, campaign_id: str, run_id: str, files: Sequence[SupersededFile]
) -> None:
    """Record the campaign's superseded files as ``run_id`` found the folders, in place of
    those any run found before."""
    table = tables.superseded_file
    with engine.begin() as conn:
        conn.execute(sa.delete(table).where(table.c.campaign_id == campaign_id))
        _insert_many(
            conn,
            table,
            [{"campaign_id": campaign_id, "run_id": run_id, **asdict(f)} for f in files],
        )


def superseded_files(engine: Engine, campaign_id: str) -> list[SupersededFile]:
    """The campaign's superseded files as the latest run found them, by school, questionnaire
    and location; none for a warehouse that has no such table yet."""
    table = tables.superseded_file
    columns = [table.c[f.name] for f in fields(SupersededFile)]
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(table.name):
            return []
        found = conn.execute(
            sa.select(*columns)
            .where(table.c.campaign_id == campaign_id)
            .order_by(table.c.school_code, table.c.questionnaire, table.c.location)
        )
        return [SupersededFile(*row) for row in found]


def items(conn: sa.Connection) -> list[list[Any]]:
    """Every item's (questionnaire, code, kind, dimension): what figures depend on."""
    question = tables.question
    stmt = sa.select(
        question.c.questionnaire_code,
        question.c.question_code,
        question.c.kind,
        question.c.dimension,
    ).order_by(question.c.questionnaire_code, question.c.question_code)
    return [list(row) for row in conn.execute(stmt)]


def reset_stale_figures(conn: sa.Connection) -> None:
    """Drop every figure when the items changed kind or dimension since they were computed
    (``warehouse.marts.ensure_figures`` then computes them again from the stored answers)."""
    now = digest(items(conn))
    stored = get_meta(conn, FIGURES_ITEMS_KEY)
    if stored != now:
        if stored is not None:
            for table in tables.FIGURE_TABLES:
                conn.execute(sa.delete(table))
        set_meta(conn, FIGURES_ITEMS_KEY, now)


def _insert_many(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(table.insert(), rows)


def _upsert(
    conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], keys: list[str]
) -> None:
    """INSERT … ON CONFLICT (keys) DO UPDATE; SQLite and PostgreSQL share the syntax."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg_stmt = pg_insert(table)
        stmt: Any = pg_stmt.on_conflict_do_update(
            index_elements=keys,
            set_={c: pg_stmt.excluded[c] for c in rows[0] if c not in keys},
        )
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        lite_stmt = sqlite_insert(table)
        stmt = lite_stmt.on_conflict_do_update(
            index_elements=keys,
            set_={c: lite_stmt.excluded[c] for c in rows[0] if c not in keys},
        )
    conn.execute(stmt, rows)
