"""Builders the warehouse tests share: a campaign, a questionnaire, parsed sheets, submissions,
and readers of what the warehouse stored.

``make_parsed`` builds a Parsed by hand, so a test of loading, marts or workbooks depends on
nothing upstream of the load step.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.settings import Campaign
from schemas.questionnaire import Item, Questionnaire
from schemas.records import REJECTION_COLUMNS, Fetched, Parsed, School, Source
from warehouse import tables

#: Sheet columns before the first item (A: timestamp, B: e-mail); item i is in column 3 + i.
FIRST_ITEM_COL = 3


def make_campaign(**overrides: Any) -> Campaign:
    """A campaign whose deadline is 2024-11-30."""
    values: dict[str, Any] = {
        "id": "HCM-2024",
        "name": "Khảo sát hài lòng 2024",
        "school_year": "2024-2025",
        "opens": dt.date(2024, 10, 1),
        "closes": dt.date(2024, 11, 30),
        "deadline": dt.date(2024, 11, 30),
        "province_code": "HCM",
    }
    values.update(overrides)
    return Campaign(**values)


def make_parsed(
    questionnaire: Questionnaire,
    rows: Sequence[Mapping[str, Any]],
    *,
    sheet: str = "Câu trả lời 1",
    rejections: Sequence[Mapping[str, Any]] = (),
    n_rows_read: int | None = None,
) -> Parsed:
    """A Parsed as the parse step would give it, from rows of {item code: value}.

    Response i (0-based) is sheet row i + 2 (header in row 1); item j of the questionnaire is
    column FIRST_ITEM_COL + j. A scored value that is a str is unreadable (value NaN, raw kept);
    None or a missing key is an empty cell (no answer row). ``service`` sets the service name.
    """
    responses: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    for i, values in enumerate(rows):
        response_no, row = i + 1, i + 2
        record: dict[str, Any] = {
            "response_no": response_no,
            "row": row,
            "submitted_at": pd.Timestamp(2024, 10, 15, 9, 0) + pd.Timedelta(minutes=i),
            "respondent_hash": f"h{response_no:03d}",
            "service": values.get("service"),
        }
        for j, item in enumerate(questionnaire.items):
            value = values.get(item.code)
            if item.kind == "text":
                record[item.code] = value
                continue
            if value is None:
                continue
            answers.append(
                {
                    "response_no": response_no,
                    "question_code": item.code,
                    "kind": item.kind,
                    "value": math.nan if isinstance(value, str) else float(value),
                    "raw": str(value),
                    "row": row,
                    "col": FIRST_ITEM_COL + j,
                }
            )
        responses.append(record)
    answer_columns = ["response_no", "question_code", "kind", "value", "raw", "row", "col"]
    return Parsed(
        questionnaire=questionnaire.code,
        sheet=sheet,
        header_row=1,
        columns={item.code: item.text for item in questionnaire.items},
        unknown_columns=["Số điện thoại"],
        missing_questions=[],
        responses=pd.DataFrame(responses),
        answers=pd.DataFrame(answers, columns=answer_columns),
        rejections=pd.DataFrame(list(rejections), columns=REJECTION_COLUMNS),
        n_rows_read=len(rows) if n_rows_read is None else n_rows_read,
    )


def table_rows(
    engine: Engine, table: sa.Table, *, exclude: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """All rows of a table as dicts, ordered by every column kept (stable across backends)."""
    columns = [c for c in table.c if c.name not in exclude]
    with engine.connect() as conn:
        result = conn.execute(sa.select(*columns).order_by(*columns))
        return [dict(r._mapping) for r in result]


def answer_cells(engine: Engine) -> list[tuple[Any, ...]]:
    """Every answer as (source_id, response_no, question_code, value, cell), its cell found as
    the answer table's comment says: answer_column's letters, then the response's row_number.

    Outer joins, so an answer missing its response or its column shows with cell None.
    """
    answer, response, column = tables.answer, tables.response, tables.answer_column
    source = tables.source
    cell = column.c.column_letter + sa.cast(response.c.row_number, sa.String())
    stmt = (
        sa.select(
            answer.c.source_id, answer.c.response_no, answer.c.question_code, answer.c.value, cell
        )
        .select_from(answer)
        .outerjoin(source, source.c.source_id == answer.c.source_id)
        .outerjoin(
            response,
            sa.and_(
                response.c.campaign_id == source.c.campaign_id,
                response.c.source_id == answer.c.source_id,
                response.c.response_no == answer.c.response_no,
            ),
        )
        .outerjoin(
            column,
            sa.and_(
                column.c.source_id == answer.c.source_id,
                column.c.question_code == answer.c.question_code,
            ),
        )
        .order_by(answer.c.source_id, answer.c.response_no, answer.c.question_code)
    )
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(stmt)]


#: A satisfaction questionnaire with a text item on each side of its scored items.
SAT = Questionnaire(
    code="SAT",
    version="1",
    name="Phiếu khảo sát",
    respondent="Cha mẹ học sinh",
    kind="satisfaction",
    levels=("TH",),
    dimensions={"TIEP_CAN": "Tiếp cận", "CHUNG": "Hài lòng chung"},
    items=(
        Item(code="LOP", text="Lớp", kind="text"),
        Item(code="TC1", text="Thông tin tuyển sinh", kind="likert", dimension="TIEP_CAN"),
        Item(code="CHUNG", text="Hài lòng chung", kind="likert", dimension="CHUNG"),
        Item(code="MONG_DOI", text="Đáp ứng mong đợi", kind="percent"),
        Item(code="Y_KIEN", text="Ý kiến", kind="text"),
    ),
)
SCHOOL = School(code="S1", name="Trường A", level="TH", unit_code="U1", unit_name="Phường 1")
SOURCE = Source(school_code="S1", questionnaire="SAT", kind="excel", location="s1.xlsx")


def _bad_value(row: int, col: int, raw: str) -> dict[str, Any]:
    """The rejection of an unreadable TC1 answer at (row, col)."""
    return {
        "scope": "value",
        "sheet": "Câu trả lời 1",
        "row": row,
        "col": col,
        "question_code": "TC1",
        "raw_value": raw,
        "rule": "likert_label",
        "reason": f"'{raw}' is not a satisfaction level",
        "response_no": row - 1,
    }


#: Two responses of SAT, one with an unreadable TC1; V2: a later, different upload.
V1 = make_parsed(
    SAT,
    [
        {"LOP": "3A", "TC1": 5, "CHUNG": 4, "MONG_DOI": 80, "Y_KIEN": "Tốt"},
        {"LOP": 4.0, "TC1": "abc", "CHUNG": 3},
    ],
    rejections=[_bad_value(3, 4, "abc")],
)
V2 = make_parsed(SAT, [{"TC1": 1}])


def fetched(fingerprint: str, source: Source = SOURCE) -> Fetched:
    """A submission of ``source`` as fetch would archive it (the bytes are not needed here)."""
    return Fetched(
        source=source,
        content=b"",
        fingerprint=fingerprint,
        archive_path=Path(f"archive/{fingerprint}"),
        filename=source.location,
        modified_at=dt.datetime(2024, 11, 1, 8, 0),
    )
