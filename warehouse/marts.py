"""The marts: department-level figures computed in SQL inside the warehouse.

``rebuild_marts`` deletes a campaign's rows of every mart and rebuilds them with INSERT … SELECT
in one transaction, so readers see either last night's marts or tonight's, never a mix. The SQL
is SQLAlchemy Core and runs unchanged on SQLite and PostgreSQL. It reads the per-source figures
(``warehouse.figures``: a few rows of sums per source, written with the source's answers), not
the answers themselves, so a rebuild costs the same whether the campaign holds a thousand
answers or millions. Grains and column meanings are the table comments in ``warehouse.tables``;
the formulas (DOMAIN.md's "Indices") are ``rebuild_marts``'s docstring.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from warehouse import tables as t
from warehouse.db import digest, get_meta, set_meta
from warehouse.figures import EXPECTATION_DIMENSION, FigureRows
from warehouse.ledger import latest_loads
from warehouse.load import source_figure_rows, write_figure_rows
from warehouse.registry import items

__all__ = [
    "EXPECTATION_DIMENSION",
    "ensure_figures",
    "last_publish",
    "province_dimension",
    "published_inputs",
    "rebuild_marts",
    "record_publish",
]


def rebuild_marts(
    engine: Engine, campaign_id: str, as_of: dt.datetime, deadline_at: dt.datetime
) -> dict[str, int]:
    """Delete and rebuild every mart's rows of one campaign, in one transaction.

    ``as_of`` is "now" for completeness (pending before ``deadline_at``, missing after);
    ``deadline_at`` is the campaign's deadline (``Campaign.deadline_at``), both naive in the
    campaign's local time. Returns the number of rows written per mart table. The marts follow
    DOMAIN.md's "Indices":

    - a *valid* answer has a value in its kind's range: likert 1–5, yesno 0/1, level 0/3/5/7/10,
      percent 0–100 (an unreadable value is NULL and never valid);
    - pct_satisfied = 100 × (#4 + #5) / #valid, pct_dissatisfied = 100 × (#1 + #2) / #valid,
      mean_score = mean of the values; a dimension pools the answers of all its items (not a mean
      of item rates); CHUNG is the dimension of the overall item;
    - extension: the ``MONG_DOI`` dimension row holds the mean of the 0–100 "expectation met"
      answers in mean_score, with pct_satisfied and pct_dissatisfied NULL (they mean nothing on a
      0–100 scale); n_respondents and n_answers count as for the other dimensions;
    - n_respondents = responses with at least one valid answer in the row's scope and dimension;
      n_schools = schools with at least one such respondent;
    - only active sources (still in sources.csv) and schools registered in the campaign count.

    All figures are unweighted and unrounded; rounding and suppression of small counts are for
    whoever publishes them.
    """
    ensure_figures(engine, campaign_id)
    refresh_statistics(engine)
    written: dict[str, int] = {}
    with engine.begin() as conn:
        for table in t.MART_TABLES:
            conn.execute(sa.delete(table).where(table.c.campaign_id == campaign_id))
        for table, selects in (
            (t.mart_school_dimension, [_school_dimension(campaign_id)]),
            (t.mart_unit_dimension, [_unit_dimension(campaign_id)]),
            (t.mart_unit_question, [_unit_question(campaign_id)]),
            (t.mart_papi, _papi(campaign_id)),
            (t.mart_service_ranking, [_service_ranking(campaign_id)]),
            (t.mart_completeness, [_completeness(campaign_id, as_of, deadline_at)]),
        ):
            for select in selects:
                columns = [c.name for c in select.selected_columns]
                conn.execute(table.insert().from_select(columns, select))
            # Counted afterwards: drivers do not agree on rowcount for INSERT … SELECT.
            written[table.name] = conn.execute(
                sa.select(sa.func.count()).where(table.c.campaign_id == campaign_id)
            ).scalar_one()
    return written


def ensure_figures(engine: Engine, campaign_id: str) -> int:
    """Compute the figures of every loaded source that has none; returns how many were computed.

    Figures are normally written with the source's answers. They are missing for sources loaded
    before the figure tables existed, and after ``sync_registry`` dropped them because the items
    they were computed with changed (a question moved to another dimension, or changed kind, in
    schemas/): both are then computed from the stored answers, one source at a time.
    """
    with engine.begin() as conn:
        s, r, f = t.source, t.response, t.figure_source
        missing = conn.execute(
            sa.select(s.c.source_id, s.c.questionnaire)
            .where(
                s.c.campaign_id == campaign_id,
                sa.exists().where(r.c.campaign_id == campaign_id, r.c.source_id == s.c.source_id),
                ~sa.exists().where(f.c.campaign_id == campaign_id, f.c.source_id == s.c.source_id),
            )
            .order_by(s.c.source_id)
        ).all()
        for source_id, questionnaire in missing:
            write_figure_rows(
                conn,
                campaign_id,
                source_id,
                _stored_figures(conn, campaign_id, source_id, questionnaire),
            )
    return len(missing)


def published_inputs(engine: Engine, campaign_id: str, *outside: Any) -> str:
    """A digest of everything in the warehouse that the marts, alerts and workbooks of a
    campaign are made from.

    Equal digests mean a rebuild would publish the same figures: the registry (campaign, units,
    schools, sources, whether they are active and the folders they were found in, the files
    of folders not used), the items, each source's current load and
    latest status, and the alerts' states and notes (the workbooks list them), plus the plain
    values in ``outside`` (settings, say). The ledger rows a quiet night appends ('unchanged',
    the same 'absent' or 'failed' again) do not change it.
    """
    led, s = t.load_ledger, t.source
    with engine.connect() as conn:

        def rows(table: sa.Table, *columns: Any) -> list[Any]:
            stmt = sa.select(*(columns or table.c)).where(table.c.campaign_id == campaign_id)
            return [list(r) for r in conn.execute(stmt.order_by(*list(stmt.selected_columns)))]

        latest = latest_loads(campaign_id)
        loaded = latest_loads(campaign_id, led.c.status == "loaded", name="loaded")
        status = led.alias("status_row")
        sources = conn.execute(
            sa.select(
                s.c.source_id,
                s.c.is_active,
                s.c.found_in,
                # 'unchanged' says the current load still stands, as 'loaded' did
                sa.case((status.c.status == "unchanged", "loaded"), else_=status.c.status),
                loaded.c.load_id,
            )
            .select_from(
                s.outerjoin(latest, latest.c.source_id == s.c.source_id)
                .outerjoin(status, status.c.load_id == latest.c.load_id)
                .outerjoin(loaded, loaded.c.source_id == s.c.source_id)
            )
            .where(s.c.campaign_id == campaign_id)
            .order_by(s.c.source_id)
        ).all()
        a = t.alerts
        return digest(
            rows(t.campaign),
            rows(t.unit),
            rows(t.school),
            rows(t.campaign_questionnaire),
            [list(r) for r in sources],
            items(conn),
            rows(
                a,
                a.c.rule,
                a.c.scope,
                a.c.scope_code,
                a.c.subject,
                a.c.severity,
                a.c.status,
                a.c.note,
            ),
            # the files a folder holds beside those used: the workbooks and feedback list them
            rows(t.superseded_file, *(c for c in t.superseded_file.c if c.name != "run_id")),
            outside,
        )


def last_publish(engine: Engine, campaign_id: str) -> str:
    """What the last publish of ``campaign_id`` recorded (JSON text: its inputs' digest and the
    files it wrote), or "" before the first."""
    with engine.connect() as conn:
        return get_meta(conn, f"published:{campaign_id}") or ""


def record_publish(engine: Engine, campaign_id: str, record: str) -> None:
    """Store ``record`` as the last publish of ``campaign_id`` (see ``last_publish``)."""
    with engine.begin() as conn:
        set_meta(conn, f"published:{campaign_id}", record)


def _stored_figures(
    conn: sa.Connection, campaign_id: str, source_id: int, questionnaire: str
) -> FigureRows:
    """A source's figures computed from its stored answers (and its responses' services)."""
    a, r = t.answer, t.response
    # answer has no campaign_id: source_id alone is unique across campaigns.
    answers = pd.DataFrame(
        [
            tuple(row)
            for row in conn.execute(
                sa.select(a.c.response_no, a.c.question_code, a.c.value).where(
                    a.c.source_id == source_id
                )
            )
        ],
        columns=["response_no", "question_code", "value"],
    )
    answers["value"] = pd.to_numeric(answers["value"], errors="coerce").astype("float64")
    service_rows = conn.execute(
        sa.select(r.c.response_no, r.c.service).where(
            r.c.campaign_id == campaign_id, r.c.source_id == source_id
        )
    ).all()
    return source_figure_rows(
        conn,
        questionnaire,
        answers,
        [row.response_no for row in service_rows],
        [row.service for row in service_rows],
    )


#: Tables the mart queries read, whose planner statistics are refreshed before a rebuild.
_SOURCE_TABLES = (
    *t.FIGURE_TABLES,
    t.source,
    t.quarantine,
    t.load_ledger,
    t.school,
    t.question,
)


def refresh_statistics(engine: Engine) -> None:
    """ANALYZE the tables the marts read, so the planner knows tonight's row counts.

    After a night of bulk loads into fresh tables the statistics are stale or absent (autovacuum
    has not caught up), and PostgreSQL then picks nested loops over hash joins. On SQLite the
    sample is capped (analysis_limit) so the cost does not grow with the warehouse.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        preparer = conn.dialect.identifier_preparer
        for table in _SOURCE_TABLES:
            conn.exec_driver_sql(f"ANALYZE {preparer.format_table(table)}")


