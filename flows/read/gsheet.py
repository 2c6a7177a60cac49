"""A Google Sheet's archived JSON (``flows.fetch.gsheets``) back into a Table: pure.

Numbers the sheet shows as dates come back as dates and times, date-and-time cells converted
from the spreadsheet's time zone to the campaign's when they differ.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.records import Cell, SourceError, Table

#: Version tag of the archived JSON, so a later reader can tell layouts apart.
CONTENT_FORMAT = "khaosat-gsheet/1"
#: Day 0 of Sheets' serial numbers (no 1900 leap-year bug in Sheets).
_SHEETS_EPOCH = dt.datetime(1899, 12, 30)
#: Largest serial that is still a date (9999-12-31).
_MAX_SERIAL = 2_958_465
#: A formatted cell is a date when it shows three numbers joined by / or - (29/10/2024,
#: 2024-10-29); "." is left out because Vietnamese number formats group thousands with it.
_DATE_TEXT = re.compile(r"\d{1,4}\s*[/-]\s*\d{1,2}\s*[/-]\s*\d{1,4}")
_TIME_TEXT = re.compile(r"\d{1,2}:\d{2}")


def is_empty_value(value: Any) -> bool:
    """Whether a value of the Sheets API is no value: None, or "" (a formula yielding "")."""
    return value is None or value == ""


def _from_serial(serial: float) -> dt.datetime:
    # Rounded to the millisecond: serials carry float noise (…:59.9999 for …:00).
    return _SHEETS_EPOCH + dt.timedelta(milliseconds=round(serial * 86_400_000))


def _shift(
    moment: dt.datetime, source_tz: ZoneInfo | None, target_tz: ZoneInfo | None
) -> dt.datetime:
    if source_tz is None or target_tz is None or source_tz.key == target_tz.key:
        return moment
    return moment.replace(tzinfo=source_tz).astimezone(target_tz).replace(tzinfo=None)


def _cell(value: Any, shown: Any, source_tz: ZoneInfo | None, target_tz: ZoneInfo | None) -> Cell:
    """One cell from its unformatted value and its formatted text."""
    if is_empty_value(value):
        return None
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        text = shown if isinstance(shown, str) else ""
        is_date, is_time = bool(_DATE_TEXT.search(text)), bool(_TIME_TEXT.search(text))
        if is_date and 1 <= value <= _MAX_SERIAL:
            moment = _from_serial(float(value))
            # A date and time (a Forms timestamp) is an instant written in the spreadsheet's
            # time zone; a bare date is a calendar day and is not shifted.
            return _shift(moment, source_tz, target_tz) if is_time else moment.date()
        if is_time and 0 <= value < 1:
            return _from_serial(float(value)).time()
        if is_time and value >= 1:
            return dt.timedelta(milliseconds=round(value * 86_400_000))  # a duration: 25:30:00
        return value
    return str(value)  # the API sends only the types above; anything else is kept as text


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def tables_from_content(content: bytes, *, timezone: str | None = None) -> list[Table]:
    """The worksheet archived by ``fetch_gsheet`` as one ``Table`` (name: worksheet title).

    Cells: None for blank, int/float for numbers, str for text, bool, and for numbers the sheet
    shows as dates: ``datetime`` (date and time), ``date``, ``time`` or ``timedelta``. Headers
    are kept exactly as the sheet has them (grid ``Title [Row]``, blank, duplicated): matching
    them is parse's job. With ``timezone`` (the campaign's), date-and-time cells are converted
    from the spreadsheet's time zone, in which Forms writes its timestamps, when it differs.
    Raises ``SourceError`` if the content is not such JSON.
    """
    try:
        doc = json.loads(content.decode("utf-8"))
        if doc.get("format") != CONTENT_FORMAT:
            raise ValueError(doc.get("format"))
        name = str(doc["worksheet"])
        values = doc["values"]
        shown = doc.get("formatted") or []
        if not isinstance(values, list) or not all(isinstance(r, list) for r in values):
            raise ValueError("values")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        raise SourceError(
            "archived Google Sheet content is not khaosat's JSON layout "
            f"({CONTENT_FORMAT}); fetch the sheet again"
        ) from None
    source_tz = _zone(doc.get("time_zone"))
    target_tz = _zone(timezone) if timezone else None
    rows: list[list[Cell]] = []
    for i, row in enumerate(values):
        shown_row = shown[i] if i < len(shown) and isinstance(shown[i], list) else []
        rows.append(
            [
                _cell(v, shown_row[j] if j < len(shown_row) else None, source_tz, target_tz)
                for j, v in enumerate(row)
            ]
        )
    return [Table(name=name, rows=rows)]
