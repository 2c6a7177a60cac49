"""Replacing one source's rows in the warehouse, in one transaction.

``replace_source`` replaces one source's responses, answers (with each question's sheet
column), quarantine rows and figures (the sums the marts are built from, ``warehouse.figures``)
and appends a 'loaded' ledger row (``warehouse.ledger``), all in one transaction keyed by the
source, so a re-run gives the same warehouse and a crash mid-write leaves the previous state.
The frames become rows column by column and go in bulk (``warehouse.bulk``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from schemas.records import Fetched, Parsed, Source, cell_address, column_letter
from warehouse import bulk, figures, tables
from warehouse.db import local_now, shared_engine
from warehouse.ledger import LedgerEntry, append_ledger
from warehouse.registry import ensure_source

#: Parsed.responses column -> response column, for the background and comment items.
RESPONSE_TEXT_COLUMNS = {
    "respondent_hash": "respondent_hash",
    "service": "service",
    "LOP": "class_name",
    "GIOI_TINH": "gender",
    "KHU_VUC": "area",
    "Y_KIEN": "comment",
}


@dataclass(frozen=True)
class LoadResult:
    """What replace_source wrote."""

    load_id: int
    source_id: int
    n_responses: int
    n_answers: int
    n_rejected: int


def replace_source(
    engine: Engine,
    campaign_id: str,
    run_id: str,
    fetched: Fetched,
    parsed: Parsed,
    *,
    started_at: dt.datetime | None = None,
) -> LoadResult:
    """Replace the rows of ``fetched.source`` with ``parsed`` and append a 'loaded' ledger row.

    In ONE transaction: delete the source's answer, answer_column, response and quarantine rows
    (including an earlier failure's row), bulk-insert the new responses, answers, the column
    each question's answers were read from (answer_column: its letters, such as D, and the
    header found; with the response's row_number it gives each answer's cell) and rejections
    (with school, questionnaire, file name, sheet, cell, raw value, rule, reason and scope),
    then append the ledger row with the fetched file's fingerprint, archive path and modified
    time and the parse counts. A question whose answers come from more than one column is
    refused with a ValueError before anything is written (see ``answer_rows``). If
    anything raises, nothing is written and the previous rows stay; the caller then records the
    failure with ``record_failure``. Loading the same input twice gives the same rows; twice in
    the same run (a load retried after its process died having committed) writes nothing the
    second time and returns the first load's result, so the ledger holds one 'loaded' row.

    ``started_at`` (here and in the record_* functions) is when work on the source began, for
    the ledger; it defaults to the time the row is written.
    """
    source, entry = fetched.source, LedgerEntry.of(fetched, started_at)
    responses = _response_rows(parsed)
    answers, answer_columns = answer_rows(parsed)
    rejections = _quarantine_rows(source, entry, parsed)
    with bulk.writing(engine) as conn:
        now = local_now(conn, campaign_id)
        source_id = ensure_source(conn, campaign_id, source)
        done = _loaded_in_run(conn, campaign_id, run_id, source_id, entry.fingerprint)
        if done is not None:
            return done
        rows = _SourceRows(responses, answers, answer_columns, rejections)
        _write_rows(conn, campaign_id, source, source_id, parsed, rows)
        load_id = append_ledger(
            conn,
            campaign_id=campaign_id,
            run_id=run_id,
            source=source,
            source_id=source_id,
            status="loaded",
            entry=entry,
            now=now,
            n_rows_read=parsed.n_rows_read,
            n_responses=_count(responses),
            n_answers=_count(answers),
            n_rejected=_count(rejections),
            unknown_columns=parsed.unknown_columns,
            missing_questions=parsed.missing_questions,
            renamed_questions=parsed.renamed_questions,
        )
    return LoadResult(load_id, source_id, _count(responses), _count(answers), _count(rejections))


@dataclass(frozen=True)
class _SourceRows:
    """The rows one source's parse gives each table, built before the transaction begins."""

    responses: _Rows
    answers: _Rows
    answer_columns: _Rows
    rejections: _Rows


