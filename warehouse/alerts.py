"""Alerts in the warehouse: what the rules read, the lifecycle upsert, and the officer's queries.

The rules themselves are pure functions in ``flows.alerts``; this module is their IO:

- ``read_inputs`` reads one campaign's marts (and the few facts no mart holds: per-school item
  counts and service criteria from the per-source figures, answers kept per source from the
  ledger, rejected values per source from quarantine) into plain frozen rows; it never reads
  the answers or responses, which hold millions of rows in a province;
- ``sync_alerts`` applies one evaluation's candidates to the ``alerts`` table in ONE
  transaction, with the lifecycle DESIGN.md asks for (below);
- ``list_alerts`` and ``get_alert`` are what ``khaosat alerts`` reads; the officer's changes
  and the alert history are ``warehouse.alert_actions``'s. Each change a night makes (reopen,
  worsen, clear) is a row of ``alert_event``, as each officer's is.
The lifecycle is ``sync_alerts``'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from warehouse import tables as t
from warehouse.db import local_now
from warehouse.ledger import latest_loads
from warehouse.marts import ensure_figures

#: alerts.severity values, most severe first.
SEVERITIES = ("red", "amber", "info")
#: alerts.status values.
STATUSES = ("open", "acknowledged", "resolved")
#: Statuses of an alert whose condition held at the last evaluation.
ACTIVE_STATUSES = ("open", "acknowledged")

#: Likert values counted as dissatisfied (bottom-2 box), as in warehouse.marts.
DISSATISFIED_MAX = 2

#: The unique key of an alert within its campaign.
IDENTITY = ("rule", "scope", "scope_code", "subject")

#: alert_event.by of the changes a night makes.
NIGHT = "khaosat"

# IN lists are chunked so a large campaign never hits a backend's bind-parameter limit.
_CHUNK = 500


# ------------------------------------------------------------------------------------------
# Rows the rules read (one dataclass per mart or fact query; all plain values)
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DimensionFigures:
    """One row of mart_school_dimension (scope 'school', level None) or mart_unit_dimension
    (scope 'unit'). pct_* are 0–100; pct_satisfied is None for MONG_DOI."""

    scope: str
    scope_code: str
    questionnaire: str
    dimension: str
    n_respondents: int
    mean_score: float | None
    pct_satisfied: float | None
    level: str | None = None


@dataclass(frozen=True)
class ItemFigures:
    """Valid answers to one Likert item in a school (from the per-source figures) or a unit (from
    mart_unit_question): n_dissatisfied = #1 + #2."""

    scope: str
    scope_code: str
    questionnaire: str
    question_code: str
    dimension: str | None
    n_answers: int
    n_dissatisfied: int
    level: str | None = None


@dataclass(frozen=True)
class PapiFigures:
    """One row of mart_papi."""

    scope: str
    scope_code: str
    indicator: str
    n_answers: int
    pct_yes: float


@dataclass(frozen=True)
class ServiceFigures:
    """One school's service from mart_service_ranking (total_points 0–80)."""

    school_code: str
    service: str
    total_points: float


@dataclass(frozen=True)
class CriterionFigures:
    """One review criterion of one school's service: its points averaged over the service's
    rows, as mart_service_ranking averages them before summing."""

    school_code: str
    service: str
    criterion: str
    points: float


@dataclass(frozen=True)
class CompletenessFigures:
    """One row of mart_completeness with the school's enrolment and the questionnaire's kind."""

    school_code: str
    questionnaire: str
    questionnaire_kind: str | None
    status: str
    n_valid: int
    enrollment: int | None


@dataclass(frozen=True)
class SourceFigures:
    """One active source: answers kept and values rejected (quarantine scope 'value')."""

    school_code: str
    questionnaire: str
    location: str
    n_answers: int
    n_rejected_values: int


