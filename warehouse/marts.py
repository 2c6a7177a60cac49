"""The marts: department-level figures computed in SQL inside the warehouse.

``rebuild_marts`` deletes a campaign's rows of every mart and rebuilds them with INSERT … SELECT
in one transaction, so readers see either last night's marts or tonight's, never a mix. The SQL
is SQLAlchemy Core and runs unchanged on SQLite and PostgreSQL. Grains and column meanings are
the table comments in ``warehouse.tables``; the formulas are DOMAIN.md's "Indices":

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

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from warehouse import tables as t

#: Likert values counted as satisfied / dissatisfied (top-2 and bottom-2 boxes).
SATISFIED_MIN = 4
DISSATISFIED_MAX = 2

#: The dimension label of the 0–100 expectation item (answer kind 'percent').
EXPECTATION_DIMENSION = "MONG_DOI"


def rebuild_marts(
    engine: Engine, campaign_id: str, as_of: dt.datetime, deadline_at: dt.datetime
) -> dict[str, int]:
    """Delete and rebuild every mart's rows of one campaign, in one transaction.

    ``as_of`` is "now" for completeness (pending before ``deadline_at``, missing after);
    ``deadline_at`` is the campaign's deadline (``Campaign.deadline_at``), both naive in the
    campaign's local time. Returns the number of rows written per mart table.
    """
    refresh_statistics(engine)
    written: dict[str, int] = {}
    with engine.begin() as conn:
        for table in t.MART_TABLES:
            conn.execute(sa.delete(table).where(table.c.campaign_id == campaign_id))
        # The per-respondent rows feed both dimension marts: computed once (the pass over every
        # answer with its joins is the expensive part), not once per mart.
        per_respondent = _materialise(conn, _PER_RESPONDENT_TABLE, _per_respondent(campaign_id))
        for table, selects in (
            (t.mart_school_dimension, [_school_dimension(campaign_id, per_respondent)]),
            (t.mart_unit_dimension, [_unit_dimension(campaign_id, per_respondent)]),
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
        per_respondent.drop(conn)
    return written


#: Tables the mart queries read, whose planner statistics are refreshed before a rebuild.
_SOURCE_TABLES = (t.answer, t.response, t.source, t.quarantine, t.load_ledger, t.school, t.question)


def refresh_statistics(engine: Engine) -> None:
    """ANALYZE the tables the marts read, so the planner knows tonight's row counts.

    After a night of bulk loads into fresh tables the statistics are stale or absent (autovacuum
    has not caught up), and PostgreSQL then picks nested loops over hash joins: measured here, a
    rebuild over 60,000 answers took 4.0 s before ANALYZE and 0.7 s after. On SQLite the sample
    is capped (analysis_limit) so the cost does not grow with the warehouse.
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


def _is_valid(kind: Any, value: Any) -> Any:
    """A value in its answer kind's range; the marts count nothing else."""
    return sa.or_(
        sa.and_(kind == "likert", value.in_([1, 2, 3, 4, 5])),
        sa.and_(kind == "yesno", value.in_([0, 1])),
        sa.and_(kind == "level", value.in_([0, 3, 5, 7, 10])),
        sa.and_(kind == "percent", value.between(0, 100)),
    )


def _valid_answers(
    campaign_id: str, *, with_service: bool = False, questionnaire_kind: str | None = None
) -> sa.Subquery:
    """Every valid answer of the campaign with its item, source, school and unit.

    Columns: campaign_id, source_id, response_no, question_code, value, kind, dimension,
    questionnaire, questionnaire_kind, school_code, unit_code, level (and service).

    ``questionnaire_kind`` keeps only the answers of questionnaires of that kind, by their
    sources: the answer key starts with (campaign_id, source_id), so the PAPI and service
    marts read those sources' answers instead of joining every answer of the campaign first
    (most answers are satisfaction answers; profiled at 12 % of a rebuild without it).
    """
    a, s, q, qn, sc = t.answer, t.source, t.question, t.questionnaire, t.school
    columns: list[Any] = [
        a.c.campaign_id,
        a.c.source_id,
        a.c.response_no,
        a.c.question_code,
        a.c.value,
        q.c.kind,
        q.c.dimension,
        s.c.questionnaire,
        qn.c.kind.label("questionnaire_kind"),
        s.c.school_code,
        sc.c.unit_code,
        sc.c.level,
    ]
    joined = (
        a.join(s, sa.and_(s.c.source_id == a.c.source_id, s.c.campaign_id == a.c.campaign_id))
        .join(
            q,
            sa.and_(
                q.c.questionnaire_code == s.c.questionnaire,
                q.c.question_code == a.c.question_code,
            ),
        )
        .join(qn, qn.c.questionnaire_code == s.c.questionnaire)
        .join(sc, sa.and_(sc.c.campaign_id == a.c.campaign_id, sc.c.school_code == s.c.school_code))
    )
    conditions: list[Any] = []
    if questionnaire_kind is not None:
        s2, qn2 = t.source.alias("kind_source"), t.questionnaire.alias("kind_questionnaire")
        conditions.append(
            a.c.source_id.in_(
                sa.select(s2.c.source_id)
                .join(qn2, qn2.c.questionnaire_code == s2.c.questionnaire)
                .where(s2.c.campaign_id == campaign_id, qn2.c.kind == questionnaire_kind)
            )
        )
    if with_service:
        r = t.response
        joined = joined.join(
            r,
            sa.and_(
                r.c.campaign_id == a.c.campaign_id,
                r.c.source_id == a.c.source_id,
                r.c.response_no == a.c.response_no,
            ),
        )
        columns.append(r.c.service)
    return (
        sa.select(*columns)
        .select_from(joined)
        .where(
            a.c.campaign_id == campaign_id,
            s.c.is_active.is_(sa.true()),
            _is_valid(q.c.kind, a.c.value),
            *conditions,
        )
        .subquery("valid_answer")
    )