def _write_rows(
    conn: sa.Connection,
    campaign_id: str,
    source: Source,
    source_id: int,
    parsed: Parsed,
    rows: _SourceRows,
) -> None:
    """Replace the source's responses, answers, answer columns, quarantine rows and figures."""
    _delete_source_rows(conn, campaign_id, source_id)
    prefix = {"campaign_id": campaign_id, "source_id": source_id}
    by_source = {"source_id": source_id}  # answer tables: source_id names the campaign
    bulk.bulk_insert(conn, tables.response, *_prefixed(prefix, rows.responses))
    bulk.bulk_insert(conn, tables.answer, *_prefixed(by_source, rows.answers))
    bulk.bulk_insert(conn, tables.answer_column, *_prefixed(by_source, rows.answer_columns))
    bulk.bulk_insert(conn, tables.quarantine, *_prefixed(prefix, rows.rejections))
    columns, data = rows.responses  # services as stored (None where none), by response
    write_figure_rows(
        conn,
        campaign_id,
        source_id,
        source_figure_rows(
            conn,
            source.questionnaire,
            parsed.answers,
            data[columns.index("response_no")],
            data[columns.index("service")],
        ),
    )


def _loaded_in_run(
    conn: sa.Connection, campaign_id: str, run_id: str, source_id: int, fingerprint: str | None
) -> LoadResult | None:
    """The result of this run's load of the same content of the source, if that is the
    source's latest outcome in the run."""
    row = conn.execute(
        _LATEST_IN_RUN, {"campaign_id": campaign_id, "source_id": source_id, "run_id": run_id}
    ).first()
    if row is None or row.status != "loaded" or row.fingerprint != fingerprint:
        return None
    return LoadResult(row.load_id, source_id, row.n_responses, row.n_answers, row.n_rejected)


_LATEST_IN_RUN = (
    sa.select(
        *(
            tables.load_ledger.c[c]
            for c in ("load_id", "status", "fingerprint", "n_responses", "n_answers", "n_rejected")
        )
    )
    .where(
        # campaign_id with source_id: the ledger's index
        *(
            tables.load_ledger.c[c] == sa.bindparam(c)
            for c in ("campaign_id", "source_id", "run_id")
        )
    )
    .order_by(tables.load_ledger.c.load_id.desc())
    .limit(1)
)


def replace_source_at(
    url: str, campaign_id: str, run_id: str, fetched: Fetched, parsed: Parsed
) -> LoadResult:
    """``replace_source`` into the warehouse at ``url``: the job of a load process, which
    receives a URL (an Engine does not pickle) and keeps one Engine for all its jobs."""
    return replace_source(shared_engine(url), campaign_id, run_id, fetched, parsed)


#: (column names, one list of values per column) of one table's new rows. Column-major: the
#: frames are columns already, and rows are built once, by zip, right before the insert.
_Rows = tuple[list[str], list[list[Any]]]


def _count(rows: _Rows) -> int:
    """How many rows ``rows`` holds."""
    return len(rows[1][0]) if rows[1] else 0


def _figure_items(conn: sa.Connection, questionnaire: str) -> figures.Items:
    """The questionnaire's items as the warehouse knows them now, prepared for figures.

    The items are read in the caller's transaction every time (sync_registry may have changed
    them since, in another process); only their preparation is cached, keyed by the rows read,
    so a changed item is a new key and a stale entry can never be used.
    """
    rows = conn.execute(_ITEMS_OF_QUESTIONNAIRE, {"questionnaire": questionnaire}).all()
    return _prepared_items(tuple(sorted(tuple(r) for r in rows)))


_ITEMS_OF_QUESTIONNAIRE = sa.select(
    tables.question.c.question_code, tables.question.c.kind, tables.question.c.dimension
).where(tables.question.c.questionnaire_code == sa.bindparam("questionnaire"))


@lru_cache(maxsize=64)
def _prepared_items(rows: tuple[tuple[str, str, str | None], ...]) -> figures.Items:
    return figures.prepare_items(rows)


def source_figure_rows(
    conn: sa.Connection,
    questionnaire: str,
    answers: pd.DataFrame,
    response_nos: Sequence[Any],
    services: Sequence[Any],
) -> figures.FigureRows:
    """``figures.figure_rows`` of one source's ``answers`` (response_no, question_code, value)
    against the questionnaire's items as the warehouse knows them now.

    ``services[i]`` is the service of response ``response_nos[i]`` as stored (text, None where
    none): loading and the marts' recomputation from the stored rows see the same values.
    """
    items = _figure_items(conn, questionnaire)
    response_no = answers["response_no"].to_numpy(dtype="int64")
    return figures.figure_rows(
        items,
        items.locate(answers["question_code"].to_numpy(dtype=object)),
        response_no,
        answers["value"].to_numpy(dtype="float64"),
        figures.service_codes(response_no, np.asarray(response_nos, dtype=np.int64), services),
    )