@dataclass(frozen=True)
class AlertInputs:
    """Everything the rules of one evaluation read, for one campaign (and its previous one)."""

    dimensions: list[DimensionFigures] = field(default_factory=list)
    previous_dimensions: list[DimensionFigures] = field(default_factory=list)
    items: list[ItemFigures] = field(default_factory=list)
    papi: list[PapiFigures] = field(default_factory=list)
    services: list[ServiceFigures] = field(default_factory=list)
    criteria: list[CriterionFigures] = field(default_factory=list)
    completeness: list[CompletenessFigures] = field(default_factory=list)
    sources: list[SourceFigures] = field(default_factory=list)


# ------------------------------------------------------------------------------------------
# What the rules produce, and what the table holds
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertCandidate:
    """A condition that holds now: one would-be row of ``alerts`` without its lifecycle."""

    rule: str
    severity: str
    scope: str
    scope_code: str
    subject: str
    value: float | None = None
    threshold: float | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The identity within a campaign: (rule, scope, scope_code, subject)."""
        return (self.rule, self.scope, self.scope_code, self.subject)


@dataclass(frozen=True)
class Alert:
    """One row of ``alerts``, plus the name of its school or unit when the registry has it."""

    alert_id: int
    campaign_id: str
    rule: str
    severity: str
    scope: str
    scope_code: str
    subject: str
    value: float | None
    threshold: float | None
    status: str
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    note: str | None
    scope_name: str | None = None


@dataclass(frozen=True)
class AlertSync:
    """What one evaluation changed: identities opened for the first time, reopened (resolved
    before and holding again, or acknowledged before and worse now), still holding (open or
    acknowledged), and resolved."""

    opened: int = 0
    reopened: int = 0
    held: int = 0
    resolved: int = 0


class AlertError(ValueError):
    """An officer's request that cannot be applied (unknown id, wrong campaign, bad state)."""


class UnknownAlert(AlertError):
    """No alert ``alert_id`` in ``campaign_id``; ``known`` holds the ids the campaign has."""

    def __init__(self, campaign_id: str, alert_id: int, known: Sequence[int]) -> None:
        super().__init__(f"no alert {alert_id} in campaign {campaign_id}")
        self.alert_id = alert_id
        self.known = list(known)


# ------------------------------------------------------------------------------------------
# Reading the inputs
# ------------------------------------------------------------------------------------------


def read_inputs(engine: Engine, campaign_id: str, previous_id: str | None = None) -> AlertInputs:
    """Read everything the alert rules need for ``campaign_id``, in one transaction.

    ``previous_id`` is the previous campaign (``campaign.previous``) whose dimension marts are
    compared year on year; its rows are read only if it is in this warehouse (no rows
    otherwise). Only active sources and registered schools count, as in the marts.

    Facts no mart holds are read from the per-source figures (``warehouse.figures``) and the
    ledger, never from the answers. Figures missing or out of date (a warehouse loaded before
    they existed, items changed in schemas/) are computed first, as the marts do; after a
    rebuild of the marts there is nothing to compute.
    """
    ensure_figures(engine, campaign_id)
    with engine.connect() as conn:
        return AlertInputs(
            dimensions=_dimensions(conn, campaign_id),
            previous_dimensions=_dimensions(conn, previous_id) if previous_id else [],
            items=_unit_items(conn, campaign_id) + _school_items(conn, campaign_id),
            papi=_papi(conn, campaign_id),
            services=_services(conn, campaign_id),
            criteria=_criteria(conn, campaign_id),
            completeness=_completeness(conn, campaign_id),
            sources=_sources(conn, campaign_id),
        )


def _float(value: Any) -> float | None:
    # PostgreSQL returns AVG/SUM as Decimal; the rules compare floats.
    return None if value is None else float(value)