def province_dimension(engine: Engine, campaign_id: str) -> pd.DataFrame:
    """Province-level dimension figures, pooled over every answer of the province.

    One row per (level, questionnaire, dimension), with the columns of mart_unit_dimension
    (n_schools, n_respondents, n_answers, mean_score, pct_satisfied, pct_dissatisfied) and the
    same semantics, including the CHUNG and MONG_DOI rows. Pooling answers (rather than
    averaging unit figures) gives each respondent the same weight, as DOMAIN.md asks.
    """
    ensure_figures(engine, campaign_id)
    stats = _dimension_stats(
        campaign_id, ["level", "questionnaire", "dimension"], n_schools=True
    ).subquery("stats")
    stmt = sa.select(stats).order_by(stats.c.level, stats.c.questionnaire, stats.c.dimension)
    columns = [
        "level",
        "questionnaire",
        "dimension",
        "n_schools",
        "n_respondents",
        "n_answers",
        "mean_score",
        "pct_satisfied",
        "pct_dissatisfied",
    ]
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(stmt)]
    frame = pd.DataFrame(rows, columns=columns)
    for c in ("mean_score", "pct_satisfied", "pct_dissatisfied"):
        frame[c] = frame[c].astype("float64")
    return frame


# ------------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------------


def _pct(numerator: Any, denominator: Any) -> Any:
    """100 × numerator / denominator as a float on both backends (NULL if numerator is)."""
    return 100.0 * sa.cast(numerator, sa.Float) / sa.cast(denominator, sa.Float)


