"""Google Drive folders and files: listing a folder source, fetching a ``drive`` source.

A Drive folder is listed with Drive v3 ``files.list`` (``'<id>' in parents and trashed = false``,
every page), subfolders and shortcuts followed, shared drives included; what a school can
upload and khaosat can read is kept: xlsx, xls, ods and CSV files (by mimeType, else by
extension) and native Google Sheets, which are read through the Sheets path (``gsheets``).

A ``drive`` source's location is a Drive file id (or the file's address). Fetching it costs one
``files.get`` for its metadata (name, md5Checksum, modifiedTime, size) and, unless its
``revision`` (the md5Checksum, or modifiedTime for a file without one) is its last load's,
one ``files.get?alt=media`` for its bytes, refused before or while downloading beyond
``limits.max_file_bytes``, then archived by SHA-256 like a file from the drop folder.
Credentials, endpoint, rate limits and backoff are the Sheets sources' (``google``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from gspread.exceptions import APIError
from gspread.http_client import HTTPClient
from gspread.urls import DRIVE_FILES_API_V3_URL

from flows.fetch.archive import archive
from flows.fetch.files import SourceAbsent
from flows.fetch.google import (
    HTTP_TIMEOUT,
    GSheetsClient,
    Refused,
    call,
    naive_local,
    parse_rfc3339,
)
from flows.settings import Limits
from schemas.records import Fetched, Found, Source, SourceError

log = logging.getLogger(__name__)

FOLDER = "application/vnd.google-apps.folder"
SHORTCUT = "application/vnd.google-apps.shortcut"
SPREADSHEET = "application/vnd.google-apps.spreadsheet"
_NATIVE = "application/vnd.google-apps."
#: how each readable upload is read, by the mimeType Drive gave it ...
_KIND_BY_MIME = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "excel",
    "application/vnd.ms-excel": "excel",
    "application/vnd.oasis.opendocument.spreadsheet": "excel",
    "text/csv": "csv",
}
#: ... or, for a mimeType Drive guessed vaguely (octet-stream, text/plain), by the extension.
_KIND_BY_SUFFIX = {".xlsx": "excel", ".xls": "excel", ".ods": "excel", ".csv": "csv"}
_META = "id,name,mimeType,trashed,md5Checksum,modifiedTime,size,driveId"
_LIST = f"nextPageToken,incompleteSearch,files({_META},shortcutDetails(targetId,targetMimeType))"
#: Drive's largest page: the fewest calls for a big folder.
PAGE_SIZE = 1000
#: how deep subfolders are followed (unit / school / class is three).
MAX_DEPTH = 8
_ID = re.compile(r"[A-Za-z0-9_-]+")
_FOLDER_URL = re.compile(r"/folders/([A-Za-z0-9_-]+)")
_FILE_URL = re.compile(r"/(?:file/)?d/([A-Za-z0-9_-]+)")
_ID_PARAM = re.compile(r"[?&]id=([A-Za-z0-9_-]+)")


def drive_id(location: str, *, folder: bool) -> str | None:
    """The Drive id in a location: the id itself, or a folder's or file's address
    (``…/drive/folders/<id>?usp=sharing``, ``…/drive/u/0/folders/<id>``, ``…/file/d/<id>/view``,
    ``…/open?id=<id>``); a ``#pattern`` after it is left out. None for anything else."""
    text = location.partition("#")[0].strip()
    for pattern in (_FOLDER_URL if folder else _FILE_URL, _ID_PARAM):
        m = pattern.search(text)
        if m:
            return m.group(1)
    return text if _ID.fullmatch(text) else None


def kind_of(name: str, mime_type: str) -> str | None:
    """How a Drive file is read (excel, csv, gsheet), or None for what is not a submission."""
    if mime_type == SPREADSHEET:
        return "gsheet"
    if mime_type in _KIND_BY_MIME:
        return _KIND_BY_MIME[mime_type]
    if mime_type.startswith(_NATIVE):
        return None
    return _KIND_BY_SUFFIX.get(PurePosixPath(name).suffix.lower())


def _not_shared(client: GSheetsClient, what: str) -> SourceError:
    return SourceError(
        f"{what} chưa được chia sẻ với {client.service_account} (hoặc không còn tồn tại); "
        "hãy chia sẻ quyền Người xem"
    )


def _get(client: GSheetsClient, http: HTTPClient, item_id: str, where: str) -> dict[str, Any]:
    """files.get of one item's metadata; ``Refused`` for one not there or not shared."""
    url = f"{DRIVE_FILES_API_V3_URL}/{item_id}"
    params: dict[str, Any] = {"fields": _META, "supportsAllDrives": "true"}
    return dict(call(client, where, "Drive", lambda: http.request("get", url, params).json()))


# ---- listing a folder -----------------------------------------------------------------------


def _json(http: HTTPClient, url: str, params: dict[str, Any]) -> dict[str, Any]:
    return dict(http.request("get", url, params).json())