def _dimensions(conn: sa.Connection, campaign_id: str) -> list[DimensionFigures]:
    sd, ud = t.mart_school_dimension, t.mart_unit_dimension
    out = [
        DimensionFigures(
            "school",
            r.school_code,
            r.questionnaire,
            r.dimension,
            int(r.n_respondents),
            _float(r.mean_score),
            _float(r.pct_satisfied),
        )
        for r in conn.execute(sa.select(sd).where(sd.c.campaign_id == campaign_id))
    ]
    out += [
        DimensionFigures(
            "unit",
            r.unit_code,
            r.questionnaire,
            r.dimension,
            int(r.n_respondents),
            _float(r.mean_score),
            _float(r.pct_satisfied),
            level=r.level,
        )
        for r in conn.execute(sa.select(ud).where(ud.c.campaign_id == campaign_id))
    ]
    return out


def _unit_items(conn: sa.Connection, campaign_id: str) -> list[ItemFigures]:
    uq, q = t.mart_unit_question, t.question
    stmt = (
        sa.select(uq, q.c.dimension)
        .select_from(
            uq.outerjoin(
                q,
                sa.and_(
                    q.c.questionnaire_code == uq.c.questionnaire,
                    q.c.question_code == uq.c.question_code,
                ),
            )
        )
        .where(uq.c.campaign_id == campaign_id)
    )
    return [
        ItemFigures(
            "unit",
            r.unit_code,
            r.questionnaire,
            r.question_code,
            r.dimension,
            int(r.n_answers),
            int(r.n_1) + int(r.n_2),
            level=r.level,
        )
        for r in conn.execute(stmt)
    ]


def _figure_join() -> Any:
    """figure_source_question ⋈ source ⋈ question ⋈ school: item figures of registered schools.

    The marts are rebuilt from these per-source sums, so reading them (a few rows per source)
    instead of the answers (millions of rows in a province) gives the same counts and keeps the
    evaluation's cost independent of the number of answers.
    """
    f, s, q, sc = t.figure_source_question, t.source, t.question, t.school
    return (
        f.join(s, sa.and_(s.c.source_id == f.c.source_id, s.c.campaign_id == f.c.campaign_id))
        .join(
            q,
            sa.and_(
                q.c.questionnaire_code == s.c.questionnaire,
                q.c.question_code == f.c.question_code,
            ),
        )
        .join(sc, sa.and_(sc.c.campaign_id == f.c.campaign_id, sc.c.school_code == s.c.school_code))
    )


def _school_items(conn: sa.Connection, campaign_id: str) -> list[ItemFigures]:
    """Per school and Likert item: valid answers and #1 + #2 (no mart holds items per school).

    figure_source_question counts a Likert item's valid answers (1–5) and each value per
    source; a school's figures are the sums over its active sources (and services).
    """
    f, s, q = t.figure_source_question, t.source, t.question
    group = [s.c.school_code, s.c.questionnaire, f.c.question_code, q.c.dimension]
    stmt = (
        sa.select(
            *group,
            sa.func.sum(f.c.n_answers).label("n_answers"),
            # the bottom-2 box: values up to DISSATISFIED_MAX
            sa.func.sum(f.c.n_1 + f.c.n_2).label("n_dis"),
        )
        .select_from(_figure_join())
        .where(
            f.c.campaign_id == campaign_id,
            s.c.is_active.is_(sa.true()),
            q.c.kind == "likert",
        )
        .group_by(*group)
    )
    return [
        ItemFigures(
            "school",
            r.school_code,
            r.questionnaire,
            r.question_code,
            r.dimension,
            int(r.n_answers),
            int(r.n_dis),
        )
        for r in conn.execute(stmt)
    ]


def _papi(conn: sa.Connection, campaign_id: str) -> list[PapiFigures]:
    p = t.mart_papi
    return [
        PapiFigures(r.scope, r.scope_code, r.indicator, int(r.n_answers), float(r.pct_yes))
        for r in conn.execute(sa.select(p).where(p.c.campaign_id == campaign_id))
    ]


def _services(conn: sa.Connection, campaign_id: str) -> list[ServiceFigures]:
    m = t.mart_service_ranking
    stmt = (
        sa.select(m.c.school_code, m.c.service, m.c.total_points)
        .where(m.c.campaign_id == campaign_id)
        .distinct()
    )
    return [
        ServiceFigures(r.school_code, r.service, float(r.total_points)) for r in conn.execute(stmt)
    ]


