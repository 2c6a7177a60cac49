"""The comment mart's store: the comments it is built from, the rows it holds, and who reads them.

``flows.comments`` classifies the comments with the codebook; this module gives it the stored
comments (``comment_inputs``: the respondents per school and questionnaire counted in SQL, the
non-empty comments streamed in one pass) and replaces a campaign's mart rows in one transaction
(``write_comment_mart``), recording the codebook's fingerprint. The workbooks' Ý kiến sheets and
the draft report read it through ``read_theme_counts`` and ``read_quotes``. As for the other
marts, only active sources of registered schools count.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from schemas.comments import Quote, ThemeCount
from warehouse import tables as t
from warehouse.db import get_meta, reader, set_meta

#: Rows fetched from the driver at a time while the comments stream.
_CHUNK = 5_000


@dataclass(frozen=True)
class Respondents:
    """Responses of one school to one questionnaire (commented or not)."""

    school_code: str
    unit_code: str
    questionnaire: str
    n: int


@dataclass(frozen=True)
class Comment:
    """One stored comment with where it belongs; the text as the respondent typed it."""

    school_code: str
    unit_code: str
    questionnaire: str
    text: str


def _counted(stmt: sa.Select[Any], campaign_id: str) -> sa.Select[Any]:
    """``stmt`` over response joined to its active source and registered school."""
    r, s, sc = t.response, t.source, t.school
    return stmt.select_from(
        r.join(s, sa.and_(s.c.source_id == r.c.source_id, s.c.campaign_id == r.c.campaign_id)).join(
            sc, sa.and_(sc.c.campaign_id == s.c.campaign_id, sc.c.school_code == s.c.school_code)
        )
    ).where(r.c.campaign_id == campaign_id, s.c.is_active.is_(sa.true()))


def province_code(engine: Engine, campaign_id: str) -> str:
    """The campaign's province code (the scope code of province-level figures)."""
    c = t.campaign
    with reader(engine) as conn:
        code = conn.execute(
            sa.select(c.c.province_code).where(c.c.campaign_id == campaign_id)
        ).scalar()
    return str(code or "")


def respondent_counts(engine: Engine, campaign_id: str) -> list[Respondents]:
    """Responses per school and questionnaire, counted in SQL."""
    s, sc = t.source, t.school
    stmt = _counted(
        sa.select(s.c.school_code, sc.c.unit_code, s.c.questionnaire, sa.func.count()),
        campaign_id,
    ).group_by(s.c.school_code, sc.c.unit_code, s.c.questionnaire)
    with reader(engine) as conn:
        return [Respondents(*row) for row in conn.execute(stmt.order_by(*stmt.selected_columns))]


def iter_comments(
    engine: Engine, campaign_id: str, units: Collection[str] | None = None
) -> Iterator[Comment]:
    """Every non-blank stored comment of the campaign (of the schools of ``units`` when given),
    in source and response order, streamed."""
    r, s, sc = t.response, t.source, t.school
    stmt = (
        _counted(
            sa.select(s.c.school_code, sc.c.unit_code, s.c.questionnaire, r.c.comment),
            campaign_id,
        )
        .where(r.c.comment.is_not(None), sa.func.trim(r.c.comment) != "")
        .order_by(r.c.source_id, r.c.response_no)
    )
    if units is not None:
        stmt = stmt.where(sc.c.unit_code.in_(sorted(units)))
    with reader(engine) as conn:
        result = conn.execution_options(stream_results=True, yield_per=_CHUNK).execute(stmt)
        for row in result:
            yield Comment(*row)


def write_comment_mart(
    engine: Engine,
    campaign_id: str,
    counts: Sequence[ThemeCount],
    quotes: Sequence[Quote],
    codebook: dict[str, str],
) -> None:
    """Replace the campaign's comment mart with ``counts`` and ``quotes``, in one transaction,
    and record ``codebook`` (its ``version`` and ``fingerprint``) as the one it was built with."""
    with engine.begin() as conn:
        for table in t.COMMENT_MART_TABLES:
            conn.execute(sa.delete(table).where(table.c.campaign_id == campaign_id))
        theme_rows = [dict(vars(c)) for c in counts if c.campaign_id == campaign_id]
        quote_rows = [dict(vars(q)) for q in quotes if q.campaign_id == campaign_id]
        if theme_rows:
            conn.execute(t.mart_comment_theme.insert(), theme_rows)
        if quote_rows:
            conn.execute(t.mart_comment_quote.insert(), quote_rows)
        set_meta(conn, f"comments:{campaign_id}", json.dumps(codebook, sort_keys=True))


def built_with(engine: Engine, campaign_id: str) -> dict[str, str]:
    """The codebook (``version``, ``fingerprint``) the campaign's comment mart was last built
    with; empty before the first build."""
    with reader(engine) as conn:
        stored = get_meta(conn, f"comments:{campaign_id}")
    return json.loads(stored) if stored else {}


def _scoped(table: sa.Table, campaign_id: str, scope: str | None, scope_code: str | None) -> Any:
    conditions = [table.c.campaign_id == campaign_id]
    if scope is not None:
        conditions.append(table.c.scope == scope)
    if scope_code is not None:
        conditions.append(table.c.scope_code == scope_code)
    return sa.and_(*conditions)


def read_theme_counts(
    engine: Engine, campaign_id: str, scope: str | None = None, scope_code: str | None = None
) -> list[ThemeCount]:
    """The campaign's theme counts (of one scope kind and code when given), each scope's themes
    by count, most first, then by theme code."""
    m = t.mart_comment_theme
    stmt = (
        sa.select(
            m.c.campaign_id,
            m.c.scope,
            m.c.scope_code,
            m.c.questionnaire,
            m.c.theme,
            m.c.label,
            m.c.dimension,
            m.c.n_comments,
            m.c.n_respondents,
        )
        .where(_scoped(m, campaign_id, scope, scope_code))
        .order_by(m.c.scope, m.c.scope_code, m.c.questionnaire, m.c.n_comments.desc(), m.c.theme)
    )
    with reader(engine) as conn:
        return [ThemeCount(*row) for row in conn.execute(stmt)]


def read_quotes(
    engine: Engine, campaign_id: str, scope: str | None = None, scope_code: str | None = None
) -> list[Quote]:
    """The campaign's quotes (of one scope kind and code when given), by scope, questionnaire,
    theme and rank."""
    m = t.mart_comment_quote
    stmt = (
        sa.select(
            m.c.campaign_id,
            m.c.scope,
            m.c.scope_code,
            m.c.questionnaire,
            m.c.theme,
            m.c.rank,
            m.c.text,
        )
        .where(_scoped(m, campaign_id, scope, scope_code))
        .order_by(m.c.scope, m.c.scope_code, m.c.questionnaire, m.c.theme, m.c.rank)
    )
    with reader(engine) as conn:
        return [Quote(*row) for row in conn.execute(stmt)]
