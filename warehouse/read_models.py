"""Read models for publishing: what the workbooks and feedback files show, as plain rows.

Each function runs the queries of one output and returns dictionaries and dataclasses, so
``flows.publish`` renders them without SQL. PostgreSQL's NUMERIC arrives as ``Decimal``: rows
carry floats, which is what openpyxl writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from warehouse import tables
from warehouse.ledger import latest_loads
from warehouse.marts import province_dimension

Row = dict[str, Any]


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _fetch(conn: sa.Connection, stmt: sa.Select[Any]) -> list[Row]:
    return [{k: _plain(v) for k, v in r._mapping.items()} for r in conn.execute(stmt)]


def _frame_rows(frame: Any) -> list[Row]:
    """province_dimension's DataFrame as rows, NaN as None."""
    return [
        {k: None if isinstance(v, float) and v != v else _plain(v) for k, v in rec.items()}
        for rec in frame.to_dict("records")
    ]


@dataclass
class CampaignRows:
    """Every row the leadership workbooks of one campaign show, in primary-key order."""

    campaign: Row | None
    units: list[Row]
    schools: list[Row]
    unit_dimension: list[Row]
    unit_question: list[Row]
    school_dimension: list[Row]
    papi: list[Row]
    services: list[Row]
    completeness: list[Row]
    alerts: list[Row]
    run: Row | None
    sources: list[Row]
    province_dimension: list[Row]
    previous_unit_dimension: list[Row]
    previous_province_dimension: list[Row]
    #: files of folder sources not used, their school having a newer one (superseded_file).
    superseded: list[Row] = field(default_factory=list)


def read_campaign_rows(engine: sa.Engine, campaign_id: str, run_id: str | None) -> CampaignRows:
    """The registry, marts, alerts, run and sources of a campaign (and its previous one's
    unit and province dimension figures, when ``campaign.previous_id`` names one)."""
    camp = tables.campaign
    with engine.connect() as conn:
        found = _fetch(conn, sa.select(camp).where(camp.c.campaign_id == campaign_id))

        def rows(table: sa.Table, cid: str = campaign_id) -> list[Row]:
            key = [col for col in table.primary_key.columns] or list(table.columns)
            return _fetch(conn, sa.select(table).where(table.c.campaign_id == cid).order_by(*key))

        campaign = found[0] if found else None
        run = read_run(conn, campaign_id, run_id)
        previous_id = campaign["previous_id"] if campaign is not None else None
        result = CampaignRows(
            campaign=campaign,
            units=rows(tables.unit),
            schools=rows(tables.school),
            unit_dimension=rows(tables.mart_unit_dimension),
            unit_question=rows(tables.mart_unit_question),
            school_dimension=rows(tables.mart_school_dimension),
            papi=rows(tables.mart_papi),
            services=rows(tables.mart_service_ranking),
            completeness=rows(tables.mart_completeness),
            alerts=rows(tables.alerts),
            run=run,
            sources=read_sources(conn, campaign_id, run),
            province_dimension=[],
            previous_unit_dimension=rows(tables.mart_unit_dimension, previous_id)
            if previous_id
            else [],
            previous_province_dimension=[],
            superseded=rows(tables.superseded_file),
        )
    result.province_dimension = _frame_rows(province_dimension(engine, campaign_id))
    if previous_id and result.previous_unit_dimension:
        result.previous_province_dimension = _frame_rows(province_dimension(engine, previous_id))
    return result


def read_run(conn: sa.Connection, campaign_id: str, run_id: str | None) -> Row | None:
    """The run ``run_id``, or the latest run when it is None or a run the warehouse does not
    know (``khaosat publish`` starts no run: its outputs show the data of the latest run, the
    one ``khaosat status`` reports)."""
    run = tables.run
    stmt = sa.select(run).where(run.c.campaign_id == campaign_id)
    if run_id is not None:
        found = _fetch(conn, stmt.where(run.c.run_id == run_id))
        if found:
            return found[0]
    latest = _fetch(conn, stmt.order_by(run.c.started_at.desc(), run.c.run_id.desc()).limit(1))
    return latest[0] if latest else None


def read_sources(conn: sa.Connection, campaign_id: str, run: Row | None) -> list[Row]:
    """Active sources with the status of their latest ledger row up to ``run``, when that
    source last loaded (``loaded_at``, the end of its latest ``loaded`` row up to ``run``)
    and how many valid responses of it the figures still count (``n_counted``)."""
    source, ledger, figures = tables.source, tables.load_ledger, tables.figure_source
    upto = sa.select(sa.func.max(ledger.c.load_id)).where(ledger.c.campaign_id == campaign_id)
    if run is not None:
        in_run = conn.execute(upto.where(ledger.c.run_id == run["run_id"])).scalar()
        if in_run is not None:
            upto = sa.select(sa.literal(in_run))
    until = ledger.c.load_id <= upto.scalar_subquery()
    last = latest_loads(campaign_id, until, name="last")
    loaded = latest_loads(campaign_id, until, ledger.c.status == "loaded", name="last_loaded")
    loaded_row = ledger.alias("loaded_row")
    stmt = (
        sa.select(
            source.c.school_code,
            source.c.questionnaire,
            source.c.location,
            source.c.found_in,
            ledger.c.status,
            ledger.c.modified_at,
            loaded_row.c.finished_at.label("loaded_at"),
            sa.func.coalesce(figures.c.n_valid_responses, 0).label("n_counted"),
        )
        .select_from(
            source.outerjoin(last, last.c.source_id == source.c.source_id)
            .outerjoin(ledger, ledger.c.load_id == last.c.load_id)
            .outerjoin(loaded, loaded.c.source_id == source.c.source_id)
            .outerjoin(loaded_row, loaded_row.c.load_id == loaded.c.load_id)
            .outerjoin(
                figures,
                sa.and_(
                    figures.c.source_id == source.c.source_id,
                    figures.c.campaign_id == campaign_id,
                ),
            )
        )
        .where(source.c.campaign_id == campaign_id, source.c.is_active.is_(sa.true()))
        .order_by(source.c.school_code, source.c.questionnaire, source.c.location)
    )
    return _fetch(conn, stmt)