def _ratio(numerator: Any, denominator: Any) -> Any:
    return sa.cast(numerator, sa.Float) / sa.cast(denominator, sa.Float)


def _counted_sources(campaign_id: str, figures: sa.Table) -> tuple[Any, list[Any], dict[str, Any]]:
    """``figures`` joined to what counts: active sources of registered schools.

    Returns the join, its conditions, and the key columns by name (campaign_id, school_code,
    unit_code, level, questionnaire).
    """
    s, sc = t.source, t.school
    joined = figures.join(
        s, sa.and_(s.c.source_id == figures.c.source_id, s.c.campaign_id == figures.c.campaign_id)
    ).join(sc, sa.and_(sc.c.campaign_id == s.c.campaign_id, sc.c.school_code == s.c.school_code))
    conditions = [figures.c.campaign_id == campaign_id, s.c.is_active.is_(sa.true())]
    keys = {
        "campaign_id": figures.c.campaign_id,
        "school_code": s.c.school_code,
        "unit_code": sc.c.unit_code,
        "level": sc.c.level,
        "questionnaire": s.c.questionnaire,
    }
    return joined, conditions, keys


def _dimension_stats(campaign_id: str, keys: list[str], *, n_schools: bool) -> sa.Select[Any]:
    """Dimension figures grouped by ``keys`` (a subset of campaign_id, school_code, unit_code,
    level, questionnaire, dimension; 'dimension' must be among them).

    Respondents belong to one source each, so n_respondents is the sum of the sources' counts.
    """
    f = t.figure_source_dimension
    joined, conditions, columns = _counted_sources(campaign_id, f)
    columns["dimension"] = f.c.dimension
    group = [columns[k].label(k) for k in keys]
    figures: list[Any] = []
    if n_schools:
        figures.append(sa.func.count(sa.distinct(columns["school_code"])).label("n_schools"))
    n_answers = sa.func.sum(f.c.n_answers)
    figures += [
        sa.func.sum(f.c.n_respondents).label("n_respondents"),
        n_answers.label("n_answers"),
        _ratio(sa.func.sum(f.c.total), n_answers).label("mean_score"),
        _pct(sa.func.sum(f.c.n_satisfied), n_answers).label("pct_satisfied"),
        _pct(sa.func.sum(f.c.n_dissatisfied), n_answers).label("pct_dissatisfied"),
    ]
    return (
        sa.select(*group, *figures)
        .select_from(joined)
        .where(*conditions)
        .group_by(*(columns[k] for k in keys))
    )


