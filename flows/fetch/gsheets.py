"""Google Sheets sources (kind ``gsheet``): worksheet choice, values, revision, archive.

A ``gsheet`` source's location is a spreadsheet key (a pasted ``…/spreadsheets/d/<key>/…`` URL
is accepted too), optionally followed by ``#<worksheet title>`` (or ``#gid=<sheet id>``); without
it the first worksheet is read. Per fetched sheet: Sheets ``spreadsheets.get`` (worksheets,
locale, time zone), Drive ``files.get`` (``modifiedTime``, ``version``: the revision used for
change detection), and Sheets ``values:batchGet`` twice, ``UNFORMATTED_VALUE`` (locale-free
numbers and date serials) and ``FORMATTED_VALUE`` (which says which serials are dates: formatted
text alone is ambiguous, serials alone do not say which numbers are timestamps).
``sheet_revision`` makes the Drive call alone, so an unchanged sheet costs no Sheets quota.
The archived JSON is read back by ``flows.read.gsheet``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gspread.http_client import HTTPClient
from gspread.urls import DRIVE_FILES_API_V3_URL

from flows.fetch.archive import archive
from flows.fetch.google import GSheetsClient, NotFound, call, naive_local, parse_rfc3339
from flows.privacy import mask_personal
from flows.read.gsheet import CONTENT_FORMAT, is_empty_value
from flows.settings import Limits
from schemas.records import Fetched, Source, SourceError

#: Not plain ".json": the archive keeps its sightings sidecar at ``<sha>.json``.
ARCHIVE_SUFFIX = ".gsheet.json"
_SPREADSHEET_FIELDS = (
    "spreadsheetId,properties(title,locale,timeZone),"
    "sheets(properties(sheetId,title,index,sheetType,gridProperties(rowCount,columnCount)))"
)
_DRIVE_FIELDS = "id,name,modifiedTime,version"
_KEY = re.compile(r"[A-Za-z0-9_-]+")
_URL_KEY = re.compile(r"/spreadsheets/d/([A-Za-z0-9_-]+)")
_GID = re.compile(r"gid\s*=\s*(\d+)", re.IGNORECASE)


def sheet_key(location: str) -> str:
    """The spreadsheet key of a ``gsheet`` location (``key``, ``key#worksheet`` or a URL)."""
    target = location.partition("#")[0].strip()
    m = _URL_KEY.search(target)
    return m.group(1) if m else target


def _where(source: Source) -> tuple[str, str]:
    """(key, message prefix) of a source; ``SourceError`` for a key that cannot be one."""
    key = sheet_key(source.location)
    where = f"{source.school_code}: Google Sheet {key}"
    # The key becomes part of the API URL path: anything but key characters would change it.
    if not _KEY.fullmatch(key):
        raise SourceError(
            f"{source.school_code}: {source.location!r} is not a Google spreadsheet key "
            "(the part of the sheet's address after /d/)"
        )
    return key, where


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _choose_worksheet(
    sheets: Sequence[Mapping[str, Any]], wanted: str | None, where: str
) -> Mapping[str, Any]:
    """The worksheet's properties: the one named in the location, else the first grid."""
    grids = sorted(
        (s.get("properties", {}) for s in sheets),
        key=lambda p: p.get("index", 0),
    )
    grids = [p for p in grids if p.get("sheetType", "GRID") == "GRID" and "title" in p]
    if not grids:
        raise SourceError(f"{where}: the spreadsheet has no worksheet with cells")
    if wanted is None or not wanted.strip():
        return grids[0]
    gid = _GID.fullmatch(wanted.strip())
    if gid:
        found = [p for p in grids if str(p.get("sheetId")) == gid.group(1)]
    else:
        found = [p for p in grids if p["title"] == wanted]
        if not found:
            # NFC and case: titles typed into sources.csv by hand, on another keyboard.
            found = [p for p in grids if _fold(p["title"]) == _fold(wanted)]
    if len(found) == 1:
        return found[0]
    titles = ", ".join(repr(mask_personal(p["title"])) for p in grids)
    raise SourceError(
        f"{where}: worksheet {wanted!r} not found (renamed?); the spreadsheet has {titles}"
    )


def _a1(title: str) -> str:
    """A whole-worksheet A1 range: the title quoted, quotes doubled."""
    return "'" + title.replace("'", "''") + "'"


def _drive_file(client: GSheetsClient, http: HTTPClient, key: str, where: str) -> dict[str, Any]:
    url = f"{DRIVE_FILES_API_V3_URL}/{key}"
    params: dict[str, Any] = {"fields": _DRIVE_FIELDS, "supportsAllDrives": "true"}
    try:
        return dict(call(client, where, "Drive", lambda: http.request("get", url, params).json()))
    except NotFound:
        pass
    # Drive says 404 both for "no such file" and for "not shared with you"; Sheets tells them
    # apart (403 vs 404), so ask it once to give the school the right instruction.
    call(
        client, where, "Sheets", lambda: http.fetch_sheet_metadata(key, {"fields": "spreadsheetId"})
    )
    # Sheets opened it: Drive's 404 was a glitch (or a race with a move); the next run retries.
    raise SourceError(
        f"{where}: Google Drive did not find the spreadsheet that Sheets can open; "
        "its revision is unknown this time"
    )


def sheet_revision(
    client: GSheetsClient, source: Source, *, timezone: str | None = None
) -> tuple[dt.datetime | None, str | None]:
    """(modified_at, version) of the source's spreadsheet from one Drive ``files.get`` call.

    Cheap (no Sheets quota): the flow compares ``version`` with the revision of the source's
    last successful load and skips fetching values when they are equal. Drive's version grows
    with every change to the file, so an equal version means unchanged. ``modified_at`` is
    aware UTC, or naive local time of ``timezone`` when given. Raises ``SourceError``.
    """
    key, where = _where(source)
    http = client.http(where)
    meta = _drive_file(client, http, key, where)
    modified = parse_rfc3339(meta.get("modifiedTime"))
    version = str(meta["version"]) if meta.get("version") is not None else None
    if timezone is not None:
        modified = naive_local(modified, timezone)
    return modified, version


def _grids(
    values: list[list[Any]], shown: list[list[Any]]
) -> tuple[list[list[Any]], list[list[Any]]]:
    """Both grids cut to the unformatted one's used area and padded to one width.

    The API leaves out trailing blank rows and cells, so rows come back ragged; a formula that
    yields "" is blank too. The formatted grid follows the unformatted one's shape: it was
    fetched a moment later and a new response may have arrived in between.
    """
    height = 0
    width = 0
    for i, row in enumerate(values):
        used = [j for j, v in enumerate(row) if not is_empty_value(v)]
        if used:
            height = i + 1
            width = max(width, used[-1] + 1)

    def shape(grid: list[list[Any]]) -> list[list[Any]]:
        out = []
        for i in range(height):
            row = grid[i] if i < len(grid) else []
            cells = [None if is_empty_value(v) else v for v in row[:width]]
            out.append(cells + [None] * (width - len(cells)))
        return out

    return shape(values), shape(shown)


def _values(http: HTTPClient, key: str, title: str, render: str) -> list[list[Any]]:
    params: dict[str, Any] = {"valueRenderOption": render, "majorDimension": "ROWS"}
    if render == "UNFORMATTED_VALUE":
        params["dateTimeRenderOption"] = "SERIAL_NUMBER"
    data = http.values_batch_get(key, [_a1(title)], params=params)
    ranges = data.get("valueRanges") or [{}]
    rows = ranges[0].get("values") or []
    return [list(r) for r in rows]


def _canonical(doc: Mapping[str, Any]) -> bytes:
    """One byte string per content: sorted keys, no spaces, UTF-8, so equal sheets hash equal."""
    return json.dumps(
        doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def fetch_gsheet(
    client: GSheetsClient,
    source: Source,
    archive_dir: Path,
    timezone: str,
    *,
    limits: Limits | None = None,
) -> Fetched:
    """Fetch one worksheet's values, archive them as JSON, and return them with metadata.

    ``content`` is canonical JSON (format, spreadsheet id and title, worksheet title and id,
    locale, time zone, ``values`` unformatted and ``formatted``, row-major, equal width), so
    the fingerprint changes exactly when the data does. ``filename`` is "<spreadsheet> /
    <worksheet>"; ``modified_at`` is Drive's modifiedTime in naive local time of ``timezone``;
    ``revision`` is Drive's version, read before the values so it is never newer than them.
    Raises a one-line ``SourceError`` naming the school for a missing key, a sheet not shared
    with the service account (naming its e-mail), a missing sheet or worksheet (listing the
    worksheets), quota trouble past the retry bounds, or a sheet over ``limits``.
    """
    doc, drive = _worksheet(client, source, limits or Limits())
    content = _canonical(doc)
    filename = f"{doc['spreadsheet']} / {doc['worksheet']}"
    modified_at = naive_local(parse_rfc3339(drive.get("modifiedTime")), timezone)
    revision = str(drive["version"]) if drive.get("version") is not None else None
    stored = archive(
        content,
        archive_dir,
        ARCHIVE_SUFFIX,
        {
            "source": source.key,
            "file": filename,
            "modified_at": modified_at.isoformat(timespec="seconds") if modified_at else "",
            "revision": revision or "",
        },
    )
    return Fetched(
        source=source,
        content=content,
        fingerprint=stored.name.split(".")[0],
        archive_path=stored,
        filename=filename,
        modified_at=modified_at,
        revision=revision,
    )


def _worksheet(
    client: GSheetsClient, source: Source, limits: Limits
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the JSON document to archive, Drive's file metadata) of the source's worksheet."""
    key, where = _where(source)
    http = client.http(where)
    meta = call(
        client,
        where,
        "Sheets",
        lambda: http.fetch_sheet_metadata(key, {"fields": _SPREADSHEET_FIELDS}),
    )
    props = meta.get("properties", {})
    title = str(props.get("title") or key)
    sheet = _choose_worksheet(meta.get("sheets", []), source.worksheet, where)
    worksheet = str(sheet["title"])
    drive = _drive_file(client, http, key, where)
    values = call(
        client, where, "Sheets", lambda: _values(http, key, worksheet, "UNFORMATTED_VALUE")
    )
    shown = call(client, where, "Sheets", lambda: _values(http, key, worksheet, "FORMATTED_VALUE"))
    values, shown = _grids(values, shown)
    n_rows, n_cells = len(values), len(values) * (len(values[0]) if values else 0)
    if n_rows > limits.max_rows or n_cells > limits.max_cells:
        raise SourceError(
            f"{where}: worksheet {worksheet!r} has {n_rows:,} rows and {n_cells:,} cells, over "
            f"the limits of {limits.max_rows:,} rows (limits.max_rows) and {limits.max_cells:,} "
            "cells (limits.max_cells)"
        )
    doc = {
        "format": CONTENT_FORMAT,
        "spreadsheet_id": key,
        "spreadsheet": title,
        "worksheet": worksheet,
        "sheet_id": sheet.get("sheetId"),
        "locale": props.get("locale"),
        "time_zone": props.get("timeZone"),
        "values": values,
        "formatted": shown,
    }
    return doc, drive