def response_counts(engine: sa.Engine, campaign_id: str) -> list[Row]:
    """Valid responses per school and questionnaire (mart_completeness) with the school's
    unit: ``school_code``, ``unit_code``, ``questionnaire``, ``n_valid``."""
    completeness, school = tables.mart_completeness, tables.school
    stmt = (
        sa.select(
            completeness.c.school_code,
            school.c.unit_code,
            completeness.c.questionnaire,
            completeness.c.n_valid,
        )
        .select_from(
            completeness.outerjoin(
                school,
                sa.and_(
                    school.c.campaign_id == completeness.c.campaign_id,
                    school.c.school_code == completeness.c.school_code,
                ),
            )
        )
        .where(completeness.c.campaign_id == campaign_id)
        .order_by(completeness.c.school_code, completeness.c.questionnaire)
    )
    with engine.connect() as conn:
        return _fetch(conn, stmt)


@dataclass
class FeedbackRows:
    """What the schools' feedback files are made of: rejected values and rows (quarantine,
    with the source's location), the latest successful load of each active source (its
    unknown columns and missing questions, JSON lists, and first sheet) and question texts."""

    quarantine: list[Row]
    loads: list[Row]
    question_texts: dict[tuple[str, str], str]


def read_feedback_rows(engine: sa.Engine, campaign_id: str) -> FeedbackRows:
    """The quarantine and ledger rows of the campaign's active sources."""
    quarantine, source, ledger = tables.quarantine, tables.source, tables.load_ledger
    question, response = tables.question, tables.response
    active = sa.and_(source.c.campaign_id == campaign_id, source.c.is_active.is_(sa.true()))
    latest_loaded = latest_loads(campaign_id, ledger.c.status == "loaded", name="latest_loaded")
    sheets = (
        sa.select(response.c.source_id, sa.func.min(response.c.sheet).label("sheet"))
        .where(response.c.campaign_id == campaign_id)
        .group_by(response.c.source_id)
        .subquery("sheets")
    )
    loads = (
        sa.select(
            source.c.school_code,
            source.c.questionnaire,
            source.c.kind,
            source.c.location,
            ledger.c.unknown_columns,
            ledger.c.missing_questions,
            sheets.c.sheet,
        )
        .select_from(
            ledger.join(latest_loaded, latest_loaded.c.load_id == ledger.c.load_id)
            .join(source, source.c.source_id == ledger.c.source_id)
            .outerjoin(sheets, sheets.c.source_id == ledger.c.source_id)
        )
        .where(active)
    )
    with engine.connect() as conn:
        rejected = _fetch(
            conn,
            sa.select(quarantine, source.c.location)
            .join(source, source.c.source_id == quarantine.c.source_id)
            .where(quarantine.c.campaign_id == campaign_id, active),
        )
        texts = {
            (r.questionnaire_code, r.question_code): r.text
            for r in conn.execute(
                sa.select(question.c.questionnaire_code, question.c.question_code, question.c.text)
            )
        }
        return FeedbackRows(rejected, _fetch(conn, loads), texts)


@dataclass
class FeedbackSchools:
    """The campaign's name, school names, and mart_completeness rows of some schools (each
    with ``questionnaire_name``)."""

    campaign_name: str | None
    school_names: dict[str, str | None]
    completeness: list[Row]


def read_feedback_schools(
    engine: sa.Engine, campaign_id: str, school_codes: list[str]
) -> FeedbackSchools:
    """Names and submission status of ``school_codes`` in the campaign."""
    camp, school = tables.campaign, tables.school
    completeness, questionnaire = tables.mart_completeness, tables.questionnaire
    with engine.connect() as conn:
        name = conn.execute(sa.select(camp.c.name).where(camp.c.campaign_id == campaign_id))
        campaign_name = name.scalar()
        names = {
            r.school_code: r.school_name
            for r in conn.execute(
                sa.select(school.c.school_code, school.c.school_name).where(
                    school.c.campaign_id == campaign_id
                )
            )
        }
        stmt = (
            sa.select(completeness, questionnaire.c.name.label("questionnaire_name"))
            .select_from(
                completeness.outerjoin(
                    questionnaire,
                    questionnaire.c.questionnaire_code == completeness.c.questionnaire,
                )
            )
            .where(
                completeness.c.campaign_id == campaign_id,
                completeness.c.school_code.in_(school_codes),
            )
        )
        return FeedbackSchools(campaign_name, names, _fetch(conn, stmt))