def _criteria(conn: sa.Connection, campaign_id: str) -> list[CriterionFigures]:
    """Each review criterion's points per (school, service), averaged like the ranking mart.

    The mean is pooled over the school's active sources: sum of the valid values over their
    count, from figure_source_question (service is '' for answers naming no service).
    """
    f, s, q, qn = t.figure_source_question, t.source, t.question, t.questionnaire
    group = [s.c.school_code, f.c.service, f.c.question_code]
    stmt = (
        sa.select(
            *group,
            sa.func.sum(f.c.total).label("total"),
            sa.func.sum(f.c.n_answers).label("n_answers"),
        )
        .select_from(_figure_join().join(qn, qn.c.questionnaire_code == s.c.questionnaire))
        .where(
            f.c.campaign_id == campaign_id,
            s.c.is_active.is_(sa.true()),
            q.c.kind == "level",
            qn.c.kind == "service_review",
            f.c.service != "",
        )
        .group_by(*group)
    )
    return [
        # Level values are whole points, so the sums are exact and this division gives the
        # same float as AVG over the answers did.
        CriterionFigures(
            row.school_code, row.service, row.question_code, float(row.total) / int(row.n_answers)
        )
        for row in conn.execute(stmt)
        if row.n_answers
    ]


def _completeness(conn: sa.Connection, campaign_id: str) -> list[CompletenessFigures]:
    mc, sc, qn = t.mart_completeness, t.school, t.questionnaire
    stmt = (
        sa.select(mc, sc.c.enrollment, qn.c.kind.label("questionnaire_kind"))
        .select_from(
            mc.outerjoin(
                sc,
                sa.and_(sc.c.campaign_id == mc.c.campaign_id, sc.c.school_code == mc.c.school_code),
            ).outerjoin(qn, qn.c.questionnaire_code == mc.c.questionnaire)
        )
        .where(mc.c.campaign_id == campaign_id)
    )
    return [
        CompletenessFigures(
            r.school_code,
            r.questionnaire,
            r.questionnaire_kind,
            r.status,
            int(r.n_valid),
            None if r.enrollment is None else int(r.enrollment),
        )
        for r in conn.execute(stmt)
    ]


def _sources(conn: sa.Connection, campaign_id: str) -> list[SourceFigures]:
    """Active sources with their answers kept and values rejected.

    Answers kept come from the source's latest 'loaded' ledger row: ``replace_source`` writes
    a source's answers and that row in one transaction, and nothing else writes or deletes
    answers, so its n_answers is the number of answer rows the source holds, without counting
    them. Rejected values are counted in quarantine (scope 'value'), which holds only the
    rejections and is indexed by source.
    """
    led, qu, s = t.load_ledger, t.quarantine, t.source
    loaded = latest_loads(campaign_id, led.c.status == "loaded", name="loaded")
    current = led.alias("current")
    rejected = (
        sa.select(qu.c.source_id, sa.func.count().label("n"))
        .where(qu.c.campaign_id == campaign_id, qu.c.scope == "value")
        .group_by(qu.c.source_id)
        .subquery("rejected")
    )
    stmt = (
        sa.select(
            s.c.school_code,
            s.c.questionnaire,
            s.c.location,
            sa.func.coalesce(current.c.n_answers, 0).label("n_answers"),
            sa.func.coalesce(rejected.c.n, 0).label("n_rejected"),
        )
        .select_from(
            s.outerjoin(loaded, loaded.c.source_id == s.c.source_id)
            .outerjoin(current, current.c.load_id == loaded.c.load_id)
            .outerjoin(rejected, rejected.c.source_id == s.c.source_id)
        )
        .where(s.c.campaign_id == campaign_id, s.c.is_active.is_(sa.true()))
    )
    return [
        SourceFigures(
            r.school_code, r.questionnaire, r.location, int(r.n_answers), int(r.n_rejected)
        )
        for r in conn.execute(stmt)
    ]