def write_figure_rows(
    conn: sa.Connection, campaign_id: str, source_id: int, rows: figures.FigureRows
) -> None:
    """Replace one source's figures with ``rows``."""
    _delete_source_rows(conn, campaign_id, source_id, tables.FIGURE_TABLES)
    prefix = {"campaign_id": campaign_id, "source_id": source_id}
    conn.execute(
        tables.figure_source.insert(), {**prefix, "n_valid_responses": rows.n_valid_responses}
    )
    for table, names, data in (
        (tables.figure_source_dimension, figures.DIMENSION_COLUMNS, rows.dimensions),
        (tables.figure_source_question, figures.QUESTION_COLUMNS, rows.questions),
    ):
        bulk.bulk_insert(conn, table, *_prefixed(prefix, (list(names), data)))


def _delete_source_rows(
    conn: sa.Connection,
    campaign_id: str,
    source_id: int,
    tables: Sequence[sa.Table] = (
        tables.answer,
        tables.answer_column,
        tables.response,
        tables.quarantine,
    ),
) -> None:
    for table in tables:
        # The answer tables have no campaign_id: source_id alone is unique across campaigns.
        if "campaign_id" in table.c:
            conn.execute(_delete_of(table), {"campaign_id": campaign_id, "source_id": source_id})
        else:
            conn.execute(_delete_of(table), {"source_id": source_id})


@cache
def _delete_of(table: sa.Table) -> sa.Delete:
    """DELETE of one source's rows of ``table``, built once (parameters campaign_id, where
    the table has one, and source_id)."""
    where = table.c.source_id == sa.bindparam("source_id")
    if "campaign_id" in table.c:
        where = sa.and_(table.c.campaign_id == sa.bindparam("campaign_id"), where)
    return sa.delete(table).where(where)


def _prefixed(prefix: Mapping[str, Any], rows: _Rows) -> _Rows:
    """``rows`` with a constant column per item of ``prefix`` (column name -> value), first."""
    columns, data = rows
    n = _count(rows)
    return [*prefix, *columns], [*([v] * n for v in prefix.values()), *data]


# -- frames to row tuples ---------------------------------------------------------------------


#: Naive datetime dtypes of at most microsecond precision (exactly a datetime.datetime).
_NAIVE_DATETIMES = frozenset(np.dtype(f"datetime64[{unit}]") for unit in ("s", "ms", "us"))


def column_values(df: pd.DataFrame, name: str, convert: Callable[[Any], Any]) -> list[Any]:
    """A frame column as Python values, missing (NaN, NaT, None, absent column) as None."""
    if name not in df.columns:
        return [None] * len(df)
    series = df[name]
    if convert is str or convert is as_text:
        # Both return a str unchanged, and a str is never missing, so most text cells skip
        # the call; the rest are checked one by one by pd.isna, the test Series.isna applies
        # to each value (a source has a few thousand text cells; a column's isna() and its
        # array cost more than that).
        return [
            v if type(v) is str else None if v is None or pd.isna(v) else convert(v)
            for v in series.tolist()
        ]
    if convert is as_datetime and series.dtype in _NAIVE_DATETIMES:
        # Naive datetimes of at most microsecond precision: numpy gives the same
        # datetime.datetime values (None for NaT) without a Timestamp per value.
        return list(series.to_numpy().astype("datetime64[us]").tolist())
    missing = series.isna().to_numpy()
    values = series.tolist()
    # int64/float64 columns already give Python ints/floats: convert would return each value
    # unchanged, so the per-value call is skipped (answers are millions of rows a night).
    kind = series.dtype.kind
    if (convert is int and kind in "iu") or (convert is float and kind == "f"):
        if not missing.any():
            return values
        return [None if m else v for v, m in zip(values, missing.tolist(), strict=True)]
    return [None if m else convert(v) for v, m in zip(values, missing.tolist(), strict=True)]