def _per_respondent(campaign_id: str) -> sa.Select[Any]:
    """One row per (school, unit, level, questionnaire, dimension, respondent) with that
    respondent's answer count, total and satisfied/dissatisfied counts in the dimension."""
    v = _valid_answers(campaign_id)
    dimension = sa.case(
        (v.c.kind == "percent", sa.literal(EXPECTATION_DIMENSION, sa.String)),
        else_=v.c.dimension,
    ).label("dimension")
    is_likert = v.c.kind == "likert"
    satisfied = sa.case((is_likert, sa.case((v.c.value >= SATISFIED_MIN, 1), else_=0)))
    dissatisfied = sa.case((is_likert, sa.case((v.c.value <= DISSATISFIED_MAX, 1), else_=0)))
    base_keys = ["campaign_id", "school_code", "unit_code", "level", "questionnaire"]
    per_respondent = (
        sa.select(
            *(v.c[k] for k in base_keys),
            dimension,
            v.c.source_id,
            v.c.response_no,
            sa.func.count().label("n"),
            sa.func.sum(v.c.value).label("total"),
            sa.func.sum(satisfied).label("n_sat"),
            sa.func.sum(dissatisfied).label("n_dis"),
        )
        .where(
            sa.or_(
                sa.and_(is_likert, v.c.dimension.is_not(None)),
                v.c.kind == "percent",
            )
        )
        .group_by(*(v.c[k] for k in base_keys), dimension, v.c.source_id, v.c.response_no)
    )
    return per_respondent


def _dimension_stats(
    campaign_id: str,
    keys: list[str],
    *,
    n_schools: bool,
    per_respondent: sa.FromClause | None = None,
) -> sa.Select[Any]:
    """Dimension figures grouped by ``keys`` (a subset of campaign_id, school_code, unit_code,
    level, questionnaire, dimension; 'dimension' must be among them).

    Two steps so n_respondents is a plain COUNT on both backends: first one row per
    (keys, respondent) with that respondent's counts (``_per_respondent``, or the table it was
    materialised into), then the sums per keys.
    """
    if per_respondent is None:
        per_respondent = _per_respondent(campaign_id).subquery("per_respondent")
    p = per_respondent.c
    group = [p[k] for k in keys]
    figures: list[Any] = []
    if n_schools:
        figures.append(sa.func.count(sa.distinct(p.school_code)).label("n_schools"))
    figures += [
        sa.func.count().label("n_respondents"),
        sa.func.sum(p.n).label("n_answers"),
        (sa.cast(sa.func.sum(p.total), sa.Float) / sa.cast(sa.func.sum(p.n), sa.Float)).label(
            "mean_score"
        ),
        _pct(sa.func.sum(p.n_sat), sa.func.sum(p.n)).label("pct_satisfied"),
        _pct(sa.func.sum(p.n_dis), sa.func.sum(p.n)).label("pct_dissatisfied"),
    ]
    return sa.select(*group, *figures).group_by(*group)


def _school_dimension(
    campaign_id: str, per_respondent: sa.FromClause | None = None
) -> sa.Select[Any]:
    return _dimension_stats(
        campaign_id,
        ["campaign_id", "school_code", "questionnaire", "dimension"],
        n_schools=False,
        per_respondent=per_respondent,
    )