# ------------------------------------------------------------------------------------------
# The lifecycle upsert
# ------------------------------------------------------------------------------------------


def _severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def dedupe(candidates: Iterable[AlertCandidate]) -> dict[tuple[str, str, str, str], AlertCandidate]:
    """One candidate per identity, the most severe winning (then the first given).

    Rules should not produce the same identity twice; if two ever do, one multi-row upsert
    touching a key twice is an error on PostgreSQL, so it is settled here instead.
    """
    chosen: dict[tuple[str, str, str, str], AlertCandidate] = {}
    for c in candidates:
        if c.severity not in SEVERITIES:
            raise ValueError(f"alert {c.key}: unknown severity {c.severity!r}")
        if c.scope not in t.SCOPES:
            raise ValueError(f"alert {c.key}: unknown scope {c.scope!r}")
        held = chosen.get(c.key)
        if held is None or _severity_rank(c.severity) < _severity_rank(held.severity):
            chosen[c.key] = c
    return chosen


def _severity_order(column: Any) -> Any:
    """A severity as its place in ``SEVERITIES`` (0 the most severe), in SQL."""
    return sa.case({s: i for i, s in enumerate(SEVERITIES)}, value=column, else_=len(SEVERITIES))


def _upsert_statement(conn: sa.Connection) -> Any:
    """INSERT INTO alerts … ON CONFLICT (identity) DO UPDATE with the lifecycle's status rule."""
    al = t.alerts
    insert: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        insert = pg_insert(al)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        insert = sqlite_insert(al)
    return insert.on_conflict_do_update(
        index_elements=["campaign_id", *IDENTITY],
        set_={
            "severity": insert.excluded.severity,
            "value": insert.excluded.value,
            "threshold": insert.excluded.threshold,
            "last_seen_at": insert.excluded.last_seen_at,
            # resolved + the condition holds again = reopened; acknowledged stays acknowledged
            # unless it got worse. The old row's severity is read: SET sees the row as it was.
            "status": sa.case(
                (al.c.status == "resolved", "open"),
                (
                    (al.c.status == "acknowledged")
                    & (_severity_order(insert.excluded.severity) < _severity_order(al.c.severity)),
                    "open",
                ),
                else_=al.c.status,
            ),
        },
    )


def sync_alerts(
    engine: Engine,
    campaign_id: str,
    candidates: Iterable[AlertCandidate],
    *,
    now: dt.datetime | None = None,
) -> AlertSync:
    """Apply one evaluation's candidates to ``alerts`` in one transaction.

    Lifecycle. An alert's identity is (campaign_id, rule, scope, scope_code, subject), the
    table's unique key. For each candidate of an evaluation: a new identity is inserted
    ``open``; a known one gets its value, severity, threshold and last_seen_at updated, keeps
    first_seen_at and note, keeps status ``open`` or ``acknowledged``, and goes from
    ``resolved`` back to ``open`` (the condition returned). An ``acknowledged`` alert whose
    severity worsens (amber to red) opens again: what an officer acknowledged is not what holds
    now. Every known identity that is not a candidate any more and is not resolved becomes
    ``resolved``. The insert-or-update is ``INSERT … ON CONFLICT DO UPDATE`` (SQLAlchemy Core;
    SQLite and PostgreSQL spell it the same), so an evaluation never duplicates an alert.

    ``candidates`` must be every condition that holds for the campaign now: any active alert
    of the campaign not among them is resolved. ``now`` (naive, campaign local time) stamps
    first_seen_at and last_seen_at; default: the current time in the campaign's time zone.

    Each change of status is also a row of ``alert_event`` by ``NIGHT``, at ``now``: ``reopen``
    (resolved, holding again), ``worsen`` (acknowledged, now more severe: open again; the note
    says from what to what) and ``clear`` (resolved because it no longer holds).
    """
    chosen = dedupe(candidates)
    with engine.begin() as conn:
        when = now or local_now(conn, campaign_id)
        before = _alerts_before(conn, campaign_id)
        rows = [
            {
                "campaign_id": campaign_id,
                "rule": c.rule,
                "severity": c.severity,
                "scope": c.scope,
                "scope_code": c.scope_code,
                "subject": c.subject,
                "value": c.value,
                "threshold": c.threshold,
                "status": "open",
                "first_seen_at": when,
                "last_seen_at": when,
                "note": None,
            }
            for c in chosen.values()
        ]
        if rows:
            conn.execute(_upsert_statement(conn), rows)
        stale = [
            alert_id
            for key, (alert_id, status, _) in before.items()
            if key not in chosen and status in ACTIVE_STATUSES
        ]
        _resolve(conn, stale)
        statuses = [_status_after(before.get(key), c.severity) for key, c in chosen.items()]
        events = _night_events(before, chosen, when)
        events += [event_row(alert_id, when, "clear", NIGHT, None) for alert_id in stale]
        record_events(conn, events)
    return AlertSync(
        opened=statuses.count("opened"),
        reopened=statuses.count("reopened"),
        held=statuses.count("held"),
        resolved=len(stale),
    )