def _school_dimension(campaign_id: str) -> sa.Select[Any]:
    return _dimension_stats(
        campaign_id, ["campaign_id", "school_code", "questionnaire", "dimension"], n_schools=False
    )


def _unit_dimension(campaign_id: str) -> sa.Select[Any]:
    return _dimension_stats(
        campaign_id,
        ["campaign_id", "unit_code", "level", "questionnaire", "dimension"],
        n_schools=True,
    )


def _question_figures(
    campaign_id: str, kind: str, questionnaire_kind: str | None = None
) -> tuple[Any, list[Any], dict[str, Any]]:
    """Per-question figures of items of answer ``kind`` (and questionnaire kind), joined to
    what counts; the key columns include question_code and service."""
    f, q, qn = t.figure_source_question, t.question, t.questionnaire
    joined, conditions, keys = _counted_sources(campaign_id, f)
    joined = joined.join(
        q,
        sa.and_(
            q.c.questionnaire_code == keys["questionnaire"],
            q.c.question_code == f.c.question_code,
        ),
    )
    conditions.append(q.c.kind == kind)
    if questionnaire_kind is not None:
        joined = joined.join(qn, qn.c.questionnaire_code == keys["questionnaire"])
        conditions.append(qn.c.kind == questionnaire_kind)
    keys |= {"question_code": f.c.question_code, "service": f.c.service}
    return joined, conditions, keys


def _unit_question(campaign_id: str) -> sa.Select[Any]:
    f = t.figure_source_question
    joined, conditions, keys = _question_figures(campaign_id, "likert")
    names = ["campaign_id", "unit_code", "level", "questionnaire", "question_code"]
    n_answers = sa.func.sum(f.c.n_answers)
    return (
        sa.select(
            *(keys[k].label(k) for k in names),
            n_answers.label("n_answers"),
            *(sa.func.sum(f.c[f"n_{k}"]).label(f"n_{k}") for k in range(1, 6)),
            _ratio(sa.func.sum(f.c.total), n_answers).label("mean_score"),
            _pct(sa.func.sum(f.c.n_4 + f.c.n_5), n_answers).label("pct_satisfied"),
        )
        .select_from(joined)
        .where(*conditions)
        .group_by(*(keys[k] for k in names))
    )


def _papi(campaign_id: str) -> list[sa.Select[Any]]:
    """% Có per indicator at school, unit and province scope (papi questionnaires only)."""
    f, c = t.figure_source_question, t.campaign
    joined, conditions, keys = _question_figures(campaign_id, "yesno", "papi")
    n_answers = sa.func.sum(f.c.n_answers)
    figures = [
        n_answers.label("n_answers"),
        _pct(sa.func.sum(f.c.total), n_answers).label("pct_yes"),
    ]
    joined = joined.join(c, c.c.campaign_id == f.c.campaign_id)
    selects = []
    for scope, code in (
        ("school", keys["school_code"]),
        ("unit", keys["unit_code"]),
        ("province", c.c.province_code),
    ):
        selects.append(
            sa.select(
                f.c.campaign_id,
                sa.literal(scope, sa.String).label("scope"),
                code.label("scope_code"),
                f.c.question_code.label("indicator"),
                *figures,
            )
            .select_from(joined)
            .where(*conditions)
            .group_by(f.c.campaign_id, code, f.c.question_code)
        )
    return selects


