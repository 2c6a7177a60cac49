"""Parse: a fetched submission's tables into tidy rows against its questionnaire; pure.

``read_fetched`` reads the tables of fetched content (a Google Sheet's archived JSON, else a
file's sheets); ``parse_tables`` picks the sheet (``header.pick_table``) and parses it
(``sheet.parse_table``). A source that cannot be used raises a one-line SourceError.
"""

from __future__ import annotations

from collections.abc import Sequence

from flows.parse.header import pick_table
from flows.parse.sheet import parse_table
from flows.read import read_tables
from flows.read.gsheet import tables_from_content
from flows.settings import Limits
from schemas.questionnaire import Questionnaire
from schemas.records import Parsed, Table


def read_fetched(
    content: bytes, filename: str, kind: str, limits: Limits, timezone: str
) -> list[Table]:
    """The tables of fetched content of a source of ``kind`` (excel, csv or gsheet)."""
    if kind == "gsheet":
        return tables_from_content(content, timezone=timezone)
    return read_tables(content, filename, limits)


def parse_tables(
    tables: Sequence[Table],
    kind: str,
    worksheet: str | None,
    questionnaire: Questionnaire,
    salt: str,
) -> Parsed:
    """Parse the right one of a source's tables: the ``worksheet`` named in sources.csv, else
    the one holding the questionnaire's headers. A Google Sheet was fetched as the worksheet
    the registry names, so its one table is parsed as it is. Raises SourceError."""
    table = pick_table(tables, questionnaire, None if kind == "gsheet" else worksheet)
    return parse_table(table, questionnaire, salt)