def as_text(value: Any) -> str:
    """``value`` as stored text: a float that is a whole number without its ".0"."""
    # A class typed as 3 arrives as 3.0 from Excel; store it as the "3" the school wrote.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def as_datetime(value: Any) -> dt.datetime:
    """``value`` (a Timestamp, datetime, or what pandas reads as one) as a datetime.datetime."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value
    return pd.Timestamp(value).to_pydatetime()


def _response_rows(parsed: Parsed) -> _Rows:
    df = parsed.responses
    columns = ["response_no", "sheet", "row_number", "submitted_at"]
    data: list[list[Any]] = [
        column_values(df, "response_no", int),
        [parsed.sheet] * len(df),
        column_values(df, "row", int),
        column_values(df, "submitted_at", as_datetime),
    ]
    for frame_col, table_col in RESPONSE_TEXT_COLUMNS.items():
        columns.append(table_col)
        data.append(column_values(df, frame_col, as_text))
    return columns, data


def answer_rows(parsed: Parsed) -> tuple[_Rows, _Rows]:
    """The answer rows, and the answer_column rows: one per question, the column letters its
    answers were read from and the header found there.

    An answer's cell is its question's column and its response's row, so a cell is stored once
    per question, not once per answer; the columns come from one pass over the column numbers
    (a source's thousands of answers are a few dozen columns), never a string per answer. A
    question answered from more than one column raises ValueError (``_question_columns``).
    """
    df = parsed.answers
    codes = df["question_code"].to_numpy(dtype=object)
    columns = _question_columns(parsed.sheet, codes, df["col"]) if len(df) else {}
    found = sorted(columns)
    answers: _Rows = (
        ["response_no", "question_code", "value"],
        [column_values(df, "response_no", int), codes.tolist(), column_values(df, "value", float)],
    )
    answer_columns: _Rows = (
        ["question_code", "column_letter", "header"],
        [
            found,
            [column_letter(columns[code]) for code in found],
            [parsed.columns.get(code) for code in found],
        ],
    )
    return answers, answer_columns


def _question_columns(sheet: str, codes: npt.NDArray[Any], col: pd.Series) -> dict[str, int]:
    """Question code -> the 1-based sheet column its answers were read from.

    parse maps one column to each question (a second column with the same question is listed
    as unknown, not read), so a question answered from two columns is a bug upstream: it is
    refused with a ValueError, as storing one column would point some answers at the wrong
    cell. So is an answer without a column, which has no cell at all.
    """
    if col.isna().any():
        missing = sorted(set(codes[col.isna().to_numpy()].tolist()))
        raise ValueError(
            f"sheet {sheet!r}: answers to {', '.join(missing)} have no sheet column, so no cell "
            "address; not loaded"
        )
    cols = col.to_numpy(dtype=np.int64)
    distinct, first, which = np.unique(cols, return_index=True, return_inverse=True)
    code_of_col = codes[first]
    pairs: Iterable[tuple[str, int]]
    if (codes == code_of_col[which]).all():  # each column holds one question: the usual case
        pairs = zip(code_of_col.tolist(), distinct.tolist(), strict=True)
    else:  # a column holding two questions (parse never does this), each pair exactly
        pairs = sorted(set(zip(codes.tolist(), cols.tolist(), strict=True)))
    found: dict[str, list[int]] = {}
    for code, c in pairs:
        found.setdefault(code, []).append(c)
    several = {code: cs for code, cs in found.items() if len(cs) > 1}
    if several:
        listed = "; ".join(
            f"{code} in columns {', '.join(column_letter(c) for c in cs)}"
            for code, cs in sorted(several.items())
        )
        raise ValueError(
            f"sheet {sheet!r}: answers to one question come from more than one column "
            f"({listed}); the warehouse keeps one column per question, so not loaded"
        )
    return {code: cs[0] for code, cs in found.items()}


def _quarantine_rows(source: Source, entry: LedgerEntry, parsed: Parsed) -> _Rows:
    df = parsed.rejections
    n = len(df)
    if not n:  # the usual case: no column to convert
        return list(_QUARANTINE_COLUMNS), [[] for _ in _QUARANTINE_COLUMNS]
    rows = column_values(df, "row", int)
    cols = column_values(df, "col", int)
    sheets = column_values(df, "sheet", str)
    data = [
        [source.school_code] * n,
        [source.questionnaire] * n,
        [entry.filename or source.location] * n,
        [s if s is not None else parsed.sheet for s in sheets],
        [cell_address(r, c) for r, c in zip(rows, cols, strict=True)],
        rows,
        column_values(df, "response_no", int),
        column_values(df, "question_code", str),
        column_values(df, "raw_value", as_text),
        [r if r is not None else "unknown" for r in column_values(df, "rule", str)],
        [r if r is not None else "" for r in column_values(df, "reason", str)],
        [s if s is not None else "value" for s in column_values(df, "scope", str)],
    ]
    return list(_QUARANTINE_COLUMNS), data


#: quarantine columns _quarantine_rows gives, in order.
_QUARANTINE_COLUMNS = [
    "school_code",
    "questionnaire",
    "file",
    "sheet",
    "cell",
    "row_number",
    "response_no",
    "question_code",
    "raw_value",
    "rule",
    "reason",
    "scope",
]