def _unit_dimension(
    campaign_id: str, per_respondent: sa.FromClause | None = None
) -> sa.Select[Any]:
    return _dimension_stats(
        campaign_id,
        ["campaign_id", "unit_code", "level", "questionnaire", "dimension"],
        n_schools=True,
        per_respondent=per_respondent,
    )


#: Name of the temporary table holding the per-respondent rows during a rebuild.
_PER_RESPONDENT_TABLE = "khaosat_tmp_per_respondent"


def _materialise(conn: sa.Connection, name: str, select: sa.Select[Any]) -> sa.Table:
    """``select``'s rows in a new TEMPORARY table of the connection (dropped by the caller;
    created inside the caller's transaction, so a rollback removes it too)."""
    table = sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(c.name, c.type) for c in select.selected_columns),
        prefixes=["TEMPORARY"],
    )
    table.create(conn)
    conn.execute(table.insert().from_select([c.name for c in select.selected_columns], select))
    return table


def _unit_question(campaign_id: str) -> sa.Select[Any]:
    v = _valid_answers(campaign_id)
    group = [v.c.campaign_id, v.c.unit_code, v.c.level, v.c.questionnaire, v.c.question_code]
    counts = [
        sa.func.sum(sa.case((v.c.value == k, 1), else_=0)).label(f"n_{k}") for k in range(1, 6)
    ]
    n_satisfied = sa.func.sum(sa.case((v.c.value >= SATISFIED_MIN, 1), else_=0))
    return (
        sa.select(
            *group,
            sa.func.count().label("n_answers"),
            *counts,
            sa.cast(sa.func.avg(v.c.value), sa.Float).label("mean_score"),
            _pct(n_satisfied, sa.func.count()).label("pct_satisfied"),
        )
        .where(v.c.kind == "likert")
        .group_by(*group)
    )


def _papi(campaign_id: str) -> list[sa.Select[Any]]:
    """% Có per indicator at school, unit and province scope (papi questionnaires only)."""
    v = _valid_answers(campaign_id, questionnaire_kind="papi")
    papi = sa.and_(v.c.kind == "yesno", v.c.questionnaire_kind == "papi")
    figures = [
        sa.func.count().label("n_answers"),
        _pct(sa.func.sum(v.c.value), sa.func.count()).label("pct_yes"),
    ]
    selects = []
    for scope, code in (("school", v.c.school_code), ("unit", v.c.unit_code)):
        selects.append(
            sa.select(
                v.c.campaign_id,
                sa.literal(scope, sa.String).label("scope"),
                code.label("scope_code"),
                v.c.question_code.label("indicator"),
                *figures,
            )
            .where(papi)
            .group_by(v.c.campaign_id, code, v.c.question_code)
        )
    c = t.campaign
    selects.append(
        sa.select(
            v.c.campaign_id,
            sa.literal("province", sa.String).label("scope"),
            c.c.province_code.label("scope_code"),
            v.c.question_code.label("indicator"),
            *figures,
        )
        .select_from(v.join(c, c.c.campaign_id == v.c.campaign_id))
        .where(papi)
        .group_by(v.c.campaign_id, c.c.province_code, v.c.question_code)
    )
    return selects