def _alerts_before(
    conn: sa.Connection, campaign_id: str
) -> dict[tuple[str, str, str, str], tuple[int, str, str]]:
    """Identity -> (alert_id, status, severity) of every alert of the campaign, before a sync."""
    alerts = t.alerts
    stmt = sa.select(
        alerts.c.alert_id, alerts.c.status, alerts.c.severity, *(alerts.c[k] for k in IDENTITY)
    ).where(alerts.c.campaign_id == campaign_id)
    return {
        (row.rule, row.scope, row.scope_code, row.subject): (
            int(row.alert_id),
            row.status,
            row.severity,
        )
        for row in conn.execute(stmt)
    }


def _resolve(conn: sa.Connection, alert_ids: list[int]) -> None:
    """Mark the alerts ``alert_ids`` resolved (in chunks, to stay under bound-parameter limits)."""
    alerts = t.alerts
    for start in range(0, len(alert_ids), _CHUNK):
        conn.execute(
            sa.update(alerts)
            .where(alerts.c.alert_id.in_(alert_ids[start : start + _CHUNK]))
            .values(status="resolved")
        )


def _status_after(before: tuple[int, str, str] | None, severity: str) -> str:
    """What the upsert did to a candidate's alert, as ``AlertSync`` counts it."""
    if before is None:
        return "opened"
    _, status, was = before
    worse = _severity_rank(severity) < _severity_rank(was)
    return "reopened" if status == "resolved" or (status == "acknowledged" and worse) else "held"


def _night_events(
    before: dict[tuple[str, str, str, str], tuple[int, str, str]],
    chosen: dict[tuple[str, str, str, str], AlertCandidate],
    when: dt.datetime,
) -> list[dict[str, Any]]:
    """The alert_event rows of the candidates whose alert the upsert opened again."""
    events = []
    for key, c in chosen.items():
        held = before.get(key)
        if held is None or _status_after(held, c.severity) != "reopened":
            continue
        alert_id, status, was = held
        if status == "resolved":
            events.append(event_row(alert_id, when, "reopen", NIGHT, None))
        else:
            events.append(event_row(alert_id, when, "worsen", NIGHT, f"{was} → {c.severity}"))
    return events


def event_row(
    alert_id: int, at: dt.datetime, action: str, by: str, note: str | None
) -> dict[str, Any]:
    """One alert_event row: ``action`` (``tables.ALERT_ACTIONS``) by ``by`` at ``at``."""
    return {"alert_id": alert_id, "at": at, "action": action, "actor": by, "note": note}


def record_events(conn: sa.Connection, events: list[dict[str, Any]]) -> None:
    """Insert alert_event rows (``event_row``) in the caller's transaction."""
    for start in range(0, len(events), _CHUNK):
        conn.execute(sa.insert(t.alert_event), events[start : start + _CHUNK])