def _service_ranking(campaign_id: str) -> sa.Select[Any]:
    """Total points per (school, service) and its rank per (unit, service).

    Each criterion is averaged over the service's rows before summing, so a service listed
    twice by mistake stays on the 0–80 scale; for the normal single row it is the plain sum.
    """
    f = t.figure_source_question
    joined, conditions, keys = _question_figures(campaign_id, "level", "service_review")
    school_keys = [keys[k].label(k) for k in ("campaign_id", "unit_code", "school_code", "service")]
    per_criterion = (
        sa.select(
            *school_keys,
            _ratio(sa.func.sum(f.c.total), sa.func.sum(f.c.n_answers)).label("points"),
        )
        .select_from(joined)
        .where(*conditions, f.c.service != "")
        .group_by(
            *(keys[k] for k in ("campaign_id", "unit_code", "school_code", "service")),
            f.c.question_code,
        )
        .subquery("per_criterion")
    )
    pc = per_criterion.c
    group = [pc.campaign_id, pc.unit_code, pc.school_code, pc.service]
    totals = (
        sa.select(*group, sa.cast(sa.func.sum(pc.points), sa.Float).label("total_points"))
        .group_by(*group)
        .subquery("totals")
    )
    tt = totals.c
    return sa.select(
        tt.campaign_id,
        tt.unit_code,
        tt.service,
        tt.school_code,
        tt.total_points,
        sa.func.rank()
        .over(
            partition_by=[tt.campaign_id, tt.unit_code, tt.service], order_by=tt.total_points.desc()
        )
        .label("rank"),
    )


def _completeness(campaign_id: str, as_of: dt.datetime, deadline_at: dt.datetime) -> sa.Select[Any]:
    """One row per expected (school, questionnaire) with its submission status.

    Expected: every active source's pair, plus every registered school × each required
    questionnaire of the campaign whose levels include the school's level. Status, first match
    wins: failed (the latest ledger row of one of the pair's sources is 'failed'; its earlier
    rows still count in n_valid) | late (valid data, and every source contributing valid data
    was modified after the deadline, by the modified_at of its current load) | submitted
    (valid data) | pending (none, as_of ≤ deadline) | missing (none, as_of > deadline).
    """
    expected_pairs = _expected_pairs(campaign_id)
    pairs = _completeness_per_pair(_completeness_per_source(campaign_id, deadline_at))
    rejections = _rejected_per_pair(campaign_id)
    expected, per_pair, rejected = expected_pairs.c, pairs.c, rejections.c
    pair_valid = sa.func.coalesce(per_pair.n_valid, 0)
    absent = "pending" if as_of <= deadline_at else "missing"
    status = sa.case(
        (sa.func.coalesce(per_pair.n_failed, 0) > 0, "failed"),
        (sa.and_(pair_valid > 0, sa.func.coalesce(per_pair.n_on_time, 0) == 0), "late"),
        (pair_valid > 0, "submitted"),
        else_=sa.literal(absent, sa.String),
    )

    def same_pair(other: Any) -> Any:
        return sa.and_(
            other.school_code == expected.school_code,
            other.questionnaire == expected.questionnaire,
        )

    return sa.select(
        sa.literal(campaign_id, sa.String).label("campaign_id"),
        expected.school_code,
        expected.questionnaire,
        status.label("status"),
        pair_valid.label("n_valid"),
        sa.func.coalesce(rejected.n_rejected, 0).label("n_rejected"),
        per_pair.last_loaded_at,
    ).select_from(
        expected_pairs.outerjoin(pairs, same_pair(per_pair)).outerjoin(
            rejections, same_pair(rejected)
        )
    )


def _active_source(campaign_id: str) -> Any:
    """The condition on ``source`` of the campaign's active sources."""
    return sa.and_(t.source.c.campaign_id == campaign_id, t.source.c.is_active.is_(sa.true()))