def _service_ranking(campaign_id: str) -> sa.Select[Any]:
    """Total points per (school, service) and its rank per (unit, service).

    Each criterion is averaged over the service's rows before summing, so a service listed
    twice by mistake stays on the 0–80 scale; for the normal single row it is the plain sum.
    """
    v = _valid_answers(campaign_id, with_service=True, questionnaire_kind="service_review")
    school_keys = [v.c.campaign_id, v.c.unit_code, v.c.school_code, v.c.service]
    per_criterion = (
        sa.select(*school_keys, sa.func.avg(v.c.value).label("points"))
        .where(
            v.c.kind == "level",
            v.c.questionnaire_kind == "service_review",
            v.c.service.is_not(None),
            v.c.service != "",
        )
        .group_by(*school_keys, v.c.question_code)
        .subquery("per_criterion")
    )
    pc = per_criterion.c
    keys = [pc.campaign_id, pc.unit_code, pc.school_code, pc.service]
    totals = (
        sa.select(*keys, sa.cast(sa.func.sum(pc.points), sa.Float).label("total_points"))
        .group_by(*keys)
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
    s, led, sc, q, cq, qu = (
        t.source,
        t.load_ledger,
        t.school,
        t.questionnaire,
        t.campaign_questionnaire,
        t.quarantine,
    )
    active = sa.and_(s.c.campaign_id == campaign_id, s.c.is_active.is_(sa.true()))

    v = _valid_answers(campaign_id)
    valid_per_source = (
        sa.select(v.c.source_id, sa.func.count(sa.distinct(v.c.response_no)).label("n_valid"))
        .group_by(v.c.source_id)
        .subquery("valid_per_source")
    )

    def latest(*conditions: Any, name: str) -> sa.Subquery:
        return (
            sa.select(led.c.source_id, sa.func.max(led.c.load_id).label("load_id"))
            .where(led.c.campaign_id == campaign_id, *conditions)
            .group_by(led.c.source_id)
            .subquery(name)
        )

    latest_any = latest(name="latest_any")
    latest_loaded = latest(led.c.status == "loaded", name="latest_loaded")
    last = led.alias("last_row")
    loaded = led.alias("loaded_row")
    n_valid = sa.func.coalesce(valid_per_source.c.n_valid, 0)
    per_source = (
        sa.select(
            s.c.school_code,
            s.c.questionnaire,
            n_valid.label("n_valid"),
            sa.case((last.c.status == "failed", 1), else_=0).label("is_failed"),
            sa.case(
                (
                    sa.and_(
                        n_valid > 0,
                        sa.or_(loaded.c.modified_at.is_(None), loaded.c.modified_at <= deadline_at),
                    ),
                    1,
                ),
                else_=0,
            ).label("is_on_time"),
            loaded.c.finished_at.label("loaded_at"),
        )
        .select_from(
            s.outerjoin(valid_per_source, valid_per_source.c.source_id == s.c.source_id)
            .outerjoin(latest_any, latest_any.c.source_id == s.c.source_id)
            .outerjoin(last, last.c.load_id == latest_any.c.load_id)
            .outerjoin(latest_loaded, latest_loaded.c.source_id == s.c.source_id)
            .outerjoin(loaded, loaded.c.load_id == latest_loaded.c.load_id)
        )
        .where(active)
        .subquery("per_source")
    )
    ps = per_source.c
    per_pair = (
        sa.select(
            ps.school_code,
            ps.questionnaire,
            sa.func.sum(ps.n_valid).label("n_valid"),
            sa.func.sum(ps.is_failed).label("n_failed"),
            sa.func.sum(ps.is_on_time).label("n_on_time"),
            sa.func.max(ps.loaded_at).label("last_loaded_at"),
        )
        .group_by(ps.school_code, ps.questionnaire)
        .subquery("per_pair")
    )
    rejected = (
        sa.select(qu.c.school_code, qu.c.questionnaire, sa.func.count().label("n_rejected"))
        .select_from(qu.join(s, s.c.source_id == qu.c.source_id))
        .where(qu.c.campaign_id == campaign_id, active)
        .group_by(qu.c.school_code, qu.c.questionnaire)
        .subquery("rejected")
    )
    # Levels are stored comma-separated; wrapping both sides in commas matches whole codes only
    # (TH must not match THCS).
    level_matches = (sa.literal(",", sa.String) + q.c.levels + ",").like(
        sa.literal("%,", sa.String) + sc.c.level + ",%"
    )
    expected = sa.union(
        sa.select(s.c.school_code, s.c.questionnaire).where(active),
        sa.select(sc.c.school_code, q.c.questionnaire_code.label("questionnaire"))
        .select_from(
            sc.join(cq, cq.c.campaign_id == sc.c.campaign_id).join(
                q, q.c.questionnaire_code == cq.c.questionnaire_code
            )
        )
        .where(sc.c.campaign_id == campaign_id, q.c.required.is_(sa.true()), level_matches),
    ).subquery("expected")

    e, pp, rj = expected.c, per_pair.c, rejected.c
    pair_valid = sa.func.coalesce(pp.n_valid, 0)
    absent = "pending" if as_of <= deadline_at else "missing"
    status = sa.case(
        (sa.func.coalesce(pp.n_failed, 0) > 0, "failed"),
        (sa.and_(pair_valid > 0, sa.func.coalesce(pp.n_on_time, 0) == 0), "late"),
        (pair_valid > 0, "submitted"),
        else_=sa.literal(absent, sa.String),
    )
    return sa.select(
        sa.literal(campaign_id, sa.String).label("campaign_id"),
        e.school_code,
        e.questionnaire,
        status.label("status"),
        pair_valid.label("n_valid"),
        sa.func.coalesce(rj.n_rejected, 0).label("n_rejected"),
        pp.last_loaded_at,
    ).select_from(
        expected.outerjoin(
            per_pair,
            sa.and_(pp.school_code == e.school_code, pp.questionnaire == e.questionnaire),
        ).outerjoin(
            rejected,
            sa.and_(rj.school_code == e.school_code, rj.questionnaire == e.questionnaire),
        )
    )