def _children(
    client: GSheetsClient, http: HTTPClient, folder: str, shared_drive: str | None, where: str
) -> Iterator[dict[str, Any]]:
    """Every item in ``folder`` not in the trash, page after page."""
    url = DRIVE_FILES_API_V3_URL
    params: dict[str, Any] = {
        "q": f"'{folder}' in parents and trashed = false",
        "fields": _LIST,
        "pageSize": PAGE_SIZE,
        "supportsAllDrives": "true",
        "includeItemsFromAllDrives": "true",
    }
    if shared_drive:
        # A shared drive's items only come back from its own corpus.
        params.update(corpora="drive", driveId=shared_drive)
    token = None
    while True:
        asked: dict[str, Any] = {**params, "pageToken": token} if token else params
        page = call(client, where, "Drive", partial(_json, http, url, asked))
        if page.get("incompleteSearch"):
            log.warning("%s: Google Drive says folder %s was listed incompletely", where, folder)
        yield from page.get("files") or []
        token = page.get("nextPageToken")
        if not token:
            return


def _target(
    client: GSheetsClient, http: HTTPClient, shortcut: Mapping[str, Any], where: str
) -> dict[str, Any] | None:
    """What a shortcut points to (its metadata), or None when that is not there to read."""
    target = (shortcut.get("shortcutDetails") or {}).get("targetId")
    if not target or not _ID.fullmatch(str(target)):
        return None
    try:
        meta = _get(client, http, str(target), where)
    except Refused:
        log.warning(
            "%s: shortcut %r points to a file not shared with %s; left out",
            where,
            shortcut.get("name"),
            client.service_account,
        )
        return None
    return None if meta.get("trashed") else meta


def _found(name: str, meta: Mapping[str, Any]) -> Found | None:
    kind = kind_of(str(meta.get("name") or name), str(meta.get("mimeType") or ""))
    if kind is None:
        return None
    return Found(
        name=name,
        location=str(meta["id"]),
        kind=kind,
        modified=parse_rfc3339(meta.get("modifiedTime")),
        checksum=meta.get("md5Checksum"),
    )


def list_drive_folder(location: str, client: GSheetsClient) -> list[Found]:
    """The readable files of a Drive folder and its subfolders, by name (IO).

    ``location`` is the folder's id or address. ``Found.name`` is the file's path under the
    folder ("XA01/TH0101_cmhs.xlsx"), ``location`` its Drive id (a shortcut's target's),
    ``checksum`` its md5Checksum (None for a Google Sheet), ``modified`` its modifiedTime. Raises
    one line of ``SourceError`` for a location that is no Drive folder, a folder not shared
    with the service account (naming its e-mail), and Google's failures past the retries.
    """
    root = drive_id(location, folder=True)
    if root is None:
        raise SourceError(
            f"{location!r} is not a Google Drive folder: give the folder's id or its address "
            "(https://drive.google.com/drive/folders/…)"
        )
    where = f"thư mục Drive {root}"
    http = client.http(where)
    failure: SourceError | None = None
    try:
        meta = _get(client, http, root, where)
    except Refused:
        failure = _not_shared(client, where)
    if failure is not None:
        raise failure
    if meta.get("mimeType") != FOLDER:
        raise SourceError(f"{where}: is a file ({meta.get('name')!r}), not a folder")
    return _walk(client, http, root, meta.get("driveId"), where)


def _walk(
    client: GSheetsClient, http: HTTPClient, root: str, shared_drive: str | None, where: str
) -> list[Found]:
    """Every readable file under ``root``, breadth first; a folder reached twice (through a
    shortcut) is listed once."""
    found: list[Found] = []
    pending: deque[tuple[str, str, str | None, int]] = deque([(root, "", shared_drive, 0)])
    seen = {root}
    while pending:
        folder, prefix, drive, depth = pending.popleft()
        for item in _children(client, http, folder, drive, where):
            name = prefix + str(item.get("name", ""))
            meta: dict[str, Any] | None = item
            if item.get("mimeType") == SHORTCUT:
                meta = _target(client, http, item, where)
            if meta is None:
                continue
            if meta.get("mimeType") != FOLDER:
                entry = _found(name, meta)
                if entry is not None:
                    found.append(entry)
            elif meta["id"] not in seen and depth < MAX_DEPTH:
                seen.add(meta["id"])
                pending.append((meta["id"], name + "/", meta.get("driveId"), depth + 1))
    return sorted(found, key=lambda f: (f.name, f.location))


# ---- fetching one file ----------------------------------------------------------------------


@dataclass(frozen=True)
class DriveFile:
    """A Drive file's metadata, as one ``files.get`` gives it."""

    id: str
    name: str
    modified: dt.datetime | None  # aware
    md5: str | None
    size: int | None
    modified_time: str | None  # as Google wrote it

    @property
    def revision(self) -> str | None:
        """What changes when the file does: its md5Checksum, else its modifiedTime."""
        return self.md5 or self.modified_time