def mark_seen(engine: Engine, campaign_id: str, now: dt.datetime) -> int:
    """Stamp last_seen_at on every active alert of the campaign; returns how many.

    For a night whose inputs equal the last evaluation's: the same conditions hold, so this is
    what evaluating again would write, without reading the marts.
    """
    al = t.alerts
    with engine.begin() as conn:
        result = conn.execute(
            sa.update(al)
            .where(al.c.campaign_id == campaign_id, al.c.status.in_(ACTIVE_STATUSES))
            .values(last_seen_at=now)
        )
    return int(result.rowcount or 0)


# ------------------------------------------------------------------------------------------
# Queries and the officer's actions
# ------------------------------------------------------------------------------------------


def _alert_select() -> sa.Select[Any]:
    al, sc, un = t.alerts, t.school, t.unit
    return sa.select(
        al, sa.func.coalesce(sc.c.school_name, un.c.unit_name).label("scope_name")
    ).select_from(
        al.outerjoin(
            sc,
            sa.and_(
                al.c.scope == "school",
                sc.c.campaign_id == al.c.campaign_id,
                sc.c.school_code == al.c.scope_code,
            ),
        ).outerjoin(
            un,
            sa.and_(
                al.c.scope == "unit",
                un.c.campaign_id == al.c.campaign_id,
                un.c.unit_code == al.c.scope_code,
            ),
        )
    )


def _alert(row: Any) -> Alert:
    return Alert(
        alert_id=int(row.alert_id),
        campaign_id=row.campaign_id,
        rule=row.rule,
        severity=row.severity,
        scope=row.scope,
        scope_code=row.scope_code,
        subject=row.subject,
        value=_float(row.value),
        threshold=_float(row.threshold),
        status=row.status,
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        note=row.note,
        scope_name=row.scope_name,
    )


def list_alerts(
    engine: Engine,
    campaign_id: str,
    *,
    statuses: Sequence[str] | None = None,
    severity: str | None = None,
    unit: str | None = None,
) -> list[Alert]:
    """The campaign's alerts, most severe first, then by scope, code, rule and subject.

    ``statuses``: only these (default: all); ``severity``: only this one; ``unit``: alerts on
    that reporting unit and on the schools it held in this campaign.
    """
    al, sc = t.alerts, t.school
    stmt = _alert_select().where(al.c.campaign_id == campaign_id)
    if statuses:
        stmt = stmt.where(al.c.status.in_(list(statuses)))
    if severity:
        stmt = stmt.where(al.c.severity == severity)
    if unit:
        schools = sa.select(sc.c.school_code).where(
            sc.c.campaign_id == campaign_id, sc.c.unit_code == unit
        )
        stmt = stmt.where(
            sa.or_(
                sa.and_(al.c.scope == "unit", al.c.scope_code == unit),
                sa.and_(al.c.scope == "school", al.c.scope_code.in_(schools)),
            )
        )
    rank = sa.case({s: i for i, s in enumerate(SEVERITIES)}, value=al.c.severity, else_=9)
    stmt = stmt.order_by(rank, al.c.scope, al.c.scope_code, al.c.rule, al.c.subject, al.c.alert_id)
    with engine.connect() as conn:
        return [_alert(r) for r in conn.execute(stmt)]


def alert_ids(engine: Engine, campaign_id: str) -> list[int]:
    """The ids of every alert of the campaign, in order."""
    al = t.alerts
    stmt = sa.select(al.c.alert_id).where(al.c.campaign_id == campaign_id).order_by(al.c.alert_id)
    with engine.connect() as conn:
        return [int(i) for i in conn.execute(stmt).scalars()]


def get_alert(engine: Engine, campaign_id: str, alert_id: int) -> Alert:
    """One alert of the campaign; UnknownAlert if there is none with that id in it."""
    with engine.connect() as conn:
        row = conn.execute(
            _alert_select().where(
                t.alerts.c.alert_id == alert_id, t.alerts.c.campaign_id == campaign_id
            )
        ).first()
    if row is None:
        raise UnknownAlert(campaign_id, alert_id, alert_ids(engine, campaign_id))
    return _alert(row)