def _completeness_per_source(campaign_id: str, deadline_at: dt.datetime) -> sa.Subquery:
    """Per active source: its valid responses, whether its latest ledger row failed, whether
    its current load has valid data modified by the deadline, and when that load was."""
    source, ledger, figures = t.source, t.load_ledger, t.figure_source
    valid_per_source = (
        sa.select(figures.c.source_id, figures.c.n_valid_responses.label("n_valid"))
        .where(figures.c.campaign_id == campaign_id)
        .subquery("valid_per_source")
    )
    latest_any = latest_loads(campaign_id, name="latest_any")
    latest_loaded = latest_loads(campaign_id, ledger.c.status == "loaded", name="latest_loaded")
    last = ledger.alias("last_row")
    loaded = ledger.alias("loaded_row")
    n_valid = sa.func.coalesce(valid_per_source.c.n_valid, 0)
    on_time = sa.and_(
        n_valid > 0,
        sa.or_(loaded.c.modified_at.is_(None), loaded.c.modified_at <= deadline_at),
    )
    return (
        sa.select(
            source.c.school_code,
            source.c.questionnaire,
            n_valid.label("n_valid"),
            sa.case((last.c.status == "failed", 1), else_=0).label("is_failed"),
            sa.case((on_time, 1), else_=0).label("is_on_time"),
            loaded.c.finished_at.label("loaded_at"),
        )
        .select_from(
            source.outerjoin(valid_per_source, valid_per_source.c.source_id == source.c.source_id)
            .outerjoin(latest_any, latest_any.c.source_id == source.c.source_id)
            .outerjoin(last, last.c.load_id == latest_any.c.load_id)
            .outerjoin(latest_loaded, latest_loaded.c.source_id == source.c.source_id)
            .outerjoin(loaded, loaded.c.load_id == latest_loaded.c.load_id)
        )
        .where(_active_source(campaign_id))
        .subquery("per_source")
    )


def _completeness_per_pair(per_source: sa.Subquery) -> sa.Subquery:
    """``per_source`` summed by (school, questionnaire)."""
    columns = per_source.c
    return (
        sa.select(
            columns.school_code,
            columns.questionnaire,
            sa.func.sum(columns.n_valid).label("n_valid"),
            sa.func.sum(columns.is_failed).label("n_failed"),
            sa.func.sum(columns.is_on_time).label("n_on_time"),
            sa.func.max(columns.loaded_at).label("last_loaded_at"),
        )
        .group_by(columns.school_code, columns.questionnaire)
        .subquery("per_pair")
    )


def _rejected_per_pair(campaign_id: str) -> sa.Subquery:
    """Quarantine rows of the campaign's active sources, counted by (school, questionnaire)."""
    quarantine, source = t.quarantine, t.source
    return (
        sa.select(
            quarantine.c.school_code,
            quarantine.c.questionnaire,
            sa.func.count().label("n_rejected"),
        )
        .select_from(quarantine.join(source, source.c.source_id == quarantine.c.source_id))
        .where(quarantine.c.campaign_id == campaign_id, _active_source(campaign_id))
        .group_by(quarantine.c.school_code, quarantine.c.questionnaire)
        .subquery("rejected")
    )


#: The school code of a file found in a folder row's folder whose name names no school, or two
#: (``flows.registry.ANY_SCHOOL``): a failed source, but no school's submission.
NO_SCHOOL = "*"


def _expected_pairs(campaign_id: str) -> sa.Subquery:
    """Every (school, questionnaire) the campaign expects: each active source's (but those of
    no school, NO_SCHOOL), and each registered school's with each required questionnaire of
    its level."""
    source, school, questionnaire = t.source, t.school, t.questionnaire
    used = t.campaign_questionnaire
    # Levels are stored comma-separated; wrapping both sides in commas matches whole codes only
    # (TH must not match THCS).
    level_matches = (sa.literal(",", sa.String) + questionnaire.c.levels + ",").like(
        sa.literal("%,", sa.String) + school.c.level + ",%"
    )
    return sa.union(
        sa.select(source.c.school_code, source.c.questionnaire).where(
            _active_source(campaign_id), source.c.school_code != NO_SCHOOL
        ),
        sa.select(school.c.school_code, questionnaire.c.questionnaire_code.label("questionnaire"))
        .select_from(
            school.join(used, used.c.campaign_id == school.c.campaign_id).join(
                questionnaire, questionnaire.c.questionnaire_code == used.c.questionnaire_code
            )
        )
        .where(
            school.c.campaign_id == campaign_id,
            questionnaire.c.required.is_(sa.true()),
            level_matches,
        ),
    ).subquery("expected")