def _where(source: Source) -> tuple[str, str]:
    fid = drive_id(source.location, folder=False)
    if fid is None:
        raise SourceError(
            f"{source.school_code}: {source.location!r} is not a Google Drive file id "
            "(the part of the file's address after /d/)"
        )
    return fid, f"{source.school_code}: Drive file {fid}"


def drive_file(client: GSheetsClient, source: Source) -> DriveFile:
    """The metadata of a ``drive`` source's file (one Drive call, no download). Raises a
    one-line ``SourceError`` for a file not shared (naming the e-mail to share with), a folder,
    a native Google file, and ``SourceAbsent`` for a file in the trash."""
    fid, where = _where(source)
    http = client.http(where)
    failure: SourceError | None = None
    try:
        meta = _get(client, http, fid, where)
    except Refused:
        failure = _not_shared(client, f"{source.school_code}: tệp Drive {fid}")
    if failure is not None:
        raise failure
    mime, name = str(meta.get("mimeType") or ""), str(meta.get("name") or fid)
    if mime == FOLDER:
        raise SourceError(f"{where}: {name!r} is a folder, not a file")
    if mime == SPREADSHEET:
        raise SourceError(f"{where}: {name!r} is a Google Sheet: list it with kind gsheet")
    if mime.startswith(_NATIVE):
        raise SourceError(f"{where}: {name!r} is a Google Docs file, not a spreadsheet")
    if meta.get("trashed"):
        raise SourceAbsent(f"{where}: {name!r} is in Drive's trash")
    size = str(meta.get("size") or "")
    return DriveFile(
        id=fid,
        name=name,
        modified=parse_rfc3339(meta.get("modifiedTime")),
        md5=meta.get("md5Checksum"),
        size=int(size) if size.isdigit() else None,
        modified_time=meta.get("modifiedTime"),
    )


def _over(where: str, size: int, limits: Limits) -> SourceError:
    return SourceError(
        f"{where}: file is {size:,} bytes, over the limit of {limits.max_file_bytes:,} "
        "(limits.max_file_bytes)"
    )


def _download(http: HTTPClient, fid: str, limit: int) -> bytes:
    """The file's bytes, at most ``limit + 1`` of them: whatever the metadata said, a file
    growing past the limit is not read to its end."""
    url = f"{DRIVE_FILES_API_V3_URL}/{fid}"
    params = {"alt": "media", "supportsAllDrives": "true"}
    with http.session.get(url, params=params, stream=True, timeout=HTTP_TIMEOUT) as response:
        if not response.ok:
            raise APIError(response)
        chunks, size = [], 0
        for chunk in response.iter_content(1 << 16):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                break
    return b"".join(chunks)


def fetch_drive_file(
    client: GSheetsClient,
    source: Source,
    meta: DriveFile,
    archive_dir: Path,
    timezone: str,
    limits: Limits,
) -> Fetched:
    """Download a ``drive`` source's file (``meta`` from ``drive_file``), archive it, and
    return it: ``filename`` its Drive name (the reader finds the format from the bytes),
    ``modified_at`` its modifiedTime in naive local time of ``timezone``, ``revision`` the
    md5 of the bytes downloaded (its modifiedTime for a file Drive keeps no checksum of).
    Raises a one-line ``SourceError`` for a file over ``limits.max_file_bytes``, before
    downloading when Drive gives its size, else as soon as the download passes it."""
    fid, where = _where(source)
    if meta.size is not None and meta.size > limits.max_file_bytes:
        raise _over(where, meta.size, limits)
    http = client.http(where)
    failure: SourceError | None = None
    try:
        content = call(client, where, "Drive", lambda: _download(http, fid, limits.max_file_bytes))
    except Refused as exc:
        failure = SourceError(
            f"{where}: Google Drive refused to download {meta.name!r} "
            f"({', '.join(sorted(exc.reasons)) or 'no reason given'})"
        )
    if failure is not None:
        raise failure
    if len(content) > limits.max_file_bytes:
        raise _over(where, len(content), limits)
    revision = meta.revision
    if meta.md5 is not None:
        # The bytes in hand, should the file have changed between the two calls.
        revision = hashlib.md5(content, usedforsecurity=False).hexdigest()
    modified_at = naive_local(meta.modified, timezone)
    suffix = PurePosixPath(meta.name).suffix.lower()
    stored = archive(
        content,
        archive_dir,
        # only a known one: the archive keeps its sightings at <sha>.json
        suffix if suffix in _KIND_BY_SUFFIX else ".bin",
        {
            "source": source.key,
            "file": meta.name,
            "modified_at": modified_at.isoformat(timespec="seconds") if modified_at else "",
            "revision": revision or "",
        },
    )
    return Fetched(
        source=source,
        content=content,
        fingerprint=stored.name.split(".")[0],
        archive_path=stored,
        filename=meta.name,
        modified_at=modified_at,
        revision=revision,
    )
